"""Opus (RFC 6716) through libopus: the speech-mode (VoIP) presets that codec papers compare with.

Binding: ``opuslib-next`` (ctypes over the system libopus: ``apt-get install libopus0``), the
``classic`` extra. It calls libopus directly, so the encoder runs at 16 kHz with exactly these
settings and one ``opus_encode`` call per 20 ms frame is one packet, and the decoder outputs 16 kHz
(through ffmpeg/PyAV the libopus decoder always outputs 48 kHz, which would add a resampler).

Settings: application VOIP, 20 ms frames, complexity 10, hard CBR. CBR because tokens are the
packet bytes in a fixed ``[Q, F]`` layout: every packet then has exactly ``bitrate / 400`` bytes,
so the bitrate measured from the actual packets equals the nominal bitrate, and no padding code
enters the token statistics. (VBR at the same mean rate sounds better, mostly at 6-8 kbps; it is
not offered because variable-size packets would need a padding code.) The decoder's delay is the
encoder's lookahead (``OPUS_GET_LOOKAHEAD``: 104 samples = 6.5 ms at 16 kHz in VoIP mode),
compensated as :mod:`tokbench.adapters.classic.packets` describes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokbench.adapters.classic.packets import PacketCodec, codebook_sizes
from tokbench.adapters.framed import require
from tokbench.registry import preset
from tokbench.types import ModelSource, TokenizerMeta, TokenizerSetupError

SAMPLE_RATE = 16_000
FRAME_MS = (10, 20, 40, 60)  # whole-packet frame durations libopus accepts in VoIP mode (>= 10 ms)


def _opus() -> Any:
    try:
        return require("opuslib_next", "classic", needed_by="the opus tokenizer")
    except TokenizerSetupError:
        raise
    except Exception as exc:  # opuslib-next raises a bare Exception when libopus is missing
        raise TokenizerSetupError(
            f"the opus tokenizer needs the system library libopus ({exc}): install it with "
            "apt-get install libopus0 (Debian/Ubuntu) or brew install opus (macOS)") from exc


@dataclass(frozen=True)
class OpusOptions:
    kbps: float = 12.0
    frame_ms: int = 20
    complexity: int = 10

    def __post_init__(self) -> None:
        if self.frame_ms not in FRAME_MS:
            raise ValueError(f"frame_ms must be one of {FRAME_MS}, got {self.frame_ms}")
        if not 0 <= self.complexity <= 10:
            raise ValueError(f"complexity must lie in [0, 10], got {self.complexity}")
        if not 6 <= self.kbps <= 510:
            raise ValueError(f"kbps must lie in [6, 510] (libopus's range), got {self.kbps}")
        bits = self.kbps * self.frame_ms  # bits per packet = kbps * 1000 * frame_ms / 1000
        if bits % 8:
            raise ValueError(f"{self.kbps} kbps at {self.frame_ms} ms is {bits:g} bits a packet; "
                             "CBR packets are whole bytes: pick a bitrate that makes it a multiple of 8")

    @property
    def packet_bytes(self) -> int:
        return int(self.kbps * self.frame_ms) // 8


class OpusTokenizer(PacketCodec):
    """Opus in speech mode at a constant bitrate; codes are the bytes of each packet."""

    Options = OpusOptions
    packages = {"opuslib_next": "classic"}

    @classmethod
    def missing(cls, options: OpusOptions) -> str | None:
        """The package, then the system libopus it loads with ctypes (found the same way)."""
        import ctypes.util

        if (lack := super().missing(options)) is not None:
            return lack
        if ctypes.util.find_library("opus") is None:
            return "the system library libopus: apt-get install libopus0 (or brew install opus)"
        return None
    presets = {f"opus-{k}kbps": preset(f"Opus {k} kbps CBR, VoIP mode, 20 ms frames, complexity 10 "
                                       "(libopus)", kbps=float(k)) for k in (6, 8, 12, 16, 24, 32)}

    @classmethod
    def describe(cls, options: OpusOptions) -> TokenizerMeta:
        return TokenizerMeta(
            name="opus", family="opus", kind="classic", sample_rate=SAMPLE_RATE,
            frame_rate=1000 / options.frame_ms, n_codebooks=options.packet_bytes,
            codebook_sizes=codebook_sizes(8 * options.packet_bytes), streamable=True,
            capabilities=frozenset({"decode"}), source=ModelSource(), license="BSD-3-Clause",
            citation="Valin, Vos, Terriberry. Definition of the Opus Audio Codec. RFC 6716 (2012)",
            options={"kbps": options.kbps, "frame_ms": options.frame_ms,
                     "complexity": options.complexity})

    def __init__(self, options: OpusOptions, *, device: str = "cpu", checkpoint: str | None = None):
        super().__init__(options, device=device, checkpoint=checkpoint)
        self._lib = _opus()
        self._delay = int(self._new_encoder().lookahead)

    @property
    def hop(self) -> int:
        return SAMPLE_RATE * self.options.frame_ms // 1000

    @property
    def bits(self) -> int:
        return 8 * self.options.packet_bytes

    @property
    def delay(self) -> int:
        return self._delay

    def _new_encoder(self) -> Any:
        lib = self._lib
        enc = lib.Encoder(SAMPLE_RATE, 1, lib.APPLICATION_VOIP)
        enc.bitrate = int(round(self.options.kbps * 1000))
        enc.vbr = 0
        enc.complexity = self.options.complexity
        return enc

    def encode_item(self, frames: Iterator[np.ndarray]) -> Iterator[bytes]:
        enc, hop = self._new_encoder(), self.hop
        for frame in frames:
            yield enc.encode(frame.tobytes(), hop)

    def decode_item(self, packets: Iterator[bytes]) -> Iterator[np.ndarray]:
        dec, hop = self._lib.Decoder(SAMPLE_RATE, 1), self.hop
        for packet in packets:
            yield np.frombuffer(dec.decode(packet, hop), dtype=np.int16)
