"""`tokbench score` against a plain sequential loop over the same library calls (and VERSA).

    python benchmarks/score_vs_loop.py                      # 100 pairs of 5 s, 2 rounds
    python benchmarks/score_vs_loop.py --pairs 8 --seconds 3 --rounds 1   # a quick check
    python benchmarks/score_vs_loop.py --workers 1,2        # scaling: one pool size per run
    python benchmarks/score_vs_loop.py --versa-python /path/to/versa-venv/bin/python

Makes ``--pairs`` seeded reference/output pairs at 16 kHz (speech from the bundled sample set,
two utterances joined and cut to ``--seconds``; the output is the reference plus white noise at
a seeded SNR of 0-30 dB), written as 16-bit wav. Then, ``--rounds`` times, interleaved
(A/B/A/B, so that a change in machine load hits every side alike), it runs as separate
processes:

- ``loop``: one process scoring pair after pair with the libraries themselves (pesq, pystoi,
  pyworld Harvest, Resemblyzer) plus tokbench's definitions of the pitch metrics and mel_l1,
  one thread (OMP_NUM_THREADS=1): the least CPU work for these figures;
- ``cold``: ``tokbench score --no-asr`` with an empty cache;
- ``warm``: the same with the reference side (F0 contours, speaker embeddings) cached by the
  cold run before it, into a fresh results folder (the "second tokenizer" case);
- ``versa`` (with ``--versa-python``): VERSA's scorer with PESQ, STOI/ESTOI and WORLD F0
  (mcd_f0) on the same files, then ``cold versa-set`` / ``warm versa-set``: ``tokbench score``
  with the metrics VERSA computes too (PESQ WB, STOI, ESTOI, the WORLD F0 pitch metrics), at
  the largest pool size, for the same-metric-set comparison.

For each run it prints wall time, CPU time (user + sys of the whole process tree, from
``getrusage(RUSAGE_CHILDREN)``: every worker and the fork server are waited for), the peak of
the summed RSS of the process tree (polled every 50 ms) and of its summed PSS (every 250 ms;
pages shared with the fork server counted once), per process role the peak RSS / PSS and CPU,
the load average when the run started, the ratios to the loop of the same round, and with
several pool sizes (``--workers 1,2``) the scaling of throughput. It checks that tokbench's values equal the loop's (max |difference| per
metric; 1e-9 is the bar). Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tokbench" / "data" / "sample"
SR = 16_000
METRICS = ("pesq_wb", "pesq_nb", "stoi", "estoi", "secs", "gpe", "vde", "ffe", "f0_corr", "mel_l1")
ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
TOLERANCE = 1e-9


# ---------------------------------------------------------------------------------------------
# The pairs

def make_pairs(folder: Path, pairs: int, seconds: float, seed: int) -> tuple[Path, Path]:
    """``folder/ref`` and ``folder/hyp`` with ``pairs`` seeded 16-bit wav pairs."""
    import soundfile as sf

    ref_dir, hyp_dir = folder / "ref", folder / "hyp"
    ref_dir.mkdir(parents=True, exist_ok=True)
    hyp_dir.mkdir(parents=True, exist_ok=True)
    sources = [sf.read(str(p), dtype="float32")[0] for p in sorted(SAMPLES.glob("*.flac"))]
    rng = np.random.default_rng(seed)
    n = int(round(seconds * SR))
    for k in range(pairs):
        parts, total = [], 0
        while total < n:  # join sample utterances until long enough
            x = sources[int(rng.integers(len(sources)))]
            parts.append(x)
            total += len(x)
        ref = np.concatenate(parts)[:n]
        snr_db = float(rng.uniform(0.0, 30.0))
        noise = rng.standard_normal(n).astype(np.float32)
        noise *= np.sqrt(np.mean(ref**2) / 10 ** (snr_db / 10) / np.mean(noise**2))
        hyp = np.clip(ref + noise, -1.0, 1.0)
        sf.write(str(ref_dir / f"p{k:04d}.wav"), ref, SR, subtype="PCM_16")
        sf.write(str(hyp_dir / f"p{k:04d}.wav"), hyp, SR, subtype="PCM_16")
    return ref_dir, hyp_dir


# ---------------------------------------------------------------------------------------------
# The plain loop (runs in its own process: ``--_loop REF HYP OUT``)

def plain_loop(ref_dir: Path, hyp_dir: Path, out: Path) -> None:
    import pyworld
    import soundfile as sf
    from pesq import pesq
    from pystoi import stoi
    from resemblyzer import VoiceEncoder, preprocess_wav

    from tokbench.io.audio import resample  # the protocol's resampler (soxr HQ) for PESQ NB
    from tokbench.metrics.mel import mel_l1
    from tokbench.metrics.pitch import pitch_scores

    encoder = VoiceEncoder("cpu", verbose=False)

    def f0(x: np.ndarray) -> np.ndarray:
        return pyworld.harvest(x.astype(np.float64), SR, f0_floor=40.0, f0_ceil=800.0,
                               frame_period=5.0)[0]

    def embed(x: np.ndarray) -> np.ndarray:
        return encoder.embed_utterance(preprocess_wav(x, source_sr=SR))

    values: dict[str, dict[str, float | None]] = {}
    for ref_path in sorted(ref_dir.glob("*.wav")):
        ref = sf.read(str(ref_path), dtype="float32")[0]
        hyp = sf.read(str(hyp_dir / ref_path.name), dtype="float32")[0]
        r64, h64 = ref.astype(np.float64), hyp.astype(np.float64)
        v: dict[str, float | None] = {
            "pesq_wb": pesq(SR, r64, h64, "wb"),
            "pesq_nb": pesq(8000, resample(ref, SR, 8000).astype(np.float64),
                            resample(hyp, SR, 8000).astype(np.float64), "nb"),
            "stoi": stoi(r64, h64, SR, extended=False),
            "estoi": stoi(r64, h64, SR, extended=True),
            "mel_l1": mel_l1(ref, hyp),
        }
        v.update(pitch_scores(f0(ref), f0(hyp)).values)
        a, b = embed(ref).astype(np.float64), embed(hyp).astype(np.float64)
        v["secs"] = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
        values[ref_path.stem] = {k: (None if x is None else float(x)) for k, x in v.items()}
    out.write_text(json.dumps(values))


# ---------------------------------------------------------------------------------------------
# Measuring a process tree

@dataclass
class Measured:
    side: str
    round: int
    wall: float
    cpu: float
    peak_rss: int  # bytes, summed over the process tree
    load: float  # 1-minute load average at the start
    peak_pss: int = 0  # bytes, summed proportional set size (shared pages counted once)
    # role: (peak RSS, peak PSS, CPU s last seen summed over the processes of that role)
    per_process: dict[str, tuple[int, int, float]] = field(default_factory=dict)
    values: dict[str, dict[str, float | None]] | None = None
    note: str = ""


def measure(side: str, round_: int, cmd: list[str], env: dict[str, str] | None = None,
            cwd: Path | None = None) -> Measured:
    import psutil

    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = peak_pss = 0
    each: dict[int, list] = {}  # pid: [role, peak RSS, peak PSS, CPU s]
    stop = threading.Event()

    def role(p, root) -> str:
        cmd = " ".join(p.cmdline())
        if p.pid == root.pid:
            return "main"
        if "resource_tracker" in cmd:
            return "resource tracker"
        if "forkserver" in cmd:
            return "fork server" if p.ppid() == root.pid else "worker"
        return "worker" if "multiprocessing" in cmd else "other"

    def poll() -> None:
        nonlocal peak, peak_pss
        try:
            root = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        tick = 0
        while not stop.is_set():
            total = total_pss = 0
            full = tick % 5 == 0  # PSS (reads smaps_rollup) every 250 ms
            try:
                for p in [root, *root.children(recursive=True)]:
                    try:
                        rss = p.memory_info().rss
                        pss = p.memory_full_info().pss if full else 0
                        times = p.cpu_times()
                        entry = each.setdefault(p.pid, ["other", 0, 0, 0.0])
                        if entry[0] == "other":  # seen between fork and exec: look again
                            entry[0] = role(p, root)
                    except (psutil.NoSuchProcess, psutil.AccessDenied, AttributeError):
                        continue
                    entry[1], entry[2] = max(entry[1], rss), max(entry[2], pss)
                    entry[3] = times.user + times.system
                    total += rss
                    total_pss += pss
            except psutil.NoSuchProcess:
                break
            peak = max(peak, total)
            peak_pss = max(peak_pss, total_pss)
            tick += 1
            stop.wait(0.05)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    output, _ = proc.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    watcher.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"{side} failed (exit {proc.returncode}):\n{output[-4000:]}")
    per_process: dict[str, tuple[int, int, float]] = {}
    for r, rss, pss, cpu_s in each.values():  # the largest process of each role; CPU summed
        old = per_process.get(r, (0, 0, 0.0))
        per_process[r] = (max(old[0], rss), max(old[1], pss), old[2] + cpu_s)
    return Measured(side, round_, wall, cpu, peak, load, peak_pss, per_process,
                    note=output[-2000:])


def tokbench_values(out: Path) -> dict[str, dict[str, float | None]]:
    from tokbench.results.load import load_results

    df = load_results(out)
    values: dict[str, dict[str, float | None]] = {}
    for row in df[df["metric"].isin(METRICS) & df["utterance_id"].notna()].itertuples():
        values.setdefault(str(row.utterance_id), {})[str(row.metric)] = (
            None if np.isnan(row.value) else float(row.value))
    return values


def compare(a: dict, b: dict, metrics: tuple[str, ...] = METRICS) -> dict[str, float]:
    """Max |a - b| per metric over the pairs (inf where one side has a value the other lacks)."""
    worst: dict[str, float] = {}
    for utt, va in a.items():
        vb = b.get(utt, {})
        for m in metrics:
            x, y = va.get(m), vb.get(m)
            d = 0.0 if x is None and y is None else (
                float("inf") if x is None or y is None else abs(x - y))
            worst[m] = max(worst.get(m, 0.0), d)
    if set(a) != set(b):
        worst["(pairs)"] = float("inf")
    return worst


# ---------------------------------------------------------------------------------------------
# VERSA

VERSA_CONFIG = """\
- name: pesq
- name: stoi
- name: estoi
- name: mcd_f0
  f0min: 40
  f0max: 800
  mcep_shift: 5
  mcep_fftl: 1024
  mcep_dim: 39
  mcep_alpha: 0.466
  seq_mismatch_tolerance: 0.1
  power_threshold: -20
  dtw: false
