"""Codec2 (David Rowe's open low-bitrate speech codec) at 8 kHz through ``pycodec2``.

Binding: ``pycodec2`` (a Cython wrapper whose wheels bundle libcodec2; Python >= 3.11), the
``classic`` extra. Tokens are the bits of each codec frame, packed in bytes as the codec packs
them (see :mod:`tokbench.adapters.classic.packets`): 3200 and 2400 bps send one frame each 20 ms,
1600, 1200 and 700C one each 40 ms.

Delay: Codec2 is parametric (sinusoidal), so its output does not match the input sample by sample
and the delay cannot be read off a waveform cross-correlation. It was measured as the lag that
maximises STOI between input and output over the sample set, on a 20-sample grid:
160 samples (20 ms) for 3200/2400/1600/1200, 240 samples (30 ms) for 700C (its newamp1 rate-K
interpolation adds half a frame); tests/test_classic.py checks these on real speech.

Determinism: the decoder draws the phases of unvoiced harmonics from ``codec2_rand``, a linear
congruential generator whose state is one process-global static variable with no seed function,
so the same packets decode differently depending on what the process decoded before (and on
batching). :class:`_Rng` finds that variable through the exported ``codec2_rand`` (its first
instruction addresses it), checks that it is the generator (state 1 must give 16838, the
generator's first output) and sets it to 1 before each item, so every item decodes as in a fresh
process. Where that check fails (another build or CPU), decoding still works but is not
reproducible, and the adapter warns once.
"""

from __future__ import annotations

import ctypes
import glob
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokbench.adapters.classic.packets import PacketCodec, codebook_sizes
from tokbench.adapters.framed import require
from tokbench.registry import preset
from tokbench.types import ModelSource, TokenizerMeta

SAMPLE_RATE = 8_000
# mode -> (pycodec2 mode key, samples per frame, bits per frame, delay in samples)
MODES: dict[str, tuple[int, int, int, int]] = {
    "3200": (3200, 160, 64, 160),
    "2400": (2400, 160, 48, 160),
    "1600": (1600, 320, 64, 160),
    "1200": (1200, 320, 48, 160),
    "700C": (700, 320, 28, 240),
}


def _codec2() -> Any:
    return require("pycodec2", "classic", needed_by="the codec2 tokenizer")


class _Rng:
    """The state of libcodec2's process-global ``codec2_rand`` generator (see the module doc)."""

    FIRST_OUTPUT = 16838  # (1 * 1103515245 + 12345) // 65536 % 32768
    _state: ctypes.c_uint64 | None = None
    _checked = False

    @classmethod
    def reset(cls, module: Any) -> None:
        if not cls._checked:
            cls._checked = True
            cls._state = cls._find(module)
            if cls._state is None:
                warnings.warn("codec2: cannot reset libcodec2's random generator in this build; "
                              "decoded audio will differ slightly between runs", stacklevel=3)
        if cls._state is not None:
            cls._state.value = 1

    @classmethod
    def _find(cls, module: Any) -> ctypes.c_uint64 | None:
        libs = glob.glob(os.path.join(os.path.dirname(os.path.dirname(module.__file__)),
                                      "pycodec2.libs", "libcodec2*"))
        if len(libs) != 1:  # built against a system libcodec2: not the bundled one
            return None
        lib = ctypes.CDLL(libs[0])  # the library pycodec2 has loaded (same file, same handle)
        fn = ctypes.cast(lib.codec2_rand, ctypes.c_void_p).value
        if fn is None:
            return None
        code = ctypes.string_at(fn, 11)
        if code[:3] != bytes.fromhex("486905"):  # x86-64 imul rax, [rip + disp32], imm32
            return None
        state = ctypes.c_uint64.from_address(fn + 11 + int.from_bytes(code[3:7], "little", signed=True))
        saved = state.value
        state.value = 1
        ok = lib.codec2_rand() == cls.FIRST_OUTPUT
        state.value = saved
        return state if ok else None


@dataclass(frozen=True)
class Codec2Options:
    mode: str = "3200"

    def __post_init__(self) -> None:
        if str(self.mode) not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}, got {self.mode!r}")
        object.__setattr__(self, "mode", str(self.mode))


class Codec2Tokenizer(PacketCodec):
    """Codec2 at one of its bit rates; codes are the bytes of each codec frame."""

    Options = Codec2Options
    packages = {"pycodec2": "classic"}
    presets = {f"codec2-{m.lower()}": preset(f"Codec2 {m} bps at 8 kHz (pycodec2)", mode=m)
               for m in ("700C", "1200", "1600", "2400", "3200")}

    @classmethod
    def describe(cls, options: Codec2Options) -> TokenizerMeta:
        _key, hop, bits, _delay = MODES[options.mode]
        return TokenizerMeta(
            name="codec2", family="codec2", kind="classic", sample_rate=SAMPLE_RATE,
            frame_rate=SAMPLE_RATE / hop, n_codebooks=len(codebook_sizes(bits)),
            codebook_sizes=codebook_sizes(bits), streamable=True,
            capabilities=frozenset({"decode"}), source=ModelSource(), license="LGPL-2.1",
            citation="D. Rowe, Codec 2 - open source speech coding at 2400 bit/s and below (2011)",
            options={"mode": options.mode})

    def __init__(self, options: Codec2Options, *, device: str = "cpu", checkpoint: str | None = None):
        super().__init__(options, device=device, checkpoint=checkpoint)
        self._lib = _codec2()
        key, hop, bits, delay = MODES[options.mode]
        probe = self._lib.Codec2(key)
        if (probe.samples_per_frame(), probe.bits_per_frame()) != (hop, bits):
            raise RuntimeError(
                f"libcodec2 mode {options.mode}: {probe.samples_per_frame()} samples and "
                f"{probe.bits_per_frame()} bits a frame, expected {hop} and {bits}")

    @property
    def hop(self) -> int:
        return MODES[self.options.mode][1]

    @property
    def bits(self) -> int:
        return MODES[self.options.mode][2]

    @property
    def delay(self) -> int:
        return MODES[self.options.mode][3]

    def encode_item(self, frames: Iterator[np.ndarray]) -> Iterator[bytes]:
        _Rng.reset(self._lib)
        codec = self._lib.Codec2(MODES[self.options.mode][0])
        for frame in frames:  # pycodec2's encode codes one frame a call
            yield codec.encode(np.ascontiguousarray(frame))

    def decode_item(self, packets: Iterator[bytes]) -> Iterator[np.ndarray]:
        _Rng.reset(self._lib)
        codec = self._lib.Codec2(MODES[self.options.mode][0])
        for packet in packets:
            yield codec.decode(packet)
