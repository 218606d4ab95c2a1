"""Framed codecs served by ``transformers`` (Mimi, EnCodec, DAC, ...): loading through
:func:`tokbench.io.hub.load_hf_model` at the pinned revision (or ``--checkpoint DIR``) and the
check of the loaded config against the rates the adapter declares. Padding, trimming, batching
and ``embed`` are the framed-codec base's (:mod:`tokbench.adapters.framed`).

Also the tiny-checkpoint helpers the families' ``build_tiny_checkpoint`` use.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import torch

from tokbench.adapters.framed import FramedCodec
from tokbench.io.hub import load_hf_model
from tokbench.types import ModelSource


class HFCodec(FramedCodec):
    """Base of the transformers codec adapters: set ``repo_id``/``revision``, implement
    ``model_class`` and ``_codebook_tables`` (plus, where the model differs from the defaults,
    the config field names, ``_check_family_config`` and the two model calls)."""

    repo_id: ClassVar[str]
    revision: ClassVar[str]
    #: config fields holding the sample rate, the hop (samples per frame) and the checkpoint's
    #: codebook count
    config_rate: ClassVar[str] = "sampling_rate"
    config_hop: ClassVar[str] = "hop_length"
    config_codebooks: ClassVar[str] = "num_quantizers"
    model: Any

    @classmethod
    def model_class(cls) -> type:
        """The transformers model class (imported here, so listing presets stays light)."""
        raise NotImplementedError

    def _load(self, checkpoint: str | None, device: str) -> ModelSource:
        # float32 whatever the checkpoint's storage dtype: scores must not depend on it
        self.model, source = load_hf_model(self.model_class(), self.repo_id, self.revision,
                                           checkpoint, device, dtype=torch.float32)
        self.check_config(self.model.config, source)
        return source

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def check_config(self, config: Any, source: ModelSource) -> None:
        """Refuse a checkpoint whose config disagrees with the rates this adapter declares
        (e.g. an old dac_44khz revision that declared a 16 kHz sampling rate)."""
        where = source.local_path or f"{source.repo_id}@{source.revision}"
        sr, hop = int(getattr(config, self.config_rate)), int(getattr(config, self.config_hop))
        problems = []
        if sr != self.sample_rate:
            problems.append(f"{self.config_rate} {sr} != {self.sample_rate}")
        if hop != self.hop_length:
            problems.append(f"hop length {hop} != {self.hop_length}")
        if not math.isclose(sr, hop * self.meta.frame_rate, rel_tol=1e-9):
            problems.append(f"{self.config_rate} {sr} != hop {hop} x frame rate {self.meta.frame_rate:g}")
        if int(config.codebook_size) != self.codebook_size:
            problems.append(f"codebook_size {config.codebook_size} != {self.codebook_size}")
        have, need = int(getattr(config, self.config_codebooks)), self.meta.n_codebooks
        family_max = getattr(self.Options, "maximum", None)  # FirstCodebooks families
        if family_max is not None and have != family_max:
            problems.append(f"{self.config_codebooks} {have} != {family_max}")
        elif have < need:
            problems.append(f"{have} quantizers, {need} needed")
        if int(getattr(config, "audio_channels", 1)) != 1:
            problems.append(f"audio_channels {config.audio_channels} != 1")
        problems += self._check_family_config(config)
        if problems:
            raise ValueError(f"{self.name}: the checkpoint at {where} does not match the adapter: "
                             + "; ".join(problems) + ". Use the official checkpoint or fix its config.")

    def _check_family_config(self, config: Any) -> list[str]:
        return []

    def _encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x, **self.encode_kwargs(), return_dict=True).audio_codes

    def _decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        wav = self.model.decode(audio_codes=codes, return_dict=True).audio_values
        return wav[:, 0] if wav.dim() == 3 else wav  # [B, 1, T] -> [B, T]


# --- tiny checkpoints (tests) ------------------------------------------------------------------


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
