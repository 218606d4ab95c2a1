"""DAC, the Descript Audio Codec (improved RVQGAN), served by ``transformers.DacModel``:
``dac-16k`` (12 codebooks at 50 Hz), ``dac-24k`` (32 at 75 Hz), ``dac-44k`` (9 at 44100 / 512 =
86.13 Hz), each of 1024 entries; presets ``dac-24k-8q`` etc. use the first N codebooks.

DAC's convolutions are not causal and it has no padding mask: in a batch, the last frames of a
shorter item would see the (processed) padding rather than the zero padding its convolutions see
alone. Every item therefore gets ``context_frames`` = 8 zero frames after it, on both paths
(the reach of the encoder and decoder above float32 rounding is 5 and 7 frames), which makes
batched results equal one-at-a-time results up to float rounding. Input is zero-padded to whole
frames, as DAC's own preprocessing does. The decoder returns 8 samples fewer than
``frames x hop`` for hop 320 (the stride-5 upsampler has no output padding); the shortfall falls
inside the context frames, so every item's own samples are decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from tokbench.adapters.framed import FirstCodebooks
from tokbench.adapters.hf_codec import HFCodec
from tokbench.adapters.tiny import save_tiny, seeded
from tokbench.registry import Preset, preset

#: descript/dac_* commits pinned by several public projects.
DAC_16K_REVISION = "7c2fc5e759f1f501aefc6e7a0265cc57f5d17ba7"
DAC_24K_REVISION = "6ba020b5ba7d9d8076fb90db7e67f27e31980f6e"
DAC_44K_REVISION = "c1bc521685adf9cfe247bc39a5ca58917eda1ac4"


@dataclass(frozen=True)
class Dac16kOptions(FirstCodebooks):
    n_codebooks: int = 12
    maximum: ClassVar[int] = 12


@dataclass(frozen=True)
class Dac24kOptions(FirstCodebooks):
    n_codebooks: int = 32
    maximum: ClassVar[int] = 32


@dataclass(frozen=True)
class Dac44kOptions(FirstCodebooks):
    n_codebooks: int = 9
    maximum: ClassVar[int] = 9


def _presets(rate: str, full: int, fewer: tuple[int, ...]) -> dict[str, Preset]:
    out = {f"dac-{rate}": preset(f"Descript DAC {rate}Hz, all {full} codebooks", n_codebooks=full)}
    for n in fewer:
        out[f"dac-{rate}-{n}q"] = preset(f"Descript DAC {rate}Hz, first {n} of {full} codebooks",
                                         n_codebooks=n)
    return out


class _DacTokenizer(HFCodec):
    Options: ClassVar[type[FirstCodebooks]]
    family = "dac"
    codebook_size = 1024
    license = "MIT"
    citation = ("Kumar, Seetharaman, Luebs, Kumar, Kumar, High-Fidelity Audio Compression with "
                "Improved RVQGAN, NeurIPS 2023, arXiv:2306.06546")
    # Right-hand reach (tokbench.testing.measure_reach on the tiny model, which has the real
    # kernels, dilations and strides): above 1e-7 an input change reaches the encoder output 5
    # frames earlier and a latent change the samples 7 frames earlier (any change at all: 8 and
    # 9). 8 zero frames per item: batched = one at a time up to float rounding (tiny: 133 dB).
    context_frames = 8
    config_codebooks = "n_codebooks"
    #: downsampling ratios of the real checkpoint (their product is the hop)
    ratios: ClassVar[list[int]]

    @classmethod
    def model_class(cls) -> type:
        from transformers import DacModel

        return DacModel

    @classmethod
    def call_kwargs(cls, options: FirstCodebooks) -> dict[str, Any]:
        return {"n_quantizers": options.n_codebooks}

    def _codebook_tables(self) -> list[Any]:
        return [q.codebook.weight for q in self.model.quantizer.quantizers]

    @classmethod
    def build_tiny_checkpoint(cls, folder: Path) -> Path:
        from transformers import DacConfig, DacModel

        config = DacConfig(  # the real rate, strides and codebooks (1024 x 8-d); narrow
            encoder_hidden_size=4, downsampling_ratios=cls.ratios, decoder_hidden_size=32,
            n_codebooks=cls.Options.maximum, codebook_size=1024, codebook_dim=8,  # type: ignore[attr-defined]
            sampling_rate=cls.sample_rate)
        # DAC codebooks are nn.Embedding weights: already random
        return save_tiny(seeded(DacModel, config), folder, random_codebooks=False)


class Dac16kTokenizer(_DacTokenizer):
    """Descript DAC 16 kHz through transformers' DacModel."""

    Options = Dac16kOptions
    presets = _presets("16k", 12, (8, 4, 2))
    name, repo_id, revision = "dac-16k", "descript/dac_16khz", DAC_16K_REVISION
    sample_rate, hop_length, ratios = 16_000, 320, [2, 4, 5, 8]  # 50 Hz


class Dac24kTokenizer(_DacTokenizer):
    """Descript DAC 24 kHz through transformers' DacModel."""

    Options = Dac24kOptions
    presets = _presets("24k", 32, (16, 8, 4, 2))
    name, repo_id, revision = "dac-24k", "descript/dac_24khz", DAC_24K_REVISION
    sample_rate, hop_length, ratios = 24_000, 320, [2, 4, 5, 8]  # 75 Hz


class Dac44kTokenizer(_DacTokenizer):
    """Descript DAC 44.1 kHz through transformers' DacModel."""

    Options = Dac44kOptions
    presets = _presets("44k", 9, (8, 4, 2))
    name, repo_id, revision = "dac-44k", "descript/dac_44khz", DAC_44K_REVISION
    sample_rate, hop_length, ratios = 44_100, 512, [2, 4, 8, 8]  # 86.13 Hz
