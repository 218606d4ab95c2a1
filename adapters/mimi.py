"""Mimi (Kyutai), the codec of Moshi: 24 kHz, 12.5 Hz, up to 32 codebooks of 2048 (the first
distilled from WavLM), through ``transformers.MimiModel``. Batching needs no context: every
convolution is causal and the transformers attend causally (``encode``'s ``padding_mask`` is
ignored by the transformers 5.x encoder, so none is passed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from tokbench.adapters.framed import FirstCodebooks
from tokbench.adapters.hf_codec import HFCodec
from tokbench.adapters.tiny import save_tiny, seeded
from tokbench.registry import preset

#: kyutai/mimi commit pinned by several public projects (e.g. in Moshi-derived code).
MIMI_REVISION = "89091b3e466eb6a9d11e537bf26b144f194978f7"


@dataclass(frozen=True)
class MimiOptions(FirstCodebooks):
    n_codebooks: int = 8
    maximum: ClassVar[int] = 32


class MimiTokenizer(HFCodec):
    """Kyutai Mimi through transformers' MimiModel."""

    Options = MimiOptions
    presets = {
        "mimi": preset("Kyutai Mimi (Moshi), first 8 of 32 codebooks as Moshi uses it: 1.1 kbps",
                       n_codebooks=8),
        "mimi-32": preset("Kyutai Mimi, all 32 codebooks: 4.4 kbps", n_codebooks=32),
    }
    name, family, kind = "mimi", "mimi", "hybrid"  # codebook 0 is semantic, the rest acoustic
    repo_id, revision = "kyutai/mimi", MIMI_REVISION
    sample_rate = 24_000
    hop_length = 1920  # 8 * 6 * 5 * 4 (SEANet) * 2 (downsampling): 12.5 Hz
    codebook_size, config_hop = 2048, "frame_size"
    streamable = True
    license = "CC-BY-4.0"
    citation = ("Defossez et al., Moshi: a speech-text foundation model for real-time dialogue, "
                "arXiv:2410.00037, 2024")

    @classmethod
    def model_class(cls) -> type:
        from transformers import MimiModel

        return MimiModel

    @classmethod
    def call_kwargs(cls, options: MimiOptions) -> dict[str, Any]:
        return {"num_quantizers": options.n_codebooks}

    def _codebook_tables(self) -> list[Any]:
        q = self.model.quantizer
        layers = [*q.semantic_residual_vector_quantizer.layers, *q.acoustic_residual_vector_quantizer.layers]
        return [layer.codebook.embed for layer in layers]

    @classmethod
    def build_tiny_checkpoint(cls, folder: Path) -> Path:
        from transformers import MimiConfig, MimiModel

        config = MimiConfig(  # the real strides, 32 x 2048 codes; narrow and shallow
            sampling_rate=24_000, hidden_size=64, num_filters=8, num_residual_layers=1,
            upsampling_ratios=[8, 6, 5, 4], num_hidden_layers=2, intermediate_size=128,
            num_attention_heads=4, num_key_value_heads=4, head_dim=16, codebook_size=2048,
            codebook_dim=16, vector_quantization_hidden_dimension=16, num_quantizers=32,
            num_semantic_quantizers=1, upsample_groups=64)
        return save_tiny(seeded(MimiModel, config), folder)
