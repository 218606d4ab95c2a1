"""Cost of one call of each signal metric on 4 s of 16 kHz speech, on one core.

Run as ``OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/metric_costs.py [--wav FILE]``.
Without ``--wav`` it makes an English sentence with espeak-ng. The output is compared with a
copy degraded by white noise at 20 dB SNR. Reports CPU time (``time.process_time``, robust to
other processes sharing the core) and wall time, min and median over repeats, after one warm-up
call (model loading and first-call imports are reported separately).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pyworld

from tokbench.io.audio import load_audio, resample
from tokbench.metrics.mel import mel_l1
from tokbench.metrics.pitch import f0_contour, pitch_scores
from tokbench.metrics.signal import pesq_score, pesq_scores, stoi_score, stoi_scores
from tokbench.metrics.speaker import secs, speaker_embedding, voice_encoder
from tokbench.metrics.tokens import token_stats

TEXT = ("The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. "
        "It is easy to tell the depth of a well.")


def speech(path: str | None, seconds: float) -> np.ndarray:
    if path is None:
        if shutil.which("espeak-ng") is None:
            raise SystemExit("espeak-ng not found: pass --wav FILE")
        path = str(Path(tempfile.mkdtemp()) / "speech.wav")
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", path, TEXT], check=True)
    a = load_audio(path)
    x = resample(a.wav, a.sample_rate, 16000)
    n = int(seconds * 16000)
    if len(x) < n:
        raise SystemExit(f"{path} lasts {len(x) / 16000:.2f} s; need {seconds} s")
    return x[:n]


def measure(fn, repeats: int) -> tuple[float, float, float, float]:
    fn()  # warm-up
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return min(cpu), float(np.median(cpu)), min(wall), float(np.median(wall))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wav")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    ref = speech(args.wav, args.seconds)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(len(ref)).astype(np.float32)
    hyp = ref + noise * np.sqrt(np.mean(ref**2) / 100 / np.mean(noise**2))
    ref8, hyp8 = resample(ref, 16000, 8000), resample(hyp, 16000, 8000)
    f0_ref, f0_hyp = f0_contour(ref), f0_contour(hyp)
    codes = rng.integers(0, 1024, size=(8, int(50 * args.seconds)))
    x64 = hyp.astype(np.float64)

    c0, w0 = time.process_time(), time.perf_counter()
    voice_encoder()
    print(f"VoiceEncoder load: {time.process_time() - c0:.2f} s CPU, {time.perf_counter() - w0:.2f} s wall")
    c0, w0 = time.process_time(), time.perf_counter()
    ref_emb = speaker_embedding(ref)
    print(f"first speaker_embedding (lazy imports): {time.process_time() - c0:.2f} s CPU, "
          f"{time.perf_counter() - w0:.2f} s wall")

    calls = {
        "pesq_scores (wb + nb, incl. 8 kHz resampling)": lambda: pesq_scores(ref, hyp),
        "  pesq wb": lambda: pesq_score(ref, hyp, 16000, "wb"),
        "  pesq nb (on 8 kHz input)": lambda: pesq_score(ref8, hyp8, 8000, "nb"),
        "stoi_scores (stoi + estoi)": lambda: stoi_scores(ref, hyp),
        "  stoi": lambda: stoi_score(ref, hyp, extended=False),
        "  estoi": lambda: stoi_score(ref, hyp, extended=True),
        "mel_l1": lambda: mel_l1(ref, hyp),
        "f0_contour (Harvest)": lambda: f0_contour(hyp),
        "pitch_scores (from two contours)": lambda: pitch_scores(f0_ref, f0_hyp),
        "speaker_embedding": lambda: speaker_embedding(hyp),
        "secs (embeds the output)": lambda: secs(ref_emb, hyp),
        "token_stats (8 x 200 codes, K=1024)": lambda: token_stats([codes], [1024] * 8),
        # Calibration against the reference numbers in NOTES.md (not protocol settings):
        "[cal] Harvest with its default 71 Hz floor": lambda: pyworld.harvest(
            hyp.astype(np.float64), 16000, f0_floor=71.0, f0_ceil=800.0, frame_period=5.0),
        "[cal] WORLD dio + stonemask": lambda: pyworld.stonemask(
            x64, *pyworld.dio(x64, 16000, frame_period=5.0), 16000),
    }
    print(f"{args.seconds} s of 16 kHz speech, {args.repeats} repeats; times in ms")
    print(f"{'call':48s} {'cpu min':>8s} {'cpu med':>8s} {'wall min':>8s} {'wall med':>8s}")
    for name, fn in calls.items():
        r = [1000 * v for v in measure(fn, args.repeats)]
        print(f"{name:48s} {r[0]:8.2f} {r[1]:8.2f} {r[2]:8.2f} {r[3]:8.2f}")


if __name__ == "__main__":
    main()