"""


# tokbench's metrics that VERSA's config computes too (PESQ WB, STOI, ESTOI, WORLD F0 pitch
# metrics): the "same metric set" comparison of issue 21.
VERSA_SET = ("pesq_wb", "stoi", "estoi", "gpe", "vde", "ffe", "f0_corr")
VERSA_SET_LABEL = " versa-set"


def versa_command(python: str, ref_dir: Path, hyp_dir: Path, work: Path) -> list[str]:
    work.mkdir(parents=True, exist_ok=True)
    config = work / "versa.yaml"
    config.write_text(VERSA_CONFIG)
    for name, folder in (("gt.scp", ref_dir), ("pred.scp", hyp_dir)):
        (work / name).write_text("".join(f"{p.stem} {p}\n" for p in sorted(folder.glob("*.wav"))))
    return [python, "-m", "versa.bin.scorer", "--score_config", str(config),
            "--gt", str(work / "gt.scp"), "--pred", str(work / "pred.scp"),
            "--output_file", str(work / "result.txt"), "--io", "soundfile"]


def versa_check(work: Path, pairs: int) -> str:
    """VERSA exits 0 even when it drops a metric (e.g. mcd_f0 without setuptools<81): check."""
    out = work / "result.txt"
    if not out.exists():
        return "VERSA wrote no result file"
    lines = []
    for x in out.read_text().splitlines():
        try:  # one dict per utterance, written as JSON or as a Python literal
            lines.append(json.loads(x))
        except ValueError:
            try:
                lines.append(ast.literal_eval(x))
            except (ValueError, SyntaxError):
                pass
    keys = set().union(*(set(x) for x in lines if isinstance(x, dict))) if lines else set()
    missing = [k for k in ("pesq", "stoi", "f0corr") if not any(k in key for key in keys)]
    msg = f"{len(lines)} of {pairs} utterances; keys {sorted(keys)}"
    return msg + (f"; MISSING {missing}" if missing else "")


# ---------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved repeats (A/B/A/B)")
    ap.add_argument("--workers", default=str(max(1, os.cpu_count() or 1)),
                    help="pool size(s) of tokbench score, comma-separated (e.g. 1,2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--versa-python", help="python of an environment where VERSA is installed")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it")
    ap.add_argument("--_loop", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._loop:
        plain_loop(Path(args._loop[0]), Path(args._loop[1]), Path(args._loop[2]))
        return

    work = args.keep or Path(tempfile.mkdtemp(prefix="tokbench-score-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    ref_dir, hyp_dir = make_pairs(work / "pairs", args.pairs, args.seconds, args.seed)
    workers = [int(w) for w in args.workers.split(",")]
    print(f"{args.pairs} pairs of {args.seconds} s at 16 kHz in {work}; {os.cpu_count()} CPUs; "
          f"pool sizes {workers}; {args.rounds} round(s); load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    py = sys.executable
    results: list[Measured] = []
    for r in range(args.rounds):
        loop_out = work / f"loop{r}.json"
        m = measure("loop", r, [py, __file__, "--_loop", str(ref_dir), str(hyp_dir), str(loop_out)],
                    env=ONE_THREAD)
        m.values = json.loads(loop_out.read_text())
        results.append(m)
        _print(m, None)
        loop = m
        def tokbench_pair(label: str, w: int, metrics: tuple[str, ...], r: int = r,
                          loop: Measured = loop) -> None:
            """A cold run (empty cache) then a warm one (the reference side cached)."""
            cache = work / f"cache{r}{label}w{w}"
            shutil.rmtree(cache, ignore_errors=True)
            for side in ("cold", "warm"):
                out = work / f"out-{side}{label}{r}w{w}"
                shutil.rmtree(out, ignore_errors=True)
                cmd = [py, "-m", "tokbench.cli", "score", "--ref", str(ref_dir), "--hyp",
                       str(hyp_dir), "--no-asr", "--workers", str(w), "--out", str(out),
                       "--device", "cpu", "--metrics", ",".join(metrics)]
                m = measure(f"{side}{label} w={w}", r, cmd, env={"TOKBENCH_CACHE": str(cache)})
                m.values = tokbench_values(out)
                diff = compare(loop.values or {}, m.values, metrics)
                bad = {k: v for k, v in diff.items() if v > TOLERANCE}
                m.note = ("values equal the loop's within 1e-9" if not bad else
                          "VALUES DIFFER from the loop's: " + ", ".join(f"{k} {v:.3g}" for k, v in bad.items()))
                results.append(m)
                _print(m, loop)

        for w in workers:
            tokbench_pair("", w, METRICS)
        if args.versa_python:
            vwork = work / f"versa{r}"
            m = measure("versa", r, versa_command(args.versa_python, ref_dir, hyp_dir, vwork))
            m.note = versa_check(vwork, args.pairs)
            results.append(m)
            _print(m, loop)
            tokbench_pair(VERSA_SET_LABEL, max(workers), VERSA_SET)
    _summary(results)


def _print(m: Measured, loop: Measured | None) -> None:
    ratio = ""
    if loop is not None:
        ratio = f"  speed-up {loop.wall / m.wall:5.2f}x  CPU {m.cpu / loop.cpu:5.3f}x of loop"
    print(f"[round {m.round}] {m.side:20s} wall {m.wall:8.1f} s  CPU {m.cpu:8.1f} s  "
          f"peak {m.peak_rss / 2**30:5.2f} GiB (PSS {m.peak_pss / 2**30:4.2f})  "
          f"load {m.load:5.2f}{ratio}", flush=True)
    if m.per_process:
        print("           peak per process (RSS / PSS MiB; CPU s of all of that role, to 50 ms "
              "before each ended): " + ", ".join(
                  f"{r} {rss / 2**20:.0f} / {pss / 2**20:.0f}; {c:.1f} s"
                  for r, (rss, pss, c) in m.per_process.items()), flush=True)
    if m.side != "loop":
        print(f"           {m.note.strip().splitlines()[-1] if m.note.strip() else ''}", flush=True)


def _summary(results: list[Measured]) -> None:
    sides = list(dict.fromkeys(m.side for m in results))
    loops = {m.round: m for m in results if m.side == "loop"}
    print("\nsummary (median over rounds; ratios within each round, then median)")
    print(f"{'side':20s} {'wall s':>8s} {'CPU s':>8s} {'peak GiB':>8s} {'PSS GiB':>8s} "
          f"{'speed-up':>8s} {'CPU/loop':>8s} {'load':>6s}")
    for side in sides:
        ms = [m for m in results if m.side == side]
        speed = np.median([loops[m.round].wall / m.wall for m in ms])
        cpu = np.median([m.cpu / loops[m.round].cpu for m in ms])
        print(f"{side:20s} {np.median([m.wall for m in ms]):8.1f} {np.median([m.cpu for m in ms]):8.1f} "
              f"{max(m.peak_rss for m in ms) / 2**30:8.2f} {max(m.peak_pss for m in ms) / 2**30:8.2f} "
              f"{speed:7.2f}x {cpu:7.3f}x "
              f"{np.median([m.load for m in ms]):6.2f}")
    for kind in ("cold", "warm"):
        by_w = {int(m.side.split("=")[1]): m for m in results if m.side.startswith(kind + " w=")}
        if len(by_w) > 1:
            w0 = min(by_w)
            print(f"{kind} scaling (throughput vs w={w0}, median over rounds): " + ", ".join(
                f"w={w} {np.median([a.wall / b.wall for a in results for b in results if a.side == f'{kind} w={w0}' and b.side == f'{kind} w={w}' and a.round == b.round]):.2f}x"
                for w in sorted(by_w)))
    versa = {m.round: m for m in results if m.side == "versa"}
    for side in sides:
        if versa and side.startswith(("cold", "warm")):
            ms = [m for m in results if m.side == side and m.round in versa]
            what = ("the same metric set as VERSA" if VERSA_SET_LABEL in side
                    else "more metrics than VERSA (SECS, PESQ NB, mel)")
            print(f"{side} vs VERSA: {np.median([versa[m.round].wall / m.wall for m in ms]):.2f}x "
                  f"faster, CPU {np.median([m.cpu / versa[m.round].cpu for m in ms]):.3f}x of "
                  f"VERSA's ({what})")


if __name__ == "__main__":
    main()
