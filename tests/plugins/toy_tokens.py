"""Toy tokenizers with known invariance (test only; plug-ins: --adapter this_file.py:SignBits).

- ``SignBits``: 100 Hz frames of 160 samples at 16 kHz, two binary codebooks: is the frame's
  first sample positive, and are most of its samples positive. Both are unchanged by any
  positive gain and by clipping, so every gain gives a unit edit distance of exactly 0.
- ``RandomTokens``: 100 Hz, one codebook of 1024, fresh random codes on every call: the tokens
  say nothing about the audio, so even re-encoding the same audio gives a UED near 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tokbench.types import ModelSource, TokenizerBase, TokenizerMeta, Tokens

SAMPLE_RATE = 16_000
HOP = 160


@dataclass(frozen=True)
class NoOptions:
    pass


def _frames(wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n = wav.shape[1] // HOP
    return wav[:, : n * HOP].reshape(wav.shape[0], n, HOP), lengths // HOP


class SignBits(TokenizerBase):
    Options = NoOptions

    @classmethod
    def describe(cls, options: NoOptions) -> TokenizerMeta:
        return TokenizerMeta(name="sign-bits", family="test", kind="acoustic",
                             sample_rate=SAMPLE_RATE, frame_rate=SAMPLE_RATE / HOP, n_codebooks=2,
                             codebook_sizes=(2, 2), capabilities=frozenset(), source=ModelSource())

    def encode(self, wav: torch.Tensor, lengths: torch.Tensor) -> Tokens:
        self.check_input(wav, lengths)
        frames, n = _frames(wav, lengths)
        cb0 = (frames[..., 0] > 0).long()
        cb1 = ((frames > 0).sum(-1) * 2 > HOP).long()
        return Tokens(torch.stack([cb0, cb1], dim=1), n)


class RandomTokens(TokenizerBase):
    Options = NoOptions

    def __init__(self, options, *, device="cpu", checkpoint=None):
        super().__init__(options, device=device, checkpoint=checkpoint)
        self.gen = torch.Generator().manual_seed(0)

    @classmethod
    def describe(cls, options: NoOptions) -> TokenizerMeta:
        return TokenizerMeta(name="random-tokens", family="test", kind="acoustic",
                             sample_rate=SAMPLE_RATE, frame_rate=SAMPLE_RATE / HOP, n_codebooks=1,
                             codebook_sizes=(1024,), capabilities=frozenset(), source=ModelSource())

    def encode(self, wav: torch.Tensor, lengths: torch.Tensor) -> Tokens:
        self.check_input(wav, lengths)
        frames, n = _frames(wav, lengths)
        codes = torch.randint(0, 1024, frames.shape[:2], generator=self.gen)
        return Tokens(codes[:, None, :], n)
