"""Shared machinery of the classic codecs: frame-by-frame packets as ``[B, Q, F]`` codes.

A classic codec turns each frame of ``hop`` int16 samples into one packet of ``len(codebook_sizes)``
bytes (a fixed size: Opus in hard CBR, Codec2 always). Code ``q`` of frame ``f`` is byte ``q`` of
packet ``f``, one codebook of 256 per byte position; when a frame's bit count is not a multiple of
8 (Codec2 700C: 28 bits), the last byte holds the remaining bits in its high part and its code is
those bits alone (a codebook of ``2**bits``), so the nominal bitrate is the codec's bitrate.

Codec delay: the decoder's output lags its input by ``delay`` samples (Opus: the encoder's
lookahead; Codec2: measured, see the adapter). Encode therefore feeds ``ceil((T + delay) / hop)``
frames (the input zero-padded), and decode drops the first ``delay`` samples and keeps ``T``, so
decoded audio lines up with the input sample for sample and has its length.

Every item gets a fresh encoder and decoder (codec state never leaks between items), so batched
results equal one-at-a-time results exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from tokbench.types import Audio, TokenizerBase, Tokens


def to_int16(wav: torch.Tensor) -> np.ndarray:
    """Float audio in [-1, 1] as int16 PCM (clipped, rounded)."""
    x = wav.detach().to(torch.float32).cpu().numpy()
    return np.round(np.clip(x, -1.0, 32767 / 32768) * 32768).astype(np.int16)


def frames_for(samples: int, hop: int, delay: int) -> int:
    """Packets needed to carry ``samples`` input samples through a codec of this delay."""
    return max(1, math.ceil((samples + delay) / hop))


def packet_to_codes(packet: bytes, bits: int) -> list[int]:
    """One packet of ``bits`` bits (``ceil(bits / 8)`` bytes) as its codes."""
    n_bytes = math.ceil(bits / 8)
    if len(packet) != n_bytes:
        raise RuntimeError(f"codec produced a packet of {len(packet)} bytes, expected {n_bytes}")
    codes = list(packet)
    tail = bits % 8
    if tail:
        codes[-1] >>= 8 - tail
    return codes


def codes_to_packet(codes: Sequence[int], bits: int) -> bytes:
    tail = bits % 8
    values = [int(c) for c in codes]
    if tail:
        values[-1] <<= 8 - tail
    return bytes(values)


def codebook_sizes(bits: int) -> tuple[int, ...]:
    """Codebook sizes of a packet of ``bits`` bits: 256 per whole byte, then the rest."""
    sizes = [256] * (bits // 8)
    if bits % 8:
        sizes.append(2 ** (bits % 8))
    return tuple(sizes)


class PacketCodec(TokenizerBase):
    """Base of a frame-by-frame classic codec. Subclasses provide the codec itself:
    ``hop`` (samples per packet), ``bits`` (per packet), ``delay`` (samples) and the
    ``encode_item`` / ``decode_item`` of one item with a fresh codec state."""

    @property
    def hop(self) -> int:
        raise NotImplementedError

    @property
    def bits(self) -> int:
        raise NotImplementedError

    @property
    def delay(self) -> int:
        raise NotImplementedError

    def encode_item(self, frames: Iterator[np.ndarray]) -> Iterator[bytes]:
        """Packets of these int16 frames of ``hop`` samples, from a fresh encoder."""
        raise NotImplementedError

    def decode_item(self, packets: Iterator[bytes]) -> Iterator[np.ndarray]:
        """int16 frames of ``hop`` samples of these packets, from a fresh decoder."""
        raise NotImplementedError

    def frames_for(self, lengths: torch.Tensor) -> torch.Tensor:
        """Packets the codes of ``lengths`` samples have: ``max(1, ceil((len + delay) / hop))``
        (the codec's delay can take one packet more than ``ceil(len / hop)``)."""
        lengths = lengths.to(torch.long)
        return torch.clamp((lengths + self.delay + self.hop - 1) // self.hop, min=1)

    @classmethod
    def build_tiny_checkpoint(cls, folder: Path) -> None:
        return None  # no weights: the conformance test runs the real codec

    def encode(self, wav: torch.Tensor, lengths: torch.Tensor) -> Tokens:
        self.check_input(wav, lengths)
        hop, bits, delay = self.hop, self.bits, self.delay
        items = []
        for b in range(wav.shape[0]):
            n = int(lengths[b])
            frames = frames_for(n, hop, delay)  # = self.frames_for for one item
            pcm = np.zeros(frames * hop, dtype=np.int16)
            pcm[:n] = to_int16(wav[b, :n])
            packets = self.encode_item(pcm[i * hop:(i + 1) * hop] for i in range(frames))
            codes = [packet_to_codes(p, bits) for p in packets]
            items.append(torch.tensor(codes, dtype=torch.long).T.contiguous())
        tokens = Tokens.from_list(items)
        tokens.sample_lengths = lengths.to(torch.long).clone()
        return tokens

    def decode(self, tokens: Tokens, prompt: Audio | None = None) -> Audio:
        if prompt is not None:
            raise ValueError(f"{self.meta.name} takes no speaker prompt (capability 'speaker_prompt')")
        hop, bits, delay = self.hop, self.bits, self.delay
        out = []
        for b in range(tokens.batch_size):
            codes = tokens.item(b).cpu()
            frames = int(codes.shape[1])
            if tokens.sample_lengths is not None:
                n = int(tokens.sample_lengths[b])
            else:  # tokens from elsewhere: all that the packets carry
                n = max(0, frames * hop - delay)
            packets = (codes_to_packet(codes[:, f].tolist(), bits) for f in range(frames))
            pcm = np.concatenate([np.zeros(0, dtype=np.int16), *self.decode_item(packets)])
            wav = torch.from_numpy(pcm[delay:delay + n].astype(np.float32) / 32768)
            if wav.shape[0] < n:
                raise RuntimeError(f"{self.meta.name}: {frames} packets decode to "
                                   f"{pcm.shape[0] - delay} samples, fewer than the {n} asked for")
            out.append(wav)
        return Audio.from_list(out, self.meta.sample_rate)
