"""Runs that survive: per-utterance failures, locks, interruptions, resumes, clear errors."""

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import tokbench
from tokbench.cli import app
from tokbench.data import open_dataset
from tokbench.results.lock import RunLock, RunLockedError
from tokbench.results.store import iter_records, read_run_json
from tokbench.run.runner import run

PLUGIN = Path(__file__).parent / "plugins" / "faulty.py"
FAST = ["metrics=pesq_wb,stoi"]  # these tests are about plumbing: two cheap metrics


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Four sample utterances; u1 is marked to make the faulty decoder raise."""
    root = tmp_path_factory.mktemp("utts")
    ds = open_dataset("sample")
    for k, utt in enumerate(ds.utterances[:4]):
        a = ds.load(utt)
        wav = a.wav[: a.sample_rate].copy()  # 1 s: these tests are about plumbing
        if k == 1:
            wav[0] = 0.5
        sf.write(root / f"u{k}.wav", wav, a.sample_rate, subtype="FLOAT")
    return root


def _records(path):
    return {r["utterance_id"]: r for r in iter_records(path) if r.get("utterance_id")}


def test_one_failing_utterance_is_recorded_and_the_others_are_scored(folder, tmp_path):
    result = run("", "recon", str(folder), adapter=f"{PLUGIN}:Faulty", out=tmp_path, workers=0,
                 overrides=FAST, batch_size=4, log=lambda m: None)
    recs = _records(result.path)
    assert set(recs) == {"u0", "u1", "u2", "u3"}
    assert recs["u1"]["metrics"]["pesq_wb"] is None
    assert "decoder exploded" in recs["u1"]["reasons"]["pesq_wb"]
    assert all(recs[u]["metrics"]["pesq_wb"] is not None for u in ("u0", "u2", "u3"))
    assert result.account is not None and result.account.n_failed == 1
    assert any("1 of 4 utterances failed: u1" in line for line in result.account.lines())


@pytest.mark.slow
def test_strict_makes_failures_an_exit_code(folder, tmp_path):
    args = ["run", "--adapter", f"{PLUGIN}:Faulty", "--task", "recon", "--dataset", str(folder),
            "--out", str(tmp_path), "--workers", "0", "--metrics", "pesq_wb,stoi", "--no-progress"]
    assert CliRunner().invoke(app, args).exit_code == 0
    r = CliRunner().invoke(app, [*args, "--strict"])
    assert r.exit_code == 1 and "--strict" in r.output and "u1" in r.output


def test_longer_output_is_flagged_not_cut(folder, tmp_path):
    result = run("", "recon", str(folder), adapter=f"{PLUGIN}:Longer", out=tmp_path, workers=0,
                 overrides=FAST, log=lambda m: None)
    recs = _records(result.path)
    assert all(r["metrics"]["length_ratio"] == pytest.approx(1.5, abs=0.01) for r in recs.values())
    assert all(r["extra"]["length_mismatch_16k"] > 0 for r in recs.values())
    # the extra half is scored against silence: far from the near-lossless 8-bit PCM score
    assert max(r["metrics"]["pesq_wb"] for r in recs.values()) < 3.0
    assert any("differ in length" in line for line in result.account.lines())


def test_a_second_process_is_refused_and_a_stale_lock_taken_over(folder, tmp_path):
    first = run("", "recon", str(folder), adapter=f"{PLUGIN}:Longer", out=tmp_path, workers=0,
                overrides=FAST, log=lambda m: None)
    held = RunLock(first.path).acquire()  # this live process holds it
    try:
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
            run("", "recon", str(folder), adapter=f"{PLUGIN}:Longer", out=tmp_path, workers=0,
                overrides=FAST, log=lambda m: None)
    finally:
        held.release()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    (first.path / ".lock.rank0").write_text(json.dumps(
        {"pid": int(dead.stdout), "host": os.uname().nodename, "since": "then"}))
    again = run("", "recon", str(folder), adapter=f"{PLUGIN}:Longer", out=tmp_path, workers=0,
                overrides=FAST, log=lambda m: None)
    assert again.status == "complete" and not (first.path / ".lock.rank0").exists()


def test_interrupted_runs_say_so_and_resume(folder, tmp_path):
    stop = tmp_path / "stop"
    stop.mkdir()
    ds = open_dataset(str(folder))
    for k, utt in enumerate(ds.utterances):
        a = ds.load(utt)
        wav = a.wav.copy()
        if k == 3:
            wav[0] = -0.5  # Ctrl-C when the model reaches it
        sf.write(stop / f"u{k}.wav", wav, a.sample_rate, subtype="FLOAT")
    logs = []
    with pytest.raises(KeyboardInterrupt):
        run("", "recon", str(stop), adapter=f"{PLUGIN}:Faulty", out=tmp_path / "r", workers=0,
            overrides=FAST, batch_size=1, log=logs.append)
    [path] = [p.parent for p in (tmp_path / "r").rglob("run.json")]
    info = read_run_json(path)
    assert info["status"] == "interrupted" and "of 4 saved; rerun to resume" in info["status_reason"]
    assert any(m.startswith("interrupted (") for m in logs)
    created = info["created"]
    # a process killed without a word (no Ctrl-C handler) also reads as interrupted
    raw = json.loads((path / "run.json").read_text())
    raw["status"] = "running"
    (path / "run.json").write_text(json.dumps(raw))
    assert read_run_json(path)["status"] == "interrupted"
    sf.write(stop / "u3.wav", sf.read(folder / "u3.wav")[0], 16000, subtype="FLOAT")  # fixed input
    logs.clear()
    result = run("", "recon", str(stop), adapter=f"{PLUGIN}:Faulty", out=tmp_path / "r2",
                 workers=0, overrides=FAST, batch_size=1, log=logs.append)
    assert result.status == "complete"
    # the complete run again: answered from its folder, its history untouched
    again = run("", "recon", str(stop), adapter=f"{PLUGIN}:Faulty", out=tmp_path / "r2",
                workers=0, overrides=FAST, batch_size=1, log=logs.append)
    assert again.path == result.path and any(m.startswith("already complete") for m in logs), logs
    info = read_run_json(again.path)
    assert len(info["history"]) == 1 and info["created"] == info["history"][0]["created"]
    assert created  # the interrupted run kept its own creation time too


def test_rerun_failed_runs_failed_utterances_again(folder, tmp_path):
    first = run("", "recon", str(folder), adapter=f"{PLUGIN}:Faulty", out=tmp_path, workers=0,
                overrides=FAST, log=lambda m: None)
    assert _records(first.path)["u1"]["metrics"]["pesq_wb"] is None
    logs = []
    run("", "recon", str(folder), adapter=f"{PLUGIN}:Faulty", out=tmp_path, workers=0,
        overrides=FAST, rerun_failed=True, log=logs.append)
    assert "rerunning 1 failed utterances" in logs
    lines = [json.loads(x) for x in (first.path / "utterances.rank0.jsonl").read_text().splitlines()]
    assert sorted(r["utterance_id"] for r in lines) == ["u0", "u1", "u2", "u3"]  # no duplicate


def test_transient_failures_are_computed_again_on_resume(tmp_path):
    from tokbench.records import make_record
    from tokbench.results.store import RunSpec, RunStore

    spec = RunSpec(dataset="d", dataset_revision="r", task="t", task_version="1", task_options={},
                   tokenizer="x", variant="x", tokenizer_options={}, tokenizer_revision=None,
                   protocol={"version": "2"}, kind="acoustic")
    store = RunStore(tmp_path, spec).open({})
    store.append(make_record("a", {"wer": None}, {"wer": "ASR unavailable"},
                             extra={"transient": ["wer"]}))
    store.append(make_record("b", {"wer": 3.0}))
    again = RunStore(tmp_path, spec).open({})
    assert not again.is_done("a") and again.is_done("b")


def test_mistakes_are_one_line_errors_not_tracebacks(folder, tmp_path):
    runner = CliRunner()
    base = ["run", "--task", "recon", "--dataset", str(folder), "--set", "asr=false", "--no-progress"]
    afile = tmp_path / "afile"
    afile.write_text("x")
    r = runner.invoke(app, [*base, "--tokenizer", "mulaw", "--out", str(afile)])
    assert r.exit_code == 2 and "is a file" in r.output
    r = runner.invoke(app, [*base, "--tokenizer", "mulaw", "--device", "cuda", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "--device cuda" in r.output and "Traceback" not in r.output
    bad = tmp_path / "bad.py"
    bad.write_text("def broken(:\n")
    r = runner.invoke(app, [*base, "--adapter", f"{bad}:X", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "SyntaxError (line 1)" in r.output
    r = runner.invoke(app, [*base, "--adapter", f"{PLUGIN}:Nope", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "Nope" in r.output
    assert not list(tmp_path.rglob("run.json"))  # no run left behind in a "running" state


@pytest.mark.slow
def test_files_follow_the_umask(folder, tmp_path):
    old = os.umask(0o022)
    try:
        result = run("", "recon", str(folder), adapter=f"{PLUGIN}:Longer", out=tmp_path,
                     workers=0, overrides=FAST, log=lambda m: None)
    finally:
        os.umask(old)
    for name in ("run.json", "summary.json", "corpus.jsonl"):
        assert stat.S_IMODE((result.path / name).stat().st_mode) == 0o644, name


@pytest.mark.slow
def test_corrupt_whisper_checkpoint_is_a_reason_not_a_traceback(folder, tmp_path):
    ckpt = tmp_path / "whisper.pt"
    ckpt.write_bytes(b"\x80\x02not really a pickle")
    result = run("", "recon", str(folder), adapter=f"{PLUGIN}:Longer", out=tmp_path, workers=0,
                 overrides=[f"asr_checkpoint={ckpt}"], log=lambda m: None)
    df = tokbench.load_results(result.path)
    wer = df[(df.metric == "wer") & df.utterance_id.notna()]
    assert wer["value"].isna().all()
    assert wer["reason"].str.contains("not a readable Whisper checkpoint").all()
    assert np.isfinite(df[df.metric == "stoi"]["value"]).all()


def test_a_group_torn_by_a_kill_is_dropped_whole(tmp_path):
    from tokbench.records import make_record
    from tokbench.results.store import RunSpec, RunStore

    spec = RunSpec(dataset="d", dataset_revision="r", task="t", task_version="1", task_options={},
                   tokenizer="x", variant="x", tokenizer_options={}, tokenizer_revision=None,
                   protocol={"version": "2"}, kind="acoustic")
    store = RunStore(tmp_path, spec).open({})
    store.append_group([make_record(u, {"acc": 1.0}, param=0) for u in "abc"]
                       + [make_record(None, {}, param=0)])
    store.append_group([make_record(u, {"acc": 0.0}, param=1) for u in "abc"]
                       + [make_record(None, {}, param=1)])
    lines = store.records_path.read_text().splitlines()
    store.records_path.write_text("\n".join(lines[:6]) + "\n")  # killed inside seed 1's group
    again = RunStore(tmp_path, spec).open({})
    assert again.is_done(None, 0) and again.is_done("c", 0)
    assert not again.is_done(None, 1) and not again.is_done("a", 1)  # none of seed 1 survives
    assert len(again.records_path.read_text().splitlines()) == 4


def test_example_folders_are_one_to_one_and_fit_any_id():
    from tokbench.results.store import example_folder_name

    ids = ["a/x", "a_x", ".", "..", "ü", "u" * 500]
    names = [example_folder_name(i) for i in ids]
    assert len(set(names)) == len(ids)
    assert all(len(n) <= 80 and "/" not in n and n not in (".", "..") for n in names)


@pytest.mark.slow
def test_two_processes_on_one_configuration_compute_it_once(tmp_path):
    """Two `tokbench run` of one configuration into one folder at the same time: one computes,
    the other is refused with the holder's pid (or, with --wait, waits and then has nothing to
    do); every utterance is recorded once."""
    env = {**os.environ, "TOKBENCH_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "tokbench.cli", "run", "--tokenizer", "mulaw", "--task", "recon",
           "--limit", "4", "--workers", "0", "--set", "asr=false", "--out", str(tmp_path / "out"),
           "--no-progress"]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list((tmp_path / "out").rglob(".lock.rank0")):
        if first.poll() is not None:
            break
        time.sleep(0.05)
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    waiter = subprocess.Popen([*cmd, "--wait"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    first.communicate(timeout=600)
    _, waited = waiter.communicate(timeout=600)
    assert first.returncode == 0
    if second.returncode == 2:  # it met the first one's lock
        assert "is being run by pid" in second.stderr and "--wait" in second.stderr
    else:  # the first had already finished: the second resumed a complete run
        assert second.returncode == 0
    assert waiter.returncode == 0
    [shard] = list((tmp_path / "out").rglob("utterances.rank0.jsonl"))
    ids = [json.loads(x)["utterance_id"] for x in shard.read_text().splitlines()]
    assert len(ids) == 4 and len(set(ids)) == 4
