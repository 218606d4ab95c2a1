"""Peak memory of the scorer on one long input (issue 14): bounded whatever the length.

Run as ``python benchmarks/long_input_memory.py [--seconds 600] [--metrics default]``. Builds a
``--seconds`` long reference by concatenating the sample set's utterances (resampled to 16 kHz)
and an output = reference + white noise at 20 dB SNR, then scores the pair in a fresh child
process with ``tokbench.run.scoring.score_signals`` (what a pool worker runs), with an empty
reference cache, and reports the child's peak resident memory (``ru_maxrss``) and wall time.
The rule that bounds it: PESQ is null beyond ``PESQ_MAX_SECONDS``; Harvest (pitch, MCD) runs in
windows of ``PITCH_WINDOW_SECONDS`` (tokbench/protocol.py, docs/metrics.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap

CHILD = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np
    from tokbench.data import open_dataset
    from tokbench.io.audio import resample
    from tokbench.io.cache import Cache
    from tokbench.metrics.selection import resolve_metrics
    from tokbench.run.scoring import ReferenceKeys, score_signals, worker_metrics

    seconds, metrics, cache_dir = float(sys.argv[1]), sys.argv[2], sys.argv[3]
    ds = open_dataset("sample")
    parts = []
    for u in ds.utterances:
        a = ds.load(u)
        parts.append(resample(a.wav, a.sample_rate, 16000).astype(np.float32))
    one = np.concatenate(parts)
    n = int(seconds * 16000)
    ref = np.tile(one, n // len(one) + 1)[:n]
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(n).astype(np.float32)
    hyp = ref + noise * np.sqrt(np.mean(ref ** 2) / 100 / np.mean(noise ** 2))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wanted = [m for m in resolve_metrics(metrics) if m in worker_metrics()]
    t = time.time()
    s = score_signals(ref, hyp, Cache(cache_dir), ReferenceKeys("bench", "r"), "long", wanted)
    print(json.dumps({"seconds": seconds, "metrics": wanted, "wall_s": round(time.time() - t, 1),
                      "rss_before_kib": base,
                      "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "values": s.values, "reasons": s.reasons}))
""")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--metrics", default="default")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        out = subprocess.run([sys.executable, "-c", CHILD, str(args.seconds), args.metrics, cache],
                             capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"the scorer failed (exit {out.returncode}):\\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(result, indent=1))
    print(f"peak RSS {result['peak_rss_kib'] / 1024:.0f} MiB for {args.seconds:g} s "
          f"({result['wall_s']} s wall)")


if __name__ == "__main__":
    main()
