"""SIGKILL `tokbench run` at random moments, again and again, then let it finish: no record may be
lost, duplicated or torn, no process may outlive its parent, and the run must end complete.

    python benchmarks/sigkill_loop.py --kills 10            # CI runs this after `make test`

Each round starts the same run (mu-law recon of the sample set with a metric worker pool, ASR
off), waits a random time drawn from a seeded generator (between the first record on disk and
twice the time that took), and kills the process group's leader with SIGKILL. Exit 0 when every
check holds, 1 otherwise; the last line says which.
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
    parser.add_argument("--limit", type=int, default=12, help="utterances of the sample set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per round at most")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="tokbench-sigkill-"))
    env = {**os.environ, "TOKBENCH_CACHE": str(tmp / "cache"), "PYTHONUNBUFFERED": "1"}
    out = tmp / "out"
    cmd = [sys.executable, "-m", "tokbench.cli", "run", "--tokenizer", "mulaw", "--task", "recon",
           "--limit", str(args.limit), "--batch-size", "2", "--workers", "1", "--set", "asr=false",
           "--out", str(out), "--no-progress"]
    problems: list[str] = []
    kills = 0
    first_record_s = None
    for round_ in range(args.kills):
        start = time.time()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait = None if first_record_s is None else rng.uniform(0.2, 2 * first_record_s)
        while proc.poll() is None and time.time() - start < args.timeout:
            if wait is None and _records(out):
                first_record_s = time.time() - start
                wait = 0.0  # the first round is killed as soon as a record is on disk
            if wait is not None and time.time() - start >= wait:
                break
            time.sleep(0.02)
        if proc.poll() is not None:
            print(f"round {round_ + 1}: the run finished before the kill (it resumed the rest)")
            break
        workers = _children_of(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
        kills += 1
        deadline = time.time() + 15
        while time.time() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.1)
        orphans = [w for w in workers if _alive(w)]
        if orphans:
            problems.append(f"round {round_ + 1}: worker processes {orphans} outlived the killed run")
            for w in orphans:
                os.kill(w, signal.SIGKILL)
        n = len(_records(out))
        print(f"round {round_ + 1}: killed after {time.time() - start:.1f} s with {n} records on disk")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    if done.returncode != 0:
        problems.append(f"the final run failed: {done.stderr[-500:]}")
    records = _records(out)
    ids = [r["utterance_id"] for r in records if r.get("utterance_id")]
    if len(ids) != len(set(ids)):
        problems.append(f"duplicated records: {len(ids)} records for {len(set(ids))} utterances")
    if len(set(ids)) != args.limit:
        problems.append(f"{len(set(ids))} of {args.limit} utterances recorded")
    [run_json] = list(out.rglob("run.json")) or [None]
    status = json.loads(run_json.read_text())["status"] if run_json else "missing"
    if status != "complete":
        problems.append(f"run.json status is {status!r}")
    if problems:
        print("FAILED: " + "; ".join(problems))
        return 1
    print(f"OK: {kills} kills at random points; {len(ids)} records, each utterance once, no torn "
          f"line, no orphan process, run complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
