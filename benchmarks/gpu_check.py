"""The GPU machine's check for issue 21, in one call. NEVER RUN YET: written on a machine without
a GPU (only importing it and ``--help`` were tried); expect to fix small things on first use.

    python benchmarks/gpu_check.py --minutes 30 --pool-workers 1,4,8,16

1. Codecs: full-size Mimi, EnCodec (24 kHz) and DAC (16 kHz) built from their default
   ``transformers`` configs with seeded random weights (the same compute as the real models:
   weights cannot be downloaded), encode + decode ``--minutes`` of synthetic speech-like audio in
   batches on cuda; prints utterances/s, real-time factor and GPU utilisation, and checks that a
   batched call equals one-at-a-time calls on cuda (max |difference|).
2. ASR: Whisper large-v3 dimensions with random weights, batched greedy generation of up to
   ``--asr-tokens`` tokens per utterance (random weights do not stop early: that is the worst
   case of real decoding), utterances/s and GPU utilisation.
3. The CPU metric pool: ``benchmarks/score_vs_loop.py`` with the given pool sizes (plain loop,
   cold and warm), so that pool scaling on the machine's cores is measured the same way as here.

Finally it projects the wall time of LibriSpeech test-clean (2,620 utterances, 5.4 hours) per
tokenizer, assuming codec, metric pool and ASR overlap (the pipeline is bound by the slowest).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

UTTERANCE_S = 7.4  # LibriSpeech test-clean mean duration (5.4 h / 2,620)
TEST_CLEAN = (2620, 5.4 * 3600)


def synthetic_speech(n: int, seconds: float, sr: int, seed: int) -> np.ndarray:
    """[n, samples] harmonic tones with a moving pitch and noise bursts (speech-like load)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    out = np.zeros((n, len(t)), np.float32)
    for k in range(n):
        f0 = 100 + 80 * rng.random() + 30 * np.sin(2 * np.pi * 0.5 * t + rng.random() * 6)
        phase = 2 * np.pi * np.cumsum(f0) / sr
        x = sum(np.sin(h * phase) / h for h in range(1, 8))
        env = (np.sin(2 * np.pi * 3 * t + rng.random() * 6) > -0.3).astype(np.float32)
        out[k] = (0.1 * x * env + 0.01 * rng.standard_normal(len(t))).astype(np.float32)
    return out


class Utilisation:
    """Mean GPU utilisation (pynvml via torch.cuda.utilization) sampled every 100 ms."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import torch

        while not self._stop.is_set():
            try:
                self.samples.append(float(torch.cuda.utilization()))
            except Exception:  # no pynvml: report nothing rather than a made-up figure
                return
            self._stop.wait(0.1)

    def __enter__(self) -> Utilisation:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> str:
        return f"{np.mean(self.samples):.0f}%" if self.samples else "n/a (no pynvml)"


def codecs() -> dict[str, tuple[object, int]]:
    """name -> (random-weight model in eval mode on cuda, sample rate)."""
    import torch
    from transformers import DacConfig, DacModel, EncodecConfig, EncodecModel, MimiConfig, MimiModel

    torch.manual_seed(0)
    out = {}
    for name, cls, cfg in (("mimi", MimiModel, MimiConfig()), ("encodec_24khz", EncodecModel, EncodecConfig()),
                           ("dac_16khz", DacModel, DacConfig())):
        model = cls(cfg).eval().cuda()
        out[name] = (model, int(cfg.sampling_rate))
    return out


def run_codec(name: str, model, sr: int, minutes: float, batch: int) -> float:
    import torch

    n = max(batch, int(minutes * 60 / UTTERANCE_S))
    wav = synthetic_speech(n, UTTERANCE_S, sr, 0)
    with torch.inference_mode():
        x1 = torch.from_numpy(wav[:2, None]).cuda()
        codes = model.encode(x1).audio_codes  # warm-up and the batched-vs-single check
        both = model.decode(codes).audio_values
        one = torch.cat([model.decode(model.encode(x1[k:k + 1]).audio_codes).audio_values for k in range(2)])
        diff = float((both - one).abs().max())
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with Utilisation() as util:
            for s in range(0, n, batch):
                x = torch.from_numpy(wav[s:s + batch, None]).cuda()
                model.decode(model.encode(x).audio_codes)
            torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    rate = n / wall
    print(f"{name:14s} {n} utt x {UTTERANCE_S} s: {wall:7.1f} s, {rate:6.1f} utt/s, "
          f"RTF {wall / (n * UTTERANCE_S):.4f}, GPU {util.mean}, batched-vs-single max diff {diff:.2e}",
          flush=True)
    return rate


def run_asr(minutes: float, batch: int, max_tokens: int) -> float:
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    cfg = WhisperConfig(vocab_size=51866, num_mel_bins=128, d_model=1280, encoder_layers=32,
                        decoder_layers=32, encoder_attention_heads=20, decoder_attention_heads=20,
                        encoder_ffn_dim=5120, decoder_ffn_dim=5120, max_target_positions=448)
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(cfg).eval().half().cuda()
    n = max(batch, int(minutes * 60 / UTTERANCE_S))
    feats = torch.randn(batch, 128, 3000, dtype=torch.float16, device="cuda")
    with torch.inference_mode():
        model.generate(input_features=feats[:1], max_new_tokens=4, do_sample=False)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with Utilisation() as util:
            for _ in range(0, n, batch):
                model.generate(input_features=feats, max_new_tokens=max_tokens, do_sample=False,
                               min_new_tokens=max_tokens)
            torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    rate = n / wall
    print(f"whisper large-v3 (random) {n} utt, batch {batch}, {max_tokens} tokens each: "
          f"{wall:7.1f} s, {rate:6.1f} utt/s, GPU {util.mean}", flush=True)
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0, help="audio per codec and for ASR")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--asr-tokens", type=int, default=60, help="tokens generated per utterance")
    ap.add_argument("--pool-workers", default="1,4,8,16")
    ap.add_argument("--pool-pairs", type=int, default=64)
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: codecs,asr,pool")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    rates: dict[str, float] = {}
    if "codecs" not in skip:
        for name, (model, sr) in codecs().items():
            rates[name] = run_codec(name, model, sr, args.minutes, args.batch)
    asr = run_asr(args.minutes, args.batch, args.asr_tokens) if "asr" not in skip else None
    if "pool" not in skip:
        subprocess.run([sys.executable, str(Path(__file__).with_name("score_vs_loop.py")),
                        "--pairs", str(args.pool_pairs), "--rounds", "1",
                        "--workers", args.pool_workers], check=True)
        print("pool: utterances/s = pairs / wall of each 'cold'/'warm' row above")
    n, _ = TEST_CLEAN
    for name, rate in rates.items():
        bound = min(rate, asr) if asr else rate
        print(f"projected test-clean with {name}: {n / bound / 60:.1f} min "
              f"(codec {rate:.1f} utt/s, ASR {asr or float('nan'):.1f} utt/s; metric pool from the rows above)")


if __name__ == "__main__":
    main()
