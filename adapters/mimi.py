"""Mimi (Kyutai), the codec of Moshi: 24 kHz, 12.5 Hz, up to 32 codebooks of 2048 (the first one
distilled from WavLM, "semantic"). Served by ``transformers.MimiModel``.

Presets: ``mimi`` = 8 codebooks (1.1 kbps, as Moshi uses it), ``mimi-32`` = all 32 (4.4 kbps).

Batching: every convolution is causal (pad mode "constant"; the downsampling conv replicates,
which whole-frame padding never triggers) and the transformers attend causally, so with each
item zero-padded to whole frames a batched item's valid frames and samples are computed from
exactly what it sees alone. In transformers 5.x ``MimiModel.encode`` accepts a ``padding_mask``
but the encoder ignores it (and ``decode`` only truncates with it), so none is passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from tokbench.adapters.hf_codec import HFCodecTokenizer

#: kyutai/mimi commit pinned by several public projects (e.g. in Moshi-derived code).
MIMI_REVISION = "89091b3e466eb6a9d11e537bf26b144f194978f7"
MAX_QUANTIZERS = 32


@dataclass(frozen=True)
class MimiOptions:
    num_quantizers: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.num_quantizers <= MAX_QUANTIZERS:
            raise ValueError(f"num_quantizers must lie in [1, {MAX_QUANTIZERS}], got {self.num_quantizers}")


class MimiTokenizer(HFCodecTokenizer):
    """Kyutai Mimi through transformers' MimiModel."""

    Options = MimiOptions
    name = "mimi"
    family = "mimi"
    kind = "hybrid"  # codebook 0 is distilled from WavLM (semantic), the rest are acoustic
    repo_id = "kyutai/mimi"
    revision = MIMI_REVISION
    sample_rate = 24_000
    hop_length = 1920  # 8 * 6 * 5 * 4 (SEANet) * 2 (downsampling): 12.5 Hz
    codebook_size = 2048
    max_codebooks = MAX_QUANTIZERS
    streamable = True
    license = "CC-BY-4.0"
    citation = ("Defossez et al., Moshi: a speech-text foundation model for real-time dialogue, "
                "arXiv:2410.00037, 2024")

    @classmethod
    def model_class(cls) -> type:
        from transformers import MimiModel

        return MimiModel

    @classmethod
    def n_codebooks_for(cls, options: MimiOptions) -> int:
        return options.num_quantizers

    @classmethod
    def call_kwargs(cls, options: MimiOptions) -> dict[str, Any]:
        return {"num_quantizers": options.num_quantizers}

    def _config_hop(self, config: Any) -> int:
        return int(config.frame_size)

    def _check_family_config(self, config: Any) -> list[str]:
        problems = []
        if int(config.num_quantizers) < self.options.num_quantizers:
            problems.append(f"the checkpoint has {config.num_quantizers} quantizers, "
                            f"{self.options.num_quantizers} requested")
        if int(config.audio_channels) != 1:
            problems.append(f"audio_channels {config.audio_channels} != 1")
        return problems

    def _encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x, **self.encode_kwargs(), return_dict=True).audio_codes

    def _decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(codes, return_dict=True).audio_values[:, 0]

    def _codebook_tables(self) -> list[torch.Tensor]:
        q = self.model.quantizer
        layers = list(q.semantic_residual_vector_quantizer.layers) + list(
            q.acoustic_residual_vector_quantizer.layers)
        return [layer.codebook.embed for layer in layers]
