"""Write a corpus of bad and borderline audio inputs (seeded; nothing binary is checked in).

Every file must come out of `tokbench run` and `tokbench score` as a record (scored, or null with
a named reason) or as a one-line error: never a crash, a hang or a sentinel score. Used by
tests/test_fuzz.py; run by hand with `python scripts/make_fuzz_corpus.py OUT_DIR`.
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16_000


def _speechlike(rng: np.random.Generator, seconds: float, rate: int = RATE) -> np.ndarray:
    """Harmonic bursts with a moving pitch: enough structure for every metric to run."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    wav = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = (np.sin(2 * np.pi * 2.5 * t) > -0.2).astype(float)
    return (0.2 * wav * envelope + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def make_corpus(out: Path, seed: int = 0) -> dict[str, str]:
    """Write the corpus into ``out``; returns {file name: what is wrong with it}."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    cases: dict[str, str] = {}

    def write(name: str, wav: np.ndarray, rate: int = RATE, why: str = "", **kw: object) -> None:
        sf.write(out / name, wav, rate, **kw)
        cases[name] = why

    write("ok.wav", _speechlike(rng, 1.5), why="a normal file")
    write("silence.wav", np.zeros(RATE, np.float32), why="digital silence", subtype="FLOAT")
    write("dc.wav", np.full(RATE, 0.3, np.float32), why="a constant (DC) signal", subtype="FLOAT")
    write("one_sample.wav", np.array([0.1], np.float32), why="a single sample", subtype="FLOAT")
    write("short.wav", _speechlike(rng, 0.1), why="100 ms, below PESQ's minimum")
    write("clipped.wav", np.sign(_speechlike(rng, 1.0)).astype(np.float32), why="full-scale square",
          subtype="FLOAT")
    loud = _speechlike(rng, 1.0) * 40
    write("over_full_scale.wav", loud, why="float samples far beyond [-1, 1]", subtype="FLOAT")
    nan = _speechlike(rng, 1.0)
    nan[100:200] = np.nan
    write("nan.wav", nan, why="NaN samples", subtype="FLOAT")
    inf = _speechlike(rng, 1.0)
    inf[5] = np.inf
    write("inf.wav", inf, why="an infinite sample", subtype="FLOAT")
    write("stereo.wav", np.stack([_speechlike(rng, 1.0)] * 2, axis=1), why="two channels")
    write("eight_channels.wav", np.stack([_speechlike(rng, 1.0)] * 8, axis=1), why="eight channels")
    write("rate_8k.wav", _speechlike(rng, 1.0, 8000), 8000, why="8 kHz")
    write("rate_96k.wav", _speechlike(rng, 1.0, 96_000), 96_000, why="96 kHz")
    write("int16.wav", _speechlike(rng, 1.0), why="16-bit integer PCM", subtype="PCM_16")
    write("flac.flac", _speechlike(rng, 1.0), why="FLAC")

    (out / "zero_bytes.wav").write_bytes(b"")
    cases["zero_bytes.wav"] = "an empty file"
    (out / "not_audio.wav").write_bytes(b"this is a text file with a .wav name\n" * 20)
    cases["not_audio.wav"] = "text with a .wav name"
    header = b"RIFF" + struct.pack("<I", 36 + 32000) + b"WAVEfmt "
    (out / "truncated_header.wav").write_bytes(header[:20])
    cases["truncated_header.wav"] = "a WAV header cut short"
    good = (out / "ok.wav").read_bytes()
    (out / "truncated_data.wav").write_bytes(good[: len(good) // 3])
    cases["truncated_data.wav"] = "a WAV file cut in the middle of its data"
    flac = (out / "flac.flac").read_bytes()
    (out / "corrupt.flac").write_bytes(flac[:64] + bytes(rng.integers(0, 256, 4000, dtype=np.uint8)))
    cases["corrupt.flac"] = "a FLAC header followed by random bytes"
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name, why in make_corpus(args.out, args.seed).items():
        print(f"{name}\t{why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
