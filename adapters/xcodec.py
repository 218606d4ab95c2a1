"""X-Codec (Ye et al., AAAI 2025): 16 kHz, 50 Hz, residual VQ of up to 8 codebooks of 1024 over
a joint acoustic (DAC encoder) and semantic (HuBERT / WavLM hidden states, averaged over layers)
embedding. Served by ``transformers.XcodecModel``.

Variants (the hf-audio ports; their model cards list the semantic model and data):
``xcodec-hubert-librispeech`` (facebook/hubert-base-ls960, LibriSpeech), ``xcodec-wavlm-mls``
(microsoft/wavlm-base-plus, MLS English), ``xcodec-wavlm-more-data`` (wavlm-base-plus, MLS +
internal data), ``xcodec-hubert-general`` and ``xcodec-hubert-general-balanced`` (a HuBERT
trained on general audio). Bandwidths are the model's own: 0.5, 1, 1.5, 2 and 4 kbps = 1, 2, 3,
4 and 8 codebooks (each codebook 50 Hz x 10 bits = 0.5 kbps); the model is called with
``bandwidth=`` the option.

Batching: per item (:mod:`tokbench.adapters.per_item`): the semantic model attends over the
whole input with no padding mask, so padding would change every frame of a batched item.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tokbench.adapters.per_item import PerItemCodec
from tokbench.adapters.requirements import transformers_class
from tokbench.adapters.tiny import fill_codebook

BANDWIDTHS = (0.5, 1.0, 1.5, 2.0, 4.0)  # kbps, config.target_bandwidths of every release
CODEBOOK_SIZE = 1024
FRAME_RATE = 50
MAX_CODEBOOKS = 8
LICENSE = "CC-BY-4.0 (hf-audio model cards)"
CITATION = ("Ye et al., Codec Does Matter: Exploring the Semantic Shortcoming of Codec for Audio "
            "Language Model, AAAI 2025 (arXiv:2408.17175)")
#: No full commit hash of the hf-audio ports could be verified: "main"; the resolved commit of
#: what was loaded is recorded in every run.
REVISION = "main"

#: variant -> (Hub repo, semantic model family for the tiny checkpoint)
VARIANTS: dict[str, tuple[str, str]] = {
    "hubert-librispeech": ("hf-audio/xcodec-hubert-librispeech", "hubert"),
    "wavlm-mls": ("hf-audio/xcodec-wavlm-mls", "wavlm"),
    "wavlm-more-data": ("hf-audio/xcodec-wavlm-more-data", "wavlm"),
    "hubert-general": ("hf-audio/xcodec-hubert-general", "hubert"),
    "hubert-general-balanced": ("hf-audio/xcodec-hubert-general-balanced", "hubert"),
}


@dataclass(frozen=True)
class XcodecOptions:
    variant: str = "hubert-librispeech"
    bandwidth: float = 4.0  # kbps: 0.5, 1, 1.5, 2 or 4 (1, 2, 3, 4 or 8 codebooks)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {list(VARIANTS)}, got {self.variant!r}")
        if float(self.bandwidth) not in BANDWIDTHS:
            raise ValueError(f"bandwidth must be one of {list(BANDWIDTHS)} kbps, got {self.bandwidth}")

    @property
    def n_codebooks(self) -> int:
        return int(round(self.bandwidth * 1000 / (FRAME_RATE * 10)))


class XcodecTokenizer(PerItemCodec):
    """X-Codec through transformers' XcodecModel (one class for every released variant)."""

    Options = XcodecOptions
    name = "xcodec"
    family = "xcodec"
    kind = "hybrid"  # every codebook quantises a joint acoustic + semantic embedding
    repo_id = VARIANTS["hubert-librispeech"][0]
    revision = REVISION
    sample_rate = 16_000
    hop_length = 320  # DAC encoder strides 8 * 5 * 4 * 2
    codebook_size = CODEBOOK_SIZE
    max_codebooks = MAX_CODEBOOKS
    license = LICENSE
    citation = CITATION

    @classmethod
    def describe(cls, options: XcodecOptions) -> Any:
        import dataclasses

        from tokbench.types import ModelSource

        meta = super().describe(options)
        return dataclasses.replace(meta, name=f"xcodec-{options.variant}",
                                   source=ModelSource(repo_id=VARIANTS[options.variant][0],
                                                      revision=cls.revision))

    def __init__(self, options: XcodecOptions, *, device: str = "cpu", checkpoint: str | None = None):
        self.repo_id = VARIANTS[options.variant][0]  # per instance: the variant's repo
        super().__init__(options, device=device, checkpoint=checkpoint)

    @classmethod
    def model_class(cls) -> type:
        return transformers_class("XcodecModel", "4.57")

    @classmethod
    def n_codebooks_for(cls, options: XcodecOptions) -> int:
        return options.n_codebooks

    @classmethod
    def call_kwargs(cls, options: XcodecOptions) -> dict[str, Any]:
        return {"bandwidth": float(options.bandwidth)}

    def _config_hop(self, config: Any) -> int:
        return int(config.hop_length)

    def _check_family_config(self, config: Any) -> list[str]:
        bws = [float(b) for b in config.target_bandwidths]
        if float(self.options.bandwidth) not in bws:
            return [f"bandwidth {self.options.bandwidth} not among the checkpoint's {bws}"]
        return []

    def check_config(self, config: Any, source: Any) -> None:
        config.sampling_rate = config.sample_rate  # XcodecConfig names it sample_rate
        super().check_config(config, source)

    def _encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x, **self.encode_kwargs(), return_dict=True).audio_codes

    def _decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(codes, return_dict=True).audio_values[:, 0]

    def _codebook_tables(self) -> list[torch.Tensor]:
        return [q.codebook.embed for q in self.model.quantizer.quantizers]

    @classmethod
    def build_tiny_checkpoint(cls, folder: Path, seed: int = 0, variant: str = "hubert-librispeech") -> Path:
        """A random X-Codec with the real rate (16 kHz), hop (320), bandwidths (8 codebooks of
        1024) and semantic conv stack (hop 320); small widths and depths."""
        from transformers import DacConfig, HubertConfig, WavLMConfig, XcodecConfig

        torch.manual_seed(seed)
        ssl = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                   conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
        semantic = (WavLMConfig(**ssl) if VARIANTS[variant][1] == "wavlm" else HubertConfig(**ssl))
        acoustic = DacConfig(encoder_hidden_size=2, downsampling_ratios=[8, 5, 4, 2],
                             decoder_hidden_size=16, upsampling_ratios=[8, 5, 4, 2], hidden_size=16)
        config = XcodecConfig(acoustic_model_config=acoustic.to_dict(),
                              semantic_model_config=semantic.to_dict(), codebook_size=CODEBOOK_SIZE)
        model = transformers_class("XcodecModel", "4.57")(config).eval()
        _fill_rvq(model, [q.codebook.embed for q in model.quantizer.quantizers], seed)
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
