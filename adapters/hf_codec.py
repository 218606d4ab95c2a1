"""Framed codecs served by ``transformers`` (Mimi, EnCodec, DAC, ...): loading through
:func:`tokbench.io.hub.load_hf_model` at the pinned revision (or ``--checkpoint DIR``) and the
check of the loaded config against the rates the adapter declares. Padding, trimming, batching
and ``embed`` are the framed-codec base's (:mod:`tokbench.adapters.framed`).

Also the tiny-checkpoint helpers the families' ``build_tiny_checkpoint`` use.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from tokbench.adapters.framed import FramedCodec

# re-exported for adapters written before the tiny-checkpoint helpers moved to adapters/tiny.py
from tokbench.adapters.tiny import fill_codebooks, save_tiny, seeded  # noqa: F401
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
    config_rate: ClassVar[str] = "sampling_rate"  # X-Codec's config says "sample_rate"
    config_hop: ClassVar[str] = "hop_length"
    config_codebooks: ClassVar[str | None] = "num_quantizers"  # None: one codebook, no such field
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
        have = int(getattr(config, self.config_codebooks)) if self.config_codebooks else 1
        need = self.meta.n_codebooks
        family_max = getattr(self.Options, "maximum", None)  # FirstCodebooks families
        if family_max is not None and have != family_max:
            problems.append(f"{self.config_codebooks or 'codebooks'} {have} != {family_max}")
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
