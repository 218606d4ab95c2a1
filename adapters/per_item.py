"""Per-item mode for Hugging Face codecs whose attention sees the whole input (and padding).

X-Codec and Higgs run a HuBERT over the whole (unmasked) input, WavTokenizer's decoder, X-Codec2's
and NeuCodec's attend over every frame without a padding mask: no padding-frame trick makes a
batched item equal the item alone. :class:`PerItemCodec` runs ``encode`` and ``decode`` one item
at a time (each padded only to its own whole frames), so batched results *equal* one-at-a-time
results; the batch only saves the caller a loop. (The adapter kit's per-item mode replaces this
module once it lands.)
"""

from __future__ import annotations

from typing import ClassVar

import torch

from tokbench.adapters.hf_codec import HFCodecTokenizer
from tokbench.types import Audio, Tokens


class PerItemCodec(HFCodecTokenizer):
    """:class:`HFCodecTokenizer` that computes every item alone (``per_item = True``)."""

    per_item: ClassVar[bool] = True
    batch_tolerance: ClassVar[dict[str, float]] = {"code_agreement": 1.0, "snr_db": float("inf")}

    @torch.inference_mode()
    def encode(self, wav: torch.Tensor, lengths: torch.Tensor) -> Tokens:
        self.check_input(wav, lengths)
        if wav.shape[0] <= 1:
            return super().encode(wav, lengths)
        parts = [super(PerItemCodec, self).encode(wav[b : b + 1, : int(lengths[b])], lengths[b : b + 1])
                 for b in range(wav.shape[0])]
        n_frames = max(p.codes.shape[-1] for p in parts)
        codes = torch.zeros(len(parts), self.meta.n_codebooks, n_frames, dtype=torch.long,
                            device=parts[0].codes.device)
        for b, p in enumerate(parts):
            codes[b, :, : p.codes.shape[-1]] = p.codes[0]
        return Tokens(codes, torch.cat([p.frame_lengths for p in parts]),
                      torch.cat([p.sample_lengths for p in parts if p.sample_lengths is not None]))

    @torch.inference_mode()
    def decode(self, tokens: Tokens, prompt: Audio | None = None, *,
               lengths: torch.Tensor | None = None) -> Audio:
        if tokens.batch_size <= 1:
            return super().decode(tokens, prompt, lengths=lengths)
        if lengths is None:
            lengths = tokens.sample_lengths
        parts = []
        for b in range(tokens.batch_size):
            f = int(tokens.frame_lengths[b])
            one = Tokens(tokens.codes[b : b + 1, :, :f], tokens.frame_lengths[b : b + 1])
            parts.append(super().decode(one, prompt, lengths=None if lengths is None else lengths[b : b + 1]))
        out = Audio.from_list([p.wav[0, : int(p.lengths[0])].cpu() for p in parts], parts[0].sample_rate)
        return out.to(parts[0].wav.device)
