"""Weight-free waveform tokenizers: 16-bit linear PCM (identity) and mu-law companding.

Both run at 16 kHz with one code per sample, so they need no padding logic: batched results are
exactly the one-at-a-time results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from tokbench.registry import preset
from tokbench.types import Audio, ModelSource, TokenizerBase, TokenizerMeta, Tokens

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class IdentityOptions:
    pass


class IdentityTokenizer(TokenizerBase):
    """Codes are 16-bit PCM sample values offset to 0..65535."""

    Options = IdentityOptions
    presets = {"identity": preset("16-bit PCM at 16 kHz: the ground-truth row")}

    @classmethod
    def describe(cls, options: IdentityOptions) -> TokenizerMeta:
        return TokenizerMeta(
            name="identity", family="pcm", kind="reference", sample_rate=SAMPLE_RATE,
            frame_rate=float(SAMPLE_RATE), n_codebooks=1, codebook_sizes=(65536,), streamable=True,
            capabilities=frozenset({"decode"}), source=ModelSource(), license="MIT",
            citation="", options={})

    def encode(self, wav: torch.Tensor, lengths: torch.Tensor) -> Tokens:
        self.check_input(wav, lengths)
        codes = torch.round(wav.clamp(-1.0, 32767 / 32768) * 32768).to(torch.long) + 32768
        return Tokens(codes[:, None, :], lengths)

    def decode(self, tokens: Tokens, prompt: Audio | None = None) -> Audio:
        wav = (tokens.codes[:, 0, :].to(torch.float32) - 32768) / 32768
        return Audio(wav, tokens.frame_lengths.clone(), SAMPLE_RATE)

    @classmethod
    def build_tiny_checkpoint(cls, folder: Path) -> None:
        return None  # no weights


@dataclass(frozen=True)
class MuLawOptions:
    bits: int = 8

    def __post_init__(self) -> None:
        if not 2 <= self.bits <= 16:
            raise ValueError(f"bits must lie in [2, 16], got {self.bits}")


class MuLawTokenizer(TokenizerBase):
    """mu-law companding with mu = 2**bits - 1, quantised to 2**bits uniform levels."""

    Options = MuLawOptions
    presets = {"mulaw": preset("8-bit mu-law at 16 kHz (G.711-style companding): 256 codes, "
                               "128 kbps", bits=8)}

    @classmethod
    def describe(cls, options: MuLawOptions) -> TokenizerMeta:
        return TokenizerMeta(
            name="mulaw", family="pcm", kind="acoustic", sample_rate=SAMPLE_RATE,
            frame_rate=float(SAMPLE_RATE), n_codebooks=1, codebook_sizes=(2**options.bits,),
            streamable=True, capabilities=frozenset({"decode"}), source=ModelSource(),
            license="MIT", citation="ITU-T Recommendation G.711 (1972)",
            options={"bits": options.bits})

    @property
    def mu(self) -> int:
        return 2**self.options.bits - 1

    def encode(self, wav: torch.Tensor, lengths: torch.Tensor) -> Tokens:
        self.check_input(wav, lengths)
        mu = self.mu
        x = wav.clamp(-1.0, 1.0)
        y = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
        codes = torch.round((y + 1) / 2 * mu).to(torch.long)
        return Tokens(codes[:, None, :], lengths)

    def decode(self, tokens: Tokens, prompt: Audio | None = None) -> Audio:
        mu = self.mu
        y = tokens.codes[:, 0, :].to(torch.float32) / mu * 2 - 1
        x = torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu
        return Audio(x, tokens.frame_lengths.clone(), SAMPLE_RATE)

    @classmethod
    def build_tiny_checkpoint(cls, folder: Path) -> None:
        return None  # no weights
