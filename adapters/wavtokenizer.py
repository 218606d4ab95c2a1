"""WavTokenizer (Ji et al., ICLR 2025): 24 kHz, one codebook of 4096 at 40 or 75 Hz. Served by
``transformers.WavTokenizerModel`` (transformers >= 5.24; the Hub ports by swiss-ai).

Presets: ``wavtokenizer-40`` = ``swiss-ai/wavtokenizer-large-unify-40token`` (hop 600, 40 Hz,
0.48 kbps), ``wavtokenizer-75`` = ``swiss-ai/wavtokenizer-large-speech-75token-v2`` (hop 320,
75 Hz, 0.9 kbps); the transformers docs list both as conversions of the original releases.

Precision: always float32. The model card warns that half precision flips about 66% of the codes
(nearest-neighbour argmin near decision boundaries); the base loads float32 whatever the stored
dtype.

Batching: per item (:mod:`tokbench.adapters.per_item`). The decoder's Vocos backbone has a
self-attention block over every frame with no padding mask, and the encoder's convolutions
reflect-pad, so a padded batch differs from its items alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tokbench.adapters.per_item import PerItemCodec
from tokbench.adapters.tiny import fill_codebook

CODEBOOK_SIZE = 4096
LICENSE = "MIT (original code and weights, jishengpeng/WavTokenizer)"
CITATION = ("Ji et al., WavTokenizer: an Efficient Acoustic Discrete Codec Tokenizer for Audio "
            "Language Modeling, ICLR 2025 (arXiv:2408.16532)")
#: No commit hash of the swiss-ai ports could be found cited anywhere: "main", and the resolved
#: commit of what was loaded is recorded in every run.
REVISION = "main"


@dataclass(frozen=True)
class WavTokenizerOptions:
    """WavTokenizer has one codebook and no bitrate setting: the variant is the preset."""


class _WavTokenizer(PerItemCodec):
    Options = WavTokenizerOptions
    family = "wavtokenizer"
    kind = "acoustic"
    revision = REVISION
    sample_rate = 24_000
    codebook_size = CODEBOOK_SIZE
    max_codebooks = 1
    license = LICENSE
    citation = CITATION
    upsampling_ratios: tuple[int, ...]

    @classmethod
    def model_class(cls) -> type:
        from tokbench.adapters.requirements import transformers_class

        return transformers_class("WavTokenizerModel", "5.24")

    @classmethod
    def n_codebooks_for(cls, options: Any) -> int:
        return 1

    @classmethod
    def call_kwargs(cls, options: Any) -> dict[str, Any]:
        return {}

    def _encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x, return_dict=True).audio_codes

    def _decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(codes, return_dict=True).audio_values[:, 0]

    def _codebook_tables(self) -> list[torch.Tensor]:
        return [self.model.encoder_model.quantizer.codebook.embed]

    @classmethod
    def build_tiny_checkpoint(cls, folder: Path, seed: int = 0) -> Path:
        """A random WavTokenizer with this variant's rate, hop and codebook (4096), small widths."""
        from transformers import WavTokenizerConfig

        torch.manual_seed(seed)
        config = WavTokenizerConfig(
            sampling_rate=cls.sample_rate, upsampling_ratios=list(cls.upsampling_ratios),
            codebook_size=CODEBOOK_SIZE, num_filters=4, hidden_size=16, codebook_dim=16,
            num_lstm_layers=1, decoder_hidden_size=16, decoder_intermediate_size=32,
            decoder_num_layers=1, decoder_attention_num_groups=4)
        model = cls.model_class()(config).eval()
        # the codebook starts at zeros (every frame would get code 0): spread it like the
        # encoder's output on noise
        noise = 0.1 * torch.randn(1, 1, 8 * cls.sample_rate // 10, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            feats = model.encoder_model.encoder(noise)[0].T
        fill_codebook(model.encoder_model.quantizer.codebook.embed, feats, seed)
        model.save_pretrained(folder)
        return Path(folder)


class WavTokenizer40(_WavTokenizer):
    name = "wavtokenizer-40"
    repo_id = "swiss-ai/wavtokenizer-large-unify-40token"
    hop_length = 600  # upsampling ratios 6 * 5 * 5 * 4: 40 Hz
    upsampling_ratios = (6, 5, 5, 4)


class WavTokenizer75(_WavTokenizer):
    name = "wavtokenizer-75"
    repo_id = "swiss-ai/wavtokenizer-large-speech-75token-v2"
    hop_length = 320  # 8 * 5 * 4 * 2: 75 Hz
    upsampling_ratios = (8, 5, 4, 2)
