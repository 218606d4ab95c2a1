"""DAC, the Descript Audio Codec (improved RVQGAN), served by ``transformers.DacModel``:
``dac-16k`` (12 codebooks at 50 Hz), ``dac-24k`` (32 at 75 Hz), ``dac-44k`` (9 at 44100 / 512 =
86.13 Hz), each of 1024 entries; presets ``dac-24k-8q`` etc. use the first N codebooks.

DAC's convolutions are not causal and it has no padding mask: in a batch, the last frames of a
shorter item would see the (processed) padding rather than the zero padding its convolutions see
alone. Every item therefore gets ``context_frames`` = 8 zero frames after it, on both paths
(more than the measured reach of 5 frames for the encoder and 7 for the decoder), which makes
batched results equal one-at-a-time results up to float rounding. Input is zero-padded to whole
frames, as DAC's own preprocessing does. The decoder returns 8 samples fewer than
``frames x hop`` for hop 320 (the stride-5 upsampler has no output padding); the shortfall falls
inside the context frames, so every item's own samples are decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from tokbench.adapters.hf_codec import HFCodecTokenizer

#: descript/dac_* commits pinned by several public projects.
DAC_16K_REVISION = "7c2fc5e759f1f501aefc6e7a0265cc57f5d17ba7"
DAC_24K_REVISION = "6ba020b5ba7d9d8076fb90db7e67f27e31980f6e"
DAC_44K_REVISION = "c1bc521685adf9cfe247bc39a5ca58917eda1ac4"


def _check_n_quantizers(n: int, maximum: int) -> None:
    if not 1 <= n <= maximum:
        raise ValueError(f"n_quantizers must lie in [1, {maximum}], got {n}")


@dataclass(frozen=True)
class Dac16kOptions:
    n_quantizers: int = 12

    def __post_init__(self) -> None:
        _check_n_quantizers(self.n_quantizers, 12)


@dataclass(frozen=True)
class Dac24kOptions:
    n_quantizers: int = 32

    def __post_init__(self) -> None:
        _check_n_quantizers(self.n_quantizers, 32)


@dataclass(frozen=True)
class Dac44kOptions:
    n_quantizers: int = 9

    def __post_init__(self) -> None:
        _check_n_quantizers(self.n_quantizers, 9)


class _DacTokenizer(HFCodecTokenizer):
    family = "dac"
    codebook_size = 1024
    license = "MIT"
    citation = ("Kumar, Seetharaman, Luebs, Kumar, Kumar, High-Fidelity Audio Compression with "
                "Improved RVQGAN, NeurIPS 2023, arXiv:2306.06546")
    # Right-hand receptive field, measured with impulses (same kernels, dilations and strides as
    # the real checkpoints): an input sample reaches codes up to 5 frames earlier, a latent frame
    # reaches samples up to 7 frames earlier. 8 zero frames per item make batching exact.
    context_frames = 8

    @classmethod
    def model_class(cls) -> type:
        from transformers import DacModel

        return DacModel

    @classmethod
    def n_codebooks_for(cls, options: Any) -> int:
        return options.n_quantizers

    @classmethod
    def call_kwargs(cls, options: Any) -> dict[str, Any]:
        return {"n_quantizers": options.n_quantizers}

    def _check_family_config(self, config: Any) -> list[str]:
        if int(config.n_codebooks) != self.max_codebooks:
            return [f"n_codebooks {config.n_codebooks} != {self.max_codebooks}"]
        return []

    def _encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x, **self.encode_kwargs(), return_dict=True).audio_codes

    def _decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(audio_codes=codes, return_dict=True).audio_values

    def _codebook_tables(self) -> list[torch.Tensor]:
        return [q.codebook.weight for q in self.model.quantizer.quantizers]


class Dac16kTokenizer(_DacTokenizer):
    """Descript DAC 16 kHz through transformers' DacModel."""

    Options = Dac16kOptions
    name = "dac-16k"
    repo_id = "descript/dac_16khz"
    revision = DAC_16K_REVISION
    sample_rate = 16_000
    hop_length = 320  # 2 * 4 * 5 * 8: 50 Hz
    max_codebooks = 12


class Dac24kTokenizer(_DacTokenizer):
    """Descript DAC 24 kHz through transformers' DacModel."""

    Options = Dac24kOptions
    name = "dac-24k"
    repo_id = "descript/dac_24khz"
    revision = DAC_24K_REVISION
    sample_rate = 24_000
    hop_length = 320  # 2 * 4 * 5 * 8: 75 Hz
    max_codebooks = 32


class Dac44kTokenizer(_DacTokenizer):
    """Descript DAC 44.1 kHz through transformers' DacModel."""

    Options = Dac44kOptions
    name = "dac-44k"
    repo_id = "descript/dac_44khz"
    revision = DAC_44K_REVISION
    sample_rate = 44_100
    hop_length = 512  # 2 * 4 * 8 * 8: 86.13 Hz
    max_codebooks = 9
