"""AMR-NB (3GPP TS 26.090, the GSM/UMTS narrowband speech codec) at 8 kHz through PyAV.

Binding: ``av`` (PyAV, the ``classic`` extra), whose wheels bundle FFmpeg with the OpenCORE
AMR-NB encoder (``libopencore_amrnb``) and FFmpeg's own AMR-NB decoder: no system library.
One 20 ms frame of 160 samples is one packet in the storage format of RFC 4867: a table-of-
contents byte (the mode, the same for every frame here: no DTX) and the frame's bits. Codes are
the frame's bits without that byte (see :mod:`tokbench.adapters.classic.packets`): 95 to 244 bits,
so the nominal bitrate is the mode's bitrate.

Delay: the decoder's output lags the input by the codec's 5 ms lookahead, 40 samples (measured by
waveform cross-correlation on the sample set at every mode; AMR is a waveform-matching CELP codec).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokbench.adapters.classic.packets import PacketCodec, codebook_sizes
from tokbench.adapters.framed import require
from tokbench.registry import preset
from tokbench.types import ModelSource, TokenizerMeta

SAMPLE_RATE = 8_000
HOP = 160
DELAY = 40
# mode (kbps as a string) -> (FFmpeg bit_rate, frame mode index, speech bits per frame)
MODES: dict[str, tuple[int, int, int]] = {
    "4.75": (4750, 0, 95), "5.15": (5150, 1, 103), "5.9": (5900, 2, 118), "6.7": (6700, 3, 134),
    "7.4": (7400, 4, 148), "7.95": (7950, 5, 159), "10.2": (10200, 6, 204), "12.2": (12200, 7, 244),
}


def _av() -> Any:
    return require("av", "classic", needed_by="the AMR-NB tokenizer")


@dataclass(frozen=True)
class AmrNbOptions:
    mode: str = "12.2"

    def __post_init__(self) -> None:
        mode = str(self.mode)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)} (kbps), got {self.mode!r}")
        object.__setattr__(self, "mode", mode)


class AmrNbTokenizer(PacketCodec):
    """AMR-NB at one of its eight modes; codes are the bytes of each frame's speech bits."""

    Options = AmrNbOptions
    packages = {"av": "classic"}
    presets = {f"amrnb-{m}kbps": preset(f"AMR-NB {m} kbps at 8 kHz, 20 ms frames, no DTX "
                                        "(OpenCORE via PyAV)", mode=m) for m in MODES}

    @classmethod
    def describe(cls, options: AmrNbOptions) -> TokenizerMeta:
        bits = MODES[options.mode][2]
        return TokenizerMeta(
            name="amrnb", family="amrnb", kind="classic", sample_rate=SAMPLE_RATE,
            frame_rate=SAMPLE_RATE / HOP, n_codebooks=len(codebook_sizes(bits)),
            codebook_sizes=codebook_sizes(bits), streamable=True,
            capabilities=frozenset({"decode"}), source=ModelSource(), license="Apache-2.0",
            citation="3GPP TS 26.090, Adaptive Multi-Rate (AMR) speech codec; transcoding functions",
            options={"mode": options.mode})

    def __init__(self, options: AmrNbOptions, *, device: str = "cpu", checkpoint: str | None = None):
        super().__init__(options, device=device, checkpoint=checkpoint)
        self._lib = _av()

    @property
    def hop(self) -> int:
        return HOP

    @property
    def bits(self) -> int:
        return MODES[self.options.mode][2]

    @property
    def delay(self) -> int:
        return DELAY

    @property
    def _toc(self) -> int:
        return (MODES[self.options.mode][1] << 3) | 0x04  # frame type, quality bit set

    def encode_item(self, frames: Iterator[np.ndarray]) -> Iterator[bytes]:
        av = self._lib
        enc = av.CodecContext.create("libopencore_amrnb", "w")
        enc.sample_rate, enc.layout, enc.format = SAMPLE_RATE, "mono", "s16"
        enc.bit_rate = MODES[self.options.mode][0]
        enc.options = {"dtx": "0"}
        enc.open()
        for i, frame in enumerate(frames):
            audio = av.AudioFrame.from_ndarray(frame[None, :], format="s16", layout="mono")
            audio.sample_rate, audio.pts = SAMPLE_RATE, i * HOP
            packets = [bytes(p) for p in enc.encode(audio)]
            if len(packets) != 1 or packets[0][0] != self._toc:
                raise RuntimeError(f"AMR-NB encoder gave {len(packets)} packet(s) for frame {i}, "
                                   f"expected one of mode {self.options.mode}")
            yield packets[0][1:]

    def decode_item(self, packets: Iterator[bytes]) -> Iterator[np.ndarray]:
        av = self._lib
        dec = av.CodecContext.create("amrnb", "r")
        dec.sample_rate, dec.layout = SAMPLE_RATE, "mono"
        dec.open()
        toc = bytes([self._toc])
        for packet in packets:
            for frame in dec.decode(av.Packet(toc + packet)):
                pcm = frame.to_ndarray().reshape(-1)
                yield np.round(np.clip(pcm, -1.0, 32767 / 32768) * 32768).astype(np.int16)
