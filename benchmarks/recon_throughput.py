"""Throughput of the recon pipeline against a plain sequential loop over the same library calls.

    python benchmarks/recon_throughput.py [--tokenizer mulaw] [--limit N] [--workers W]

Both sides start with a cold reference cache and score the same utterances with the same
metrics (no ASR: Whisper weights are not available offline). The ratio is what parallelism earns
(worker pool beside the model work); the warm-cache figure, printed separately, is what reusing
reference-side features earns on top.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from tokbench.data import open_dataset
from tokbench.io.audio import fit_length, resample
from tokbench.metrics import mel, pitch, signal, speaker
from tokbench.resolve import load_tokenizer
from tokbench.run.runner import run


def sequential(tokenizer_name: str, dataset, limit: int) -> float:
    """Encode, decode and score one utterance after another in this process; returns seconds."""
    tok = load_tokenizer(tokenizer_name)
    sr = tok.meta.sample_rate
    t0 = time.perf_counter()
    for utt in dataset.utterances[:limit]:
        audio = dataset.load(utt)
        ref16 = resample(audio.wav, audio.sample_rate, 16000)
        x = torch.from_numpy(resample(audio.wav, audio.sample_rate, sr))[None]
        with torch.inference_mode():
            y = tok.decode(tok.encode(x, torch.tensor([x.shape[1]])))
        hyp16, _ = fit_length(resample(y.item(0).numpy(), y.sample_rate, 16000), len(ref16))
        signal.pesq_scores(ref16, hyp16)
        signal.stoi_scores(ref16, hyp16)
        mel.mel_l1(ref16, hyp16)
        pitch.pitch_scores(pitch.f0_contour(ref16), pitch.f0_contour(hyp16))
        speaker.secs(speaker.speaker_embedding(ref16), hyp16)
    return time.perf_counter() - t0


def _harvest(x) -> float:
    t0 = time.perf_counter()
    pitch.f0_contour(x)
    return time.perf_counter() - t0


def machine_ceiling(x, workers: int) -> float:
    """What parallelism can earn on this machine at best: the same pure-CPU calls (WORLD
    Harvest) in ``workers`` processes against one after another (virtual cores rarely scale 1:1)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    n = 2 * workers
    t0 = time.perf_counter()
    for _ in range(n):
        _harvest(x)
    seq = time.perf_counter() - t0
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        list(pool.map(_harvest, [x] * workers))  # start-up excluded
        t0 = time.perf_counter()
        list(pool.map(_harvest, [x] * n))
        par = time.perf_counter() - t0
    return seq / par


def pipeline(tokenizer_name: str, limit: int, workers: int | None, cache: str, out: str) -> float:
    t0 = time.perf_counter()
    run(tokenizer_name, "recon", "sample", limit=limit, out=out, overrides=["asr=false"],
        workers=workers, cache_dir=cache, device="cpu", log=lambda m: None)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", default="mulaw")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--workers", type=int, default=None, help="default: one per core")
    args = ap.parse_args()
    dataset = open_dataset("sample")
    n = args.limit or len(dataset)
    seconds_audio = sum(dataset.load(u).duration for u in dataset.utterances[:n])
    print(f"{n} utterances, {seconds_audio:.1f} s of audio, {os.cpu_count()} cores, "
          f"tokenizer {args.tokenizer}")
    with tempfile.TemporaryDirectory() as tmp:
        # Warm the imports and the speaker model in this process so neither side pays them.
        first = dataset.load(dataset.utterances[0])
        speaker.speaker_embedding(resample(first.wav, first.sample_rate, 16000))
        t_seq = sequential(args.tokenizer, dataset, n)
        t_cold = pipeline(args.tokenizer, n, args.workers, f"{tmp}/cache", f"{tmp}/out1")
        t_warm = pipeline(args.tokenizer, n, args.workers, f"{tmp}/cache", f"{tmp}/out2")
        ceiling = machine_ceiling(resample(first.wav, first.sample_rate, 16000),
                                  args.workers or os.cpu_count() or 1)
    print(f"machine ceiling          : {ceiling:.2f}x (pure-CPU calls in parallel processes)")
    print(f"sequential loop          : {t_seq:7.2f} s  {n / t_seq:6.2f} utt/s")
    print(f"pipeline, cold ref cache : {t_cold:7.2f} s  {n / t_cold:6.2f} utt/s  "
          f"ratio {t_seq / t_cold:.2f}x")
    print(f"pipeline, warm ref cache : {t_warm:7.2f} s  {n / t_warm:6.2f} utt/s  "
          f"ratio {t_seq / t_warm:.2f}x (caching, a separate figure)")


if __name__ == "__main__":
    main()
