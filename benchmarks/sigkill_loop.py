"""SIGKILL `tokbench run` at random moments, again and again, then let it finish: no record may be
lost, duplicated or torn, no process may outlive its parent, and the run must end complete.

    python benchmarks/sigkill_loop.py --kills 10            # CI runs this after `make test`

Each round starts the same run (mu-law recon of the sample set with a metric worker pool, ASR
off) and kills it with SIGKILL at a seeded random point: in odd rounds once new records are on
disk plus 0-0.3 s (often mid-write), in even rounds at a random moment before the first new
record (start-up, model load, opening the store); its worker processes must then exit by
themselves. Exit 0 when every check
holds, 1 otherwise; the last line says which.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _records(out: Path) -> list[dict]:
    lines = []
    for shard in out.rglob("utterances.rank*.jsonl"):
        for line in shard.read_text(encoding="utf-8").splitlines():
            if line.strip():
                lines.append(json.loads(line))  # a torn line would raise here
    return lines


def _children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--limit", type=int, default=32, help="utterances of the sample set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per round at most")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="tokbench-sigkill-"))
    env = {**os.environ, "TOKBENCH_CACHE": str(tmp / "cache"), "PYTHONUNBUFFERED": "1"}
    problems: list[str] = []
    kills = 0
    cycles = 0
    first_record_s: float | None = None
    round_ = 0
    # Cycles: kill the same run again and again until it finishes by itself, check it, then
    # start a fresh results folder, until the asked number of kills has happened.
    while kills < args.kills and round_ < 5 * args.kills:
        cycles += 1
        out = tmp / f"out{cycles}"
        cmd = [sys.executable, "-m", "tokbench.cli", "run", "--tokenizer", "mulaw", "--task",
               "recon", "--limit", str(args.limit), "--batch-size", "1", "--workers", "1",
               "--set", "asr=false", "--out", str(out), "--no-progress"]
        finished = False
        while kills < args.kills and not finished:
            round_ += 1
            start = time.time()
            before = len(_records(out))
            # Odd rounds: a random point of the work (once new records are on disk, plus up to
            # 0.3 s, often mid-write). Even rounds: a random moment before the first new record
            # (start-up, model loading, opening the store, the first chunk).
            early = round_ % 2 == 0 and first_record_s is not None
            deadline = rng.uniform(0.05, 0.8 * first_record_s) if early and first_record_s else None
            extra = rng.uniform(0.0, 0.3)
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            reached = None
            while proc.poll() is None and time.time() - start < args.timeout:
                if deadline is not None:
                    if time.time() - start >= deadline:
                        break
                else:
                    if reached is None and len(_records(out)) > before:
                        reached = time.time()
                        if first_record_s is None:
                            first_record_s = reached - start
                    if reached is not None and time.time() - reached >= extra:
                        break
                time.sleep(0.01)
            if proc.poll() is not None:
                print(f"round {round_}: the run finished before the kill")
                finished = proc.returncode == 0
                if not finished:
                    problems.append(f"round {round_}: the run exited {proc.returncode}")
                    break
                continue
            workers = _children_of(proc.pid)
            proc.send_signal(signal.SIGKILL)
            proc.wait(60)
            kills += 1
            deadline = time.time() + 15
            while time.time() < deadline and any(_alive(w) for w in workers):
                time.sleep(0.1)
            orphans = [w for w in workers if _alive(w)]
            if orphans:
                problems.append(f"round {round_}: processes {orphans} outlived the killed run")
                for w in orphans:
                    os.kill(w, signal.SIGKILL)
            print(f"round {round_} (cycle {cycles}): killed after {time.time() - start:.1f} s, "
                  f"{len(_records(out)) - before} new records")
        if not finished:  # the kills ran out in the middle of this cycle: let it finish
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
            if done.returncode != 0:
                problems.append(f"the final run of cycle {cycles} failed: {done.stderr[-500:]}")
        problems += _check_cycle(out, args.limit, cycles)
    if kills < args.kills:
        problems.append(f"only {kills} of {args.kills} kills happened")
    if problems:
        print("FAILED: " + "; ".join(problems))
        return 1
    print(f"OK: {kills} kills at random points over {cycles} run(s); every run complete with "
          f"each of its {args.limit} utterances once, no torn line, no orphan process")
    return 0


def _check_cycle(out: Path, limit: int, cycle: int) -> list[str]:
    problems = []
    records = _records(out)
    ids = [r["utterance_id"] for r in records if r.get("utterance_id")]
    if len(ids) != len(set(ids)):
        problems.append(f"cycle {cycle}: {len(ids)} records for {len(set(ids))} utterances")
    if len(set(ids)) != limit:
        problems.append(f"cycle {cycle}: {len(set(ids))} of {limit} utterances recorded")
    [run_json] = list(out.rglob("run.json")) or [None]
    status = json.loads(run_json.read_text())["status"] if run_json else "missing"
    if status != "complete":
        problems.append(f"cycle {cycle}: run.json status is {status!r}")
    return problems

if __name__ == "__main__":
    sys.exit(main())
