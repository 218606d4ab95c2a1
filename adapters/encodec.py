"""EnCodec 24 kHz (Meta): 75 Hz, up to 32 codebooks of 1024, served by
``transformers.EncodecModel``. The bandwidth picks the number of codebooks:
1.5 / 3 / 6 / 12 / 24 kbps = 2 / 4 / 8 / 16 / 32 codebooks. The bare ``encodec-24k`` is 6 kbps.

The bandwidth is always passed explicitly: ``EncodecModel.encode(bandwidth=None)`` silently means
the lowest one (1.5 kbps). The model returns codes ``(chunks, batch, codebooks, frames)``; the 24
kHz model has no chunking, so there is exactly one chunk (checked). Its convolutions are causal
and its LSTM one-directional; the left edge is padded by reflection (the same alone or in a
batch) and whole-frame input never triggers the right-edge reflection padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tokbench.adapters.hf_codec import HFCodec
from tokbench.adapters.tiny import save_tiny, seeded
from tokbench.registry import preset

#: facebook/encodec_24khz commit pinned by several public projects (e.g. MTEB's model registry).
ENCODEC_24K_REVISION = "c1dbe2ae3f1de713481a3b3e7c47f357092ee040"
BANDWIDTHS = (1.5, 3.0, 6.0, 12.0, 24.0)  # kbps


@dataclass(frozen=True)
class EncodecOptions:
    bandwidth: float = 6.0  # kbps

    def __post_init__(self) -> None:
        if self.bandwidth not in BANDWIDTHS:
            raise ValueError(f"bandwidth must be one of {list(BANDWIDTHS)} (kbps), got {self.bandwidth}")


class Encodec24kTokenizer(HFCodec):
    """Meta EnCodec 24 kHz through transformers' EncodecModel."""

    Options = EncodecOptions
    presets = {"encodec-24k": preset("Meta EnCodec 24 kHz at 6 kbps (8 codebooks)", bandwidth=6.0)}
    presets |= {f"encodec-24k-{kbps:g}kbps": preset(
        f"Meta EnCodec 24 kHz at {kbps:g} kbps ({int(kbps * 4 / 3)} codebooks)", bandwidth=kbps)
        for kbps in BANDWIDTHS}
    name = "encodec-24k"
    family = "encodec"
    repo_id = "facebook/encodec_24khz"
    revision = ENCODEC_24K_REVISION
    sample_rate = 24_000
    hop_length = 320  # 2 * 4 * 5 * 8: 75 Hz
    codebook_size = 1024
    streamable = True
    license = "CC-BY-NC-4.0"
    citation = ("Defossez, Copet, Synnaeve, Adi, High Fidelity Neural Audio Compression, "
                "TMLR 2023, arXiv:2210.13438")
    # The last encoder conv and the first decoder conv (kernel 7 at the frame rate) reflect-pad
    # their left edge, reading frames 1..6: shorter items are computed over 7 frames.
    min_frames = 7

    @classmethod
    def model_class(cls) -> type:
        from transformers import EncodecModel

        return EncodecModel

    @classmethod
    def n_codebooks_for(cls, options: EncodecOptions) -> int:
        # as EnCodec computes it: floor(bandwidth / (frame rate x log2(codebook size)))
        return int(options.bandwidth * 1000 // (cls.frame_rate() * math.log2(cls.codebook_size)))

    @classmethod
    def call_kwargs(cls, options: EncodecOptions) -> dict[str, Any]:
        return {"bandwidth": float(options.bandwidth)}

    def _check_family_config(self, config: Any) -> list[str]:
        problems = []
        if float(self.options.bandwidth) not in [float(b) for b in config.target_bandwidths]:
            problems.append(f"bandwidth {self.options.bandwidth} not in {list(config.target_bandwidths)}")
        if config.chunk_length_s is not None:
            problems.append("chunked EnCodec models (chunk_length_s set) are not supported")
        if config.normalize:
            problems.append("normalize=True models need per-chunk scales, which tokens do not carry")
        return problems

    def _encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model.encode(x, **self.encode_kwargs(), return_dict=True)
        codes = out.audio_codes  # (chunks, batch, codebooks, frames)
        if codes.shape[0] != 1 or out.last_frame_pad_length:
            raise RuntimeError(f"{self.name}: expected one unpadded chunk, got codes "
                               f"{tuple(codes.shape)}, last_frame_pad_length={out.last_frame_pad_length}")
        return codes[0]

    def _decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(codes[None], [None], return_dict=True).audio_values[:, 0]

    def _codebook_tables(self) -> list[torch.Tensor]:
        return [layer.codebook.embed for layer in self.model.quantizer.layers]

    @classmethod
    def build_tiny_checkpoint(cls, folder: Path) -> Path:
        from transformers import EncodecConfig, EncodecModel

        config = EncodecConfig(  # the real strides (75 Hz), 32 x 1024 codes; narrow and shallow
            sampling_rate=24_000, target_bandwidths=list(BANDWIDTHS), hidden_size=32,
            num_filters=8, num_residual_layers=1, num_lstm_layers=1, codebook_size=1024,
            codebook_dim=32, upsampling_ratios=[8, 5, 4, 2], normalize=False)
        return save_tiny(seeded(EncodecModel, config), folder)
