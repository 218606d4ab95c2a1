"""Throughput of tokbench's mini-batch k-means (frames per second of mini-batch updates).

Synthetic features (Gaussian blobs) stand in for SSL features: k-means cost depends only on
N, D, K and the batch size, not on what the vectors mean. Example:

    python benchmarks/kmeans_fit.py --frames 50000 --dim 768 --k 100 --epochs 2 --device cpu
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from tokbench.adapters.ssl.kmeans import fit_kmeans


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--k", type=int, nargs="+", default=[100])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=10_000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    for k in args.k:
        means = torch.randn(k, args.dim, generator=g) * 3
        x = means[torch.randint(k, (args.frames,), generator=g)] + torch.randn(args.frames, args.dim, generator=g)
        t0 = time.perf_counter()
        r = fit_kmeans(x, k, seed=0, batch_size=args.batch_size, max_epochs=args.epochs,
                       tol=0.0, device=args.device)
        print(json.dumps({
            "frames": args.frames, "dim": args.dim, "k": k, "device": args.device,
            "threads": torch.get_num_threads(), "epochs": r.epochs,
            "frames_per_second": round(r.frames_per_second or 0), "init_size": r.settings["init_size"],
            "update_seconds": round(r.update_seconds, 2), "total_seconds": round(time.perf_counter() - t0, 2),
        }))


if __name__ == "__main__":
    main()
