"""Higgs Audio v2 tokenizer (Boson AI), served by ``transformers.HiggsAudioV2TokenizerModel``
(transformers >= 5.17): 24 kHz, 25 Hz (hop 960), residual VQ of 8 codebooks of 1024 over the
concatenation of a DAC-style acoustic encoder and a HuBERT-base semantic branch (the input is
resampled to 16 kHz for HuBERT with ``torchaudio.functional.resample``: docs/torchaudio.md).
The bandwidth picks the number of codebooks: 0.5 / 1 / 1.5 / 2 kbps = 2 / 4 / 6 / 8 codebooks.

transformers' default ``HiggsAudioV2TokenizerConfig`` does not describe the released model (its
DAC ratios give hop 320, and it asks for 16 codebooks); the released config is recorded below
(``RELEASED_CONFIG``) and the loaded checkpoint is checked against the rates and codebooks.

Batching: HuBERT's group-normalised feature extractor and its attention see the whole input
(no padding mask), so items are computed one at a time (``per_item``): batched equals alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from tokbench.adapters.costs import ModelCost, PublishedParams
from tokbench.adapters.hf_codec import HFCodec, save_tiny, seeded
from tokbench.adapters.requirements import require_torchaudio, transformers_class
from tokbench.registry import preset
from tokbench.types import BatchTolerance

#: bosonai/higgs-audio-v2-tokenizer commit loaded with transformers' HiggsAudioV2TokenizerModel
#: in public code (a feature-probing project's model registry); the repo's earlier commits hold
#: Boson's own (non-transformers) layout.
HIGGS_REVISION = "403fbacf2f60caaa102f893fdfabb694619b2417"
BANDWIDTHS = (0.5, 1.0, 1.5, 2.0)  # kbps

#: The released model's config (the transformers layout of bosonai/higgs-audio-v2-tokenizer):
#: the values public projects quote from its config.json (checked against each other, not
#: against the Hub, which is unreachable here). Fields left out take transformers' defaults,
#: which those quotes repeat (HuBERT-base: 12 layers, 768 wide, 12 heads, 3072 feed-forward).
RELEASED_CONFIG: dict[str, Any] = {
    "sample_rate": 24000, "semantic_sample_rate": 16000, "downsample_factor": 320,
    "codebook_size": 1024, "codebook_dim": 64, "kernel_size": 3, "unit_kernel_size": 3,
    "strides": [1, 1], "channel_ratios": [1, 1], "block_dilations": [1, 1],
    "target_bandwidths": list(BANDWIDTHS),
    "acoustic_model_config": {
        "model_type": "dac", "encoder_hidden_size": 64, "decoder_hidden_size": 1024,
        "hidden_size": 256, "downsampling_ratios": [8, 5, 4, 2, 3],
        "upsampling_ratios": [8, 5, 4, 2, 3], "sampling_rate": 16000, "hop_length": 960,
        "n_codebooks": 9, "codebook_size": 1024, "codebook_dim": 8,
    },
    "semantic_model_config": {
        "model_type": "hubert", "hidden_size": 768, "num_hidden_layers": 12,
        "num_attention_heads": 12, "intermediate_size": 3072, "mask_time_prob": 0.0,
    },
}

_MEASURED = ("torch 2.13.0 CPU FlopCounterMode (math SDPA), 1 s at 24 kHz, random weights; "
             "no LSTM")


def model_config(**overrides: Any) -> Any:
    """``HiggsAudioV2TokenizerConfig`` of the released model (``overrides`` merge into it)."""
    from transformers import HiggsAudioV2TokenizerConfig

    cfg = {**RELEASED_CONFIG, **overrides}
    for sub in ("acoustic_model_config", "semantic_model_config"):
        cfg[sub] = {**RELEASED_CONFIG[sub], **overrides.get(sub, {})}
    return HiggsAudioV2TokenizerConfig(**cfg)


@dataclass(frozen=True)
class HiggsAudioOptions:
    bandwidth: float = 2.0  # kbps

    def __post_init__(self) -> None:
        if self.bandwidth not in BANDWIDTHS:
            raise ValueError(f"bandwidth must be one of {list(BANDWIDTHS)} (kbps), got {self.bandwidth}")


class HiggsAudioV2Tokenizer(HFCodec):
    """Higgs Audio v2 tokenizer through transformers' HiggsAudioV2TokenizerModel."""

    Options = HiggsAudioOptions
    presets = {"higgs-audio-v2": preset("Higgs Audio v2 tokenizer, 24 kHz, 25 Hz, 2 kbps "
                                        "(8 codebooks)", bandwidth=2.0)}
    presets |= {f"higgs-audio-v2-{kbps:g}kbps": preset(
        f"Higgs Audio v2 tokenizer at {kbps:g} kbps ({int(kbps * 4)} codebooks)", bandwidth=kbps)
        for kbps in BANDWIDTHS[:-1]}
    name, family, kind = "higgs-audio-v2", "higgs-audio-v2", "hybrid"
    repo_id, revision = "bosonai/higgs-audio-v2-tokenizer", HIGGS_REVISION
    sample_rate, hop_length, codebook_size = 24_000, 960, 1024
    config_rate = "sample_rate"
    per_item = True
    # per_item: batched and one at a time are the same computation
    batch_tolerance = BatchTolerance(code_agreement=1.0, snr_db=float("inf"))
    # The model card says "license: other"; Boson AI's Higgs Audio v2 licence terms apply.
    license = "other (Boson AI Higgs Audio v2 licence)"
    citation = ("Boson AI. Higgs Audio V2: Redefining Expressiveness in Audio Generation. "
                "https://github.com/boson-ai/higgs-audio, 2025")
    published_params: ClassVar[PublishedParams | None] = None
    #: measured by benchmarks/tokenizer_costs.py; encoder = DAC encoder + HuBERT-base (94.4 M) +
    #: semantic encoder + fc; decoder = fc2 + DAC decoder; unused = the semantic decoder and
    #: fc1 (training-only heads that reconstruct HuBERT features)
    costs: ClassVar[dict[str, ModelCost]] = {
        name: ModelCost(params_encoder=161_482_176, params_quantizer=1_057_280,
                        params_decoder=20_500_513, params_unused=17_303_808,
                        encode_macs_per_s=enc, decode_macs_per_s=dec, measured=_MEASURED)
        for name, enc, dec in (("higgs-audio-v2", 16_069_736_878, 6_814_566_400),
                               ("higgs-audio-v2-0.5kbps", 16_040_245_678, 6_804_736_000),
                               ("higgs-audio-v2-1kbps", 16_050_076_078, 6_808_012_800),
                               ("higgs-audio-v2-1.5kbps", 16_059_906_478, 6_811_289_600))
    }
    model: Any

    @classmethod
    def model_class(cls) -> type:
        require_torchaudio("the Higgs Audio v2 tokenizer")  # transformers' model imports it
        return transformers_class("HiggsAudioV2TokenizerModel", "5.17")

    @classmethod
    def n_codebooks_for(cls, options: HiggsAudioOptions) -> int:
        # as the model computes it: floor(bandwidth / (frame rate x log2(codebook size)))
        return int(options.bandwidth * 1000 // (cls.frame_rate() * math.log2(cls.codebook_size)))

    @classmethod
    def call_kwargs(cls, options: HiggsAudioOptions) -> dict[str, Any]:
        return {"bandwidth": float(options.bandwidth)}

    def _check_family_config(self, config: Any) -> list[str]:
        problems = []
        if float(self.options.bandwidth) not in [float(b) for b in config.target_bandwidths]:
            problems.append(f"bandwidth {self.options.bandwidth} not in {list(config.target_bandwidths)}")
        if int(config.num_quantizers) != self.n_codebooks_for(HiggsAudioOptions(BANDWIDTHS[-1])):
            problems.append(f"num_quantizers {config.num_quantizers} != 8")
        return problems

    def _decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        wav = self.model.decode(audio_codes=codes, return_dict=True).audio_values
        return wav[:, 0]

    def _codebook_tables(self) -> list[torch.Tensor]:
        # the codebook vectors as the decoder adds them (after each quantizer's project_out)
        return [vq.project_out(vq.codebook.embed) for vq in self.model.quantizer.quantizers]

    @classmethod
    def build_tiny_checkpoint(cls, folder: Path) -> Path:
        """The real rates (24 kHz, hop 960, HuBERT's 320-sample frames at 16 kHz) and 8
        codebooks of 1024; narrow, shallow DAC and HuBERT."""
        config = model_config(
            codebook_dim=8,
            acoustic_model_config={"encoder_hidden_size": 4, "decoder_hidden_size": 32,
                                   "hidden_size": 16},
            semantic_model_config={"hidden_size": 16, "num_hidden_layers": 1,
                                   "num_attention_heads": 2, "intermediate_size": 32,
                                   "conv_dim": [16] * 7, "num_conv_pos_embeddings": 16,
                                   "num_conv_pos_embedding_groups": 2})
        return save_tiny(seeded(cls.model_class(), config), folder)
