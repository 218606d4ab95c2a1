"""Test plug-in tokenizers that misbehave on purpose (``--adapter this_file.py:Class``).

``Faulty``: 8-bit PCM at 16 kHz (like identity, 100 Hz frames) whose decode raises on any item
whose first sample is exactly 0.5, and whose encode raises KeyboardInterrupt on an item whose
first sample is exactly -0.5 (Ctrl-C in the middle of a run). ``Longer`` decodes to 1.5 times
the input length (the last half repeated), like a vocoder that overshoots.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tokbench.types import Audio, ModelSource, TokenizerBase, TokenizerMeta, Tokens

RATE = 16_000
HOP = 160


@dataclass(frozen=True)
class FaultyOptions:
    seed: int = 0


class Faulty(TokenizerBase):
    """PCM tokens whose decoder fails on marked items (test only)."""

    name = "faulty"
    Options = FaultyOptions

    @classmethod
    def describe(cls, options: FaultyOptions) -> TokenizerMeta:
        return TokenizerMeta(name=cls.name, family="test", kind="acoustic", sample_rate=RATE,
                             frame_rate=RATE / HOP, n_codebooks=1, codebook_sizes=(256,),
                             source=ModelSource(url="test"))

    def encode(self, wav: torch.Tensor, lengths: torch.Tensor) -> Tokens:
        self.check_input(wav, lengths)
        if bool((wav[:, 0] == -0.5).any()):
            raise KeyboardInterrupt
        frames = (lengths + HOP - 1) // HOP
        q = ((wav.clamp(-1, 1) + 1) * 127.5).round().long()
        n = int(frames.max()) * HOP if len(frames) else 0
        q = torch.nn.functional.pad(q, (0, max(0, n - q.shape[1])))[:, :n]
        codes = q[:, ::HOP].unsqueeze(1)
        self._first = wav[:, 0].clone()
        return Tokens(codes, frames, lengths.clone())

    def decode(self, tokens: Tokens, prompt: Audio | None = None) -> Audio:
        if bool((self._first == 0.5).any()):
            raise RuntimeError("decoder exploded on a marked item")
        wav = tokens.codes[:, 0].float().repeat_interleave(HOP, dim=1) / 127.5 - 1
        lengths = tokens.sample_lengths if tokens.sample_lengths is not None else tokens.frame_lengths * HOP
        return Audio(wav[:, : int(lengths.max())], lengths, RATE)


class Longer(Faulty):
    """Decodes to 1.5 x the input length (test only)."""

    name = "longer"

    def decode(self, tokens: Tokens, prompt: Audio | None = None) -> Audio:
        wav = tokens.codes[:, 0].float().repeat_interleave(HOP, dim=1) / 127.5 - 1
        n = tokens.sample_lengths
        items = []
        for b in range(wav.shape[0]):
            x = wav[b, : int(n[b])]
            items.append(torch.cat([x, x[len(x) // 2:]]))
        return Audio.from_list(items, RATE)
