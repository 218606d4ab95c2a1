#!/usr/bin/env python3
"""Throughput of acoustic BPE (tokbench.tasks.bpe.merges.UnitBPE) on synthetic semantic-like units.

    python benchmarks/bpe_throughput.py [--tokens 1000000] [--units 500] [--chunk-length 256]

The units come from a Markov chain over K units that stays on the same unit with probability
0.6 and otherwise moves to one of 8 fixed successors, so they repeat and have structure the way
HuBERT k-means units do. 80% train, 20% held out, cut into 250-unit "utterances" (5 s at 50 Hz).

Reported (tokens per second of input units; wall clock and process CPU time, since the Rust
trainer and encoder use several threads):

- training at each target vocabulary size (base x 2, 8, 32);
- the task's sweep (base x 1..32): one training at the largest size plus prefixes, against the
  plain loop that trains every size separately (same library calls), as a speed-up ratio;
- encoding the held-out part (batched through the Rust encoder), against encoding chunk by
  chunk in a Python loop, as a ratio; and decoding back to units with the round-trip check.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tokbench.tasks.bpe.merges import UnitBPE


def markov_units(n: int, k: int, stay: float = 0.6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    successors = rng.integers(0, k, size=(k, 8))
    moves = rng.random(n) >= stay
    choice = rng.integers(0, 8, size=n)
    out = np.empty(n, dtype=np.int64)
    unit = 0
    for t in range(n):  # ~1 s for 1M: only the data generation, not measured
        if moves[t]:
            unit = successors[unit, choice[t]]
        out[t] = unit
    return out


def timed(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--units", type=int, default=500)
    parser.add_argument("--chunk-length", type=int, default=256)
    parser.add_argument("--max-token-length", type=int, default=32)
    args = parser.parse_args()

    k = args.units
    units = markov_units(args.tokens, k)
    utts = [units[i : i + 250] for i in range(0, len(units), 250)]
    n_train_utts = int(0.8 * len(utts))
    train, held = utts[:n_train_utts], utts[n_train_utts:]
    n_train, n_held = sum(map(len, train)), sum(map(len, held))
    kw = dict(chunk_length=args.chunk_length, max_token_length=args.max_token_length)
    print(f"{args.tokens} synthetic units (K={k}): {n_train} train, {n_held} held out; "
          f"chunk_length={args.chunk_length}, max_token_length={args.max_token_length}")

    print("\ntraining one vocabulary")
    for mult in (2, 8, 32):
        bpe, wall, cpu = timed(lambda m=mult: UnitBPE.train(train, k, k * m, **kw))
        print(f"  vocab {k * mult:6d}: {wall:6.2f} s wall ({cpu:6.2f} s CPU) "
              f"= {n_train / wall:10,.0f} tokens/s wall, {n_train / cpu:10,.0f} tokens/s CPU")

    sizes = [k * m for m in (1, 2, 4, 8, 16, 32)]
    print(f"\nsweep over {sizes}")
    (full, models), wall_once, cpu_once = timed(
        lambda: (f := UnitBPE.train(train, k, max(sizes), **kw), [f.truncated(v) for v in sizes]))
    loop, wall_loop, cpu_loop = timed(lambda: [UnitBPE.train(train, k, v, **kw) for v in sizes])
    same = all(np.array_equal(np.concatenate(a.encode(held[:50])), np.concatenate(b.encode(held[:50])))
               for a, b in zip(models, loop, strict=True))
    print(f"  train once + prefixes: {wall_once:6.2f} s wall ({cpu_once:6.2f} s CPU)")
    print(f"  train every size:      {wall_loop:6.2f} s wall ({cpu_loop:6.2f} s CPU)")
    print(f"  speed-up {wall_loop / wall_once:.2f}x wall, {cpu_loop / cpu_once:.2f}x CPU; "
          f"identical encodings: {same}")

    bpe = full
    print(f"\nencoding the held-out part with vocab {bpe.vocab_size}")
    encoded, wall_enc, cpu_enc = timed(lambda: bpe.encode(held))
    from tokbench.tasks.bpe.merges import chunks, units_to_text

    pieces = [c for u in held for c in chunks(units_to_text(u), args.chunk_length)]
    _, wall_seq, cpu_seq = timed(lambda: [bpe.tokenizer.encode(p).ids for p in pieces])
    print(f"  batched: {wall_enc:6.3f} s wall = {n_held / wall_enc:12,.0f} tokens/s "
          f"({n_held / cpu_enc:12,.0f} tokens/s CPU)")
    print(f"  one chunk at a time: {wall_seq:6.3f} s wall = {n_held / wall_seq:12,.0f} tokens/s; "
          f"batched is {wall_seq / wall_enc:.2f}x")
    ok, wall_dec, _ = timed(lambda: all(np.array_equal(bpe.decode(e), u)
                                        for e, u in zip(encoded, held, strict=True)))
    n_bpe = sum(map(len, encoded))
    print(f"  decode + check: {wall_dec:6.3f} s wall = {n_held / wall_dec:12,.0f} tokens/s; "
          f"lossless: {ok}; reduction {n_held / n_bpe:.3f}")


if __name__ == "__main__":
    main()
