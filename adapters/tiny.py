"""Helpers for the tiny random checkpoints the adapters' tests build (only widths and depths
shrink; rates, hops and codebooks stay real)."""

from __future__ import annotations

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
