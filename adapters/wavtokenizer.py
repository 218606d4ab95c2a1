"""WavTokenizer (Ji et al., ICLR 2025): 24 kHz, one codebook of 4096 at 40 or 75 Hz, through
``transformers.WavTokenizerModel`` (transformers >= 5.24; the Hub ports by swiss-ai, which the
transformers docs list as conversions of the original releases).

Presets: ``wavtokenizer-40`` = ``swiss-ai/wavtokenizer-large-unify-40token`` (hop 600, 40 Hz,
0.48 kbps), ``wavtokenizer-75`` = ``swiss-ai/wavtokenizer-large-speech-75token-v2`` (hop 320,
75 Hz, 0.9 kbps). Always float32 (the base loads float32 whatever the stored dtype): the model
card warns that half precision flips about 66% of the codes.

Batching: per item. The decoder's Vocos backbone has a self-attention block over every frame
with no padding mask, and the encoder's convolutions reflect-pad, so a padded batch differs
from its items alone; one at a time, batched equals alone exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from tokbench.adapters.hf_codec import HFCodec
from tokbench.adapters.requirements import transformers_class
from tokbench.adapters.tiny import fill_codebook
from tokbench.registry import preset
from tokbench.types import BatchTolerance

#: No commit hash of the swiss-ai ports could be found cited anywhere: "main", and the resolved
#: commit of what was loaded is recorded in every run.
REVISION = "main"


@dataclass(frozen=True)
class WavTokenizerOptions:
    """One codebook and no bitrate setting: the variant is the preset."""


class _WavTokenizer(HFCodec):
    Options = WavTokenizerOptions
    family, kind = "wavtokenizer", "acoustic"
    revision = REVISION
    sample_rate = 24_000
    codebook_size = 4096
    config_codebooks = None  # one codebook
    per_item = True
    batch_tolerance: ClassVar[BatchTolerance] = BatchTolerance()  # per item: exact
    license = "MIT (jishengpeng/WavTokenizer)"
    citation = ("Ji et al., WavTokenizer: an Efficient Acoustic Discrete Codec Tokenizer for Audio "
                "Language Modeling, ICLR 2025 (arXiv:2408.16532)")
    upsampling_ratios: ClassVar[tuple[int, ...]]

    @classmethod
    def model_class(cls) -> type:
        return transformers_class("WavTokenizerModel", "5.24")

    @classmethod
    def n_codebooks_for(cls, options: Any) -> int:
        return 1

    def _decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(codes, return_dict=True).audio_values[:, 0]

    def _codebook_tables(self) -> list[torch.Tensor]:
        return [self.model.encoder_model.quantizer.codebook.embed]

    @classmethod
    def build_tiny_checkpoint(cls, folder: Path) -> Path:
        """The real rate, hop and codebook (4096); small widths and depths."""
        from transformers import WavTokenizerConfig

        from tokbench.adapters.tiny import seeded

        config = WavTokenizerConfig(
            sampling_rate=cls.sample_rate, upsampling_ratios=list(cls.upsampling_ratios),
            codebook_size=4096, num_filters=4, hidden_size=16, codebook_dim=16, num_lstm_layers=1,
            decoder_hidden_size=16, decoder_intermediate_size=32, decoder_num_layers=1,
            decoder_attention_num_groups=4)
        model = seeded(cls.model_class(), config).eval()
        # the codebook starts at zeros: spread it like the encoder's output on noise
        noise = 0.1 * torch.randn(1, 1, cls.sample_rate, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            feats = model.encoder_model.encoder(noise)[0].T
        fill_codebook(model.encoder_model.quantizer.codebook.embed, feats, seed=0)
        model.save_pretrained(folder)
        return Path(folder)


class WavTokenizer40(_WavTokenizer):
    presets = {"wavtokenizer-40": preset(
        "WavTokenizer large (unified), 24 kHz, one codebook of 4096 at 40 Hz: 0.48 kbps")}
    name = "wavtokenizer-40"
    repo_id = "swiss-ai/wavtokenizer-large-unify-40token"
    hop_length = 600  # upsampling ratios 6 * 5 * 5 * 4: 40 Hz
    upsampling_ratios = (6, 5, 5, 4)


class WavTokenizer75(_WavTokenizer):
    presets = {"wavtokenizer-75": preset(
        "WavTokenizer large v2 (speech), 24 kHz, one codebook of 4096 at 75 Hz: 0.9 kbps")}
    name = "wavtokenizer-75"
    repo_id = "swiss-ai/wavtokenizer-large-speech-75token-v2"
    hop_length = 320  # 8 * 5 * 4 * 2: 75 Hz
    upsampling_ratios = (8, 5, 4, 2)
