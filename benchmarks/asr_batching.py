"""Batched vs one-at-a-time Whisper decoding through ``tokbench.metrics.asr.transcribe``.

    python benchmarks/asr_batching.py                       # tiny random model, CPU
    python benchmarks/asr_batching.py --model large-v3 --device cuda --sample-len 0

Both paths make the same library calls (``whisper.decode`` on log-mels), measured in one run
after a warm-up; the texts must agree. With the tiny random model the numbers show that
batching works, not what a real model costs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from tokbench.metrics.asr import transcribe
from tokbench.metrics.whisper_model import load_asr_model
from tokbench.testing import tiny_random_whisper


def utterances(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        t = np.arange(int(16_000 * (2.0 + 0.5 * i))) / 16_000
        wav = 0.3 * np.sin(2 * np.pi * (150 + 60 * i) * t) + 0.02 * rng.standard_normal(t.size)
        out.append(wav.astype(np.float32))
    return out


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="Whisper name (default: tiny random model)")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--n-mels", type=int, default=80, help="tiny random model only")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("-n", type=int, default=8, help="utterances")
    ap.add_argument("--sample-len", type=int, default=10, help="0: Whisper's default")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    if args.model or args.checkpoint:
        model = load_asr_model(args.model or "large-v3", args.device, args.checkpoint)
    else:
        model = tiny_random_whisper(args.n_mels).to(args.device)
    wavs = utterances(args.n)
    sample_len = args.sample_len or None
    transcribe(model, wavs[:2], batch_size=2, sample_len=sample_len)  # warm-up

    def run(batch_size: int) -> tuple[list[str], float]:
        best, texts = float("inf"), []
        for _ in range(args.repeats):
            _sync(args.device)
            t0 = time.perf_counter()
            if batch_size == 1:
                texts = [transcribe(model, [w], 1, sample_len)[0] for w in wavs]
            else:
                texts = transcribe(model, wavs, batch_size, sample_len)
            _sync(args.device)
            best = min(best, time.perf_counter() - t0)
        return texts, best

    single, t_single = run(1)
    batched, t_batched = run(args.n)
    audio_s = sum(len(w) for w in wavs) / 16_000
    print(f"model n_mels={model.dims.n_mels} device={args.device} utterances={args.n} "
          f"audio={audio_s:.1f}s sample_len={sample_len} torch_threads={torch.get_num_threads()}")
    print(f"one at a time: {t_single:.3f} s   batched (batch {args.n}): {t_batched:.3f} s   "
          f"speed-up x{t_single / t_batched:.2f}   (best of {args.repeats})")
    print(f"texts identical: {single == batched}")


if __name__ == "__main__":
    main()
