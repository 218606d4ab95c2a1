"""The helpers of the tiny random checkpoints the adapters build for tests (their
``build_tiny_checkpoint`` hooks; only widths and depths shrink, rates, hops and codebooks stay
real), in one place: seeded construction, codebook filling and saving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def fill_codebook(table: torch.Tensor, features: torch.Tensor, seed: int) -> None:
    """Fill a zero-initialised codebook ``[K, D]`` in place with seeded random vectors spread
    like ``features`` ``[N, D]`` (per-dimension mean and std), so that a tiny random model's
    frames land on many different codes instead of all on code 0."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    mean, std = features.mean(0), features.std(0).clamp_min(1e-6)
    with torch.no_grad():
        table.copy_(mean + std * torch.randn(table.shape, generator=gen))


def fill_codebooks(model: torch.nn.Module, seed: int) -> int:
    """Fill zero-initialised Euclidean codebooks (transformers initialises them to zeros: every
    code would be 0) with seeded random vectors; returns how many buffers were filled."""
    gen = torch.Generator().manual_seed(seed)
    filled = 0
    with torch.no_grad():
        for name, buf in model.named_buffers():
            leaf = name.rsplit(".", 1)[-1]
            if leaf in ("embed", "embed_avg", "embed_sum"):
                # EnCodec stores `embed` (and `embed_avg`); Mimi stores `embed_sum` and divides by
                # `cluster_usage` (ones). Scale ~ the latents of a random encoder.
                buf.copy_(torch.randn(buf.shape, generator=gen) * 0.5)
                filled += 1
            elif leaf == "cluster_usage":
                buf.fill_(1.0)
    return filled


def seeded(model_cls: Any, config: Any, seed: int = 0) -> Any:
    """``model_cls(config)`` initialised from ``seed``, leaving the global RNG as it was."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return model_cls(config)


def save_tiny(model: Any, folder: Path, seed: int = 0, *, random_codebooks: bool = True) -> Path:
    """Fill the codebooks (unless the model's are already random parameters) and
    ``save_pretrained`` into ``folder``."""
    if random_codebooks and not fill_codebooks(model, seed):
        raise RuntimeError(f"no codebook buffers found to fill in {type(model).__name__}")
    folder.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(folder)
    return folder
