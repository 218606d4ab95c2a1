"""X-Codec (Ye et al., AAAI 2025): 16 kHz, 50 Hz, residual VQ of up to 8 codebooks of 1024 over
a joint acoustic (DAC encoder) and semantic (HuBERT / WavLM hidden states, averaged over layers)
embedding. Served by ``transformers.XcodecModel``.

Variants (the hf-audio ports; their model cards list the semantic model and data):
``xcodec-hubert-librispeech`` (facebook/hubert-base-ls960, LibriSpeech), ``xcodec-wavlm-mls``
(microsoft/wavlm-base-plus, MLS English), ``xcodec-wavlm-more-data`` (wavlm-base-plus, MLS +
internal data), ``xcodec-hubert-general`` and ``xcodec-hubert-general-balanced`` (a HuBERT
trained on general audio). ``--set n_codebooks=N`` with N in 1, 2, 3, 4, 8: the model's own
bandwidths 0.5, 1, 1.5, 2 and 4 kbps (each codebook 50 Hz x 10 bits = 0.5 kbps); the model is
called with ``bandwidth=`` N x 0.5. ``--set variant=...`` picks the release.

Batching: per item (the kit's ``per_item``): the semantic model attends over the whole input
with no padding mask, so padding would change every frame of a batched item.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from tokbench.adapters.framed import FirstCodebooks
from tokbench.adapters.hf_codec import HFCodec
from tokbench.adapters.requirements import transformers_class
from tokbench.adapters.tiny import fill_codebook
from tokbench.registry import preset
from tokbench.types import BatchTolerance, ModelSource, TokenizerMeta

#: codebooks -> the model's bandwidth argument (kbps): config.target_bandwidths of every release
BANDWIDTHS = {1: 0.5, 2: 1.0, 3: 1.5, 4: 2.0, 8: 4.0}
#: No full commit hash of the hf-audio ports could be verified: "main"; the resolved commit of
#: what was loaded is recorded in every run.
REVISION = "main"

#: variant -> (Hub repo, semantic model family of the tiny checkpoint, description)
VARIANTS: dict[str, tuple[str, str, str]] = {
    "hubert-librispeech": ("hf-audio/xcodec-hubert-librispeech", "hubert",
                           "HuBERT-base semantic branch, LibriSpeech"),
    "wavlm-mls": ("hf-audio/xcodec-wavlm-mls", "wavlm", "WavLM-base+ semantic branch, MLS English"),
    "wavlm-more-data": ("hf-audio/xcodec-wavlm-more-data", "wavlm",
                        "WavLM-base+ semantic branch, MLS + more data"),
    "hubert-general": ("hf-audio/xcodec-hubert-general", "hubert", "general-audio HuBERT semantic branch"),
    "hubert-general-balanced": ("hf-audio/xcodec-hubert-general-balanced", "hubert",
                                "general-audio HuBERT, balanced data"),
}


@dataclass(frozen=True)
class XcodecOptions(FirstCodebooks):
    n_codebooks: int = 8
    variant: str = "hubert-librispeech"
    maximum: ClassVar[int] = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_codebooks not in BANDWIDTHS:
            raise ValueError(f"n_codebooks must be one of {sorted(BANDWIDTHS)} (the model's "
                             f"bandwidths {sorted(BANDWIDTHS.values())} kbps), got {self.n_codebooks}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {list(VARIANTS)}, got {self.variant!r}")


def _presets() -> dict[str, Any]:
    out = {f"xcodec-{v}": preset(f"X-Codec ({d}), 16 kHz, 8 codebooks of 1024 at 50 Hz: 4 kbps",
                                 variant=v, n_codebooks=8)
           for v, (_, _, d) in VARIANTS.items()}
    for n, bw in BANDWIDTHS.items():
        if n < 8:
            out[f"xcodec-hubert-librispeech-{bw:g}kbps"] = preset(
                f"X-Codec (HuBERT, LibriSpeech), first {n} of 8 codebooks: {bw:g} kbps",
                variant="hubert-librispeech", n_codebooks=n)
    return out


class XcodecTokenizer(HFCodec):
    """X-Codec through transformers' XcodecModel (one class for every released variant)."""

    Options = XcodecOptions
    presets = _presets()
    name, family = "xcodec", "xcodec"
    kind = "hybrid"  # every codebook quantises a joint acoustic + semantic embedding
    repo_id = VARIANTS["hubert-librispeech"][0]  # per instance: the variant's repo
    revision = REVISION
    sample_rate = 16_000
    hop_length = 320  # DAC encoder strides 8 * 5 * 4 * 2: 50 Hz
    codebook_size = 1024
    config_rate = "sample_rate"
    per_item = True  # the semantic model attends over the whole input, padding included
    batch_tolerance: ClassVar[BatchTolerance] = BatchTolerance()  # per item: exact
    license = "CC-BY-4.0 (seen on the hf-audio/xcodec-wavlm-more-data card; assumed for the others)"
    citation = ("Ye et al., Codec Does Matter: Exploring the Semantic Shortcoming of Codec for Audio "
                "Language Model, AAAI 2025 (arXiv:2408.17175)")

    @classmethod
    def describe(cls, options: XcodecOptions) -> TokenizerMeta:
        meta = super().describe(options)
        return dataclasses.replace(meta, name=f"xcodec-{options.variant}",
                                   source=ModelSource(repo_id=VARIANTS[options.variant][0],
                                                      revision=cls.revision))

    def __init__(self, options: XcodecOptions, *, device: str = "cpu", checkpoint: str | None = None):
        self.repo_id = VARIANTS[options.variant][0]  # type: ignore[misc]  # per variant
        super().__init__(options, device=device, checkpoint=checkpoint)

    @classmethod
    def model_class(cls) -> type:
        return transformers_class("XcodecModel", "5.24")

    @classmethod
    def call_kwargs(cls, options: XcodecOptions) -> dict[str, Any]:
        return {"bandwidth": BANDWIDTHS[options.n_codebooks]}

    def _check_family_config(self, config: Any) -> list[str]:
        have = sorted(float(b) for b in config.target_bandwidths)
        if have != sorted(BANDWIDTHS.values()):
            return [f"target_bandwidths {have} != {sorted(BANDWIDTHS.values())}"]
        return []

    def _decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(codes, return_dict=True).audio_values[:, 0]

    def _codebook_tables(self) -> list[torch.Tensor]:
        return [q.codebook.embed for q in self.model.quantizer.quantizers]

    @classmethod
    def build_tiny_checkpoint(cls, folder: Path) -> Path:
        """A random X-Codec with the real rate (16 kHz), hop (320), bandwidths (8 codebooks of
        1024) and semantic conv stack (hop 320); small widths and depths. It serves every
        variant (their configs differ only in the semantic model's weights and kind)."""
        from transformers import HubertConfig, XcodecConfig

        from tokbench.adapters.tiny import seeded

        semantic = HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                intermediate_size=64, conv_dim=(32,) * 7, num_conv_pos_embeddings=16,
                                num_conv_pos_embedding_groups=4)
        # merged into XcodecConfig's own DAC defaults (the real strides 8, 5, 4, 2)
        acoustic = {"encoder_hidden_size": 2, "decoder_hidden_size": 16, "hidden_size": 16,
                    "downsampling_ratios": [8, 5, 4, 2], "upsampling_ratios": [8, 5, 4, 2]}
        config = XcodecConfig(acoustic_model_config=acoustic,
                              semantic_model_config=semantic.to_dict(), codebook_size=1024)
        model = seeded(cls.model_class(), config).eval()
        _fill_rvq(model, [q.codebook.embed for q in model.quantizer.quantizers], seed=0)
        model.save_pretrained(folder)
        return Path(folder)


def _fill_rvq(model: Any, tables: list[torch.Tensor], seed: int) -> None:
    """Fill zero RVQ codebooks: level i spread like the quantiser input, scaled by 2^-i (the
    residuals shrink level by level)."""
    captured: list[torch.Tensor] = []
    original = model.quantizer.encode

    def spy(embeddings: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        captured.append(embeddings)
        return original(embeddings, *args, **kwargs)

    model.quantizer.encode = spy
    noise = 0.1 * torch.randn(1, 1, 16000, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        model.encode(noise)
    del model.quantizer.encode
    feats = captured[0][0].T  # [F, D]
    for i, table in enumerate(tables):
        fill_codebook(table, feats * 0.5 ** i, seed + i)
