"""Suites (issue 19): schema and include:, the sweep, resume/skip, suite report, prefetch,
--data-dir, and the submitit-local and torchrun paths (slow: real processes)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from tokbench.cli import app
from tokbench.results.store import iter_records, read_run_json
from tokbench.suites import SuiteError, builtin_names, load_suite
from tokbench.suites.matrix import SweepOptions, entries_of, run_matrix

REPO = Path(__file__).resolve().parent.parent


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------- schema
def test_schema_errors_name_the_file_and_the_key(tmp_path):
    bad = write(tmp_path / "bad.yaml", """
name: bad
dataset: sample
tasks: {recon: {asr: false}}
tokenizers:
  - preset: mulaw
    set: [bits, 8]
  - {preset: identity, lable: x}
limt: 3
""")
    with pytest.raises(SuiteError) as exc:
        load_suite(str(bad))
    text = str(exc.value)
    assert f"{bad}: tokenizers[0].set: expected a mapping" in text
    assert "tokenizers[1].lable: unknown key (did you mean 'label'?)" in text
    assert "limt: unknown key (did you mean 'limit'?)" in text


def test_required_keys_are_checked_after_include(tmp_path):
    write(tmp_path / "base.yaml", "tasks: {recon: {asr: false, keep_audio: 1}}\nmetrics: [pesq_wb]\n")
    child = write(tmp_path / "child.yaml", """
include: base.yaml
dataset: sample
tasks: {recon: {keep_audio: 0}}
tokenizers: [mulaw, {preset: not-registered-anywhere, label: future}]
""")
    suite = load_suite(str(child))
    assert suite.tasks == {"recon": {"asr": False, "keep_audio": 0}}  # merged, child wins
    assert suite.metrics == ["pesq_wb"]
    assert [e.label for e in suite.tokenizers] == ["mulaw", "future"]  # unknown preset is valid
    assert suite.files == [child, tmp_path / "base.yaml"]
    lonely = write(tmp_path / "lonely.yaml", "dataset: sample\n")
    with pytest.raises(SuiteError, match=r"lonely.yaml: tasks: required"):
        load_suite(str(lonely))


def test_include_cycles_and_missing_files_are_errors(tmp_path):
    write(tmp_path / "a.yaml", "include: b.yaml\n")
    write(tmp_path / "b.yaml", "include: a.yaml\n")
    with pytest.raises(SuiteError, match="cycle a.yaml -> b.yaml -> a.yaml"):
        load_suite(str(tmp_path / "a.yaml"))
    write(tmp_path / "c.yaml", "include: nowhere.yaml\n")
    with pytest.raises(SuiteError, match="c.yaml: include: suite file nowhere.yaml does not exist"):
        load_suite(str(tmp_path / "c.yaml"))
    with pytest.raises(SuiteError, match="did you mean 'codec-zoo'"):
        load_suite("codec-zo")


def test_builtin_suites_load_and_cite_their_rows():
    from tokbench.report.published import read_reference

    assert {"dates-speech-recon", "guo2025-recon-vc", "codec-zoo", "offline-smoke"} <= set(builtin_names())
    dates = load_suite("dates-speech-recon")
    assert dates.dataset == "librispeech-test-clean" and dates.tasks["recon"]["asr_model"] == "large-v3"
    ref = read_reference(REPO / "results" / "reference" / f"{dates.reference}.json")
    labels = {ref.label(r) for r in ref.rows}
    rows = [" ".join(str(v) for v in e.row.values()) for e in dates.tokenizers]
    assert set(rows) <= labels and len(rows) == len(set(rows)) == 14
    guo = load_suite("guo2025-recon-vc")
    assert guo.dataset == "libritts-test-b" and set(guo.tasks) == {"recon", "vc"}
    assert guo.protocol_differences
    assert load_suite("codec-zoo").dataset is None


def test_codec_zoo_takes_one_default_preset_per_adapter_that_decodes():
    from tokbench.registry import tokenizers
    from tokbench.suites.matrix import default_presets

    zoo = load_suite("codec-zoo")
    names = [e.preset for e in default_presets(zoo.tokenizers)]
    targets = [tokenizers.get(n).target for n in names]
    assert len(targets) == len(set(targets))
    assert "identity" in names and "mulaw" in names and "mimi" in names and "mimi-32" not in names
    assert not any(n.startswith("hubert") for n in names)  # no vocoder by default: no decode


# ------------------------------------------------------------------------------- the sweep
@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    cache = tmp_path_factory.mktemp("cache")
    from tokbench.resolve import ResolvedTokenizer

    loads: list[str] = []
    real = ResolvedTokenizer.load

    def counting(self, *a, **k):
        loads.append(self.entry.name)
        return real(self, *a, **k)

    ResolvedTokenizer.load = counting
    try:
        opts = SweepOptions(out=out, limit=2, workers=0, cache_dir=cache, device="cpu")
        outcomes = run_matrix(entries_of(["identity", "mulaw", "not-yet-registered"]),
                              {"recon": {}, "bpe": {"multipliers": (1, 2)}}, ["sample"], opts,
                              {"asr": False})
    finally:
        ResolvedTokenizer.load = real
    return out, cache, outcomes, loads


def test_sweep_runs_the_matrix_loading_each_model_once(sweep):
    out, _, outcomes, loads = sweep
    got = {(o.label, o.task): o for o in outcomes}
    assert len(outcomes) == 6
    for name in ("identity", "mulaw"):
        assert got[(name, "recon")].status == "done" and got[(name, "recon")].n_records == 2
        assert got[(name, "bpe")].status == "done" and got[(name, "bpe")].n_corpus > 0
        assert read_run_json(got[(name, "recon")].path)["status"] == "complete"
    for task in ("recon", "bpe"):
        o = got[("not-yet-registered", task)]
        assert o.status == "not available" and "not available in this install" in o.detail
    assert sorted(loads) == ["identity", "mulaw"]  # one load per tokenizer for its two tasks


def test_sweep_does_reference_side_work_once_per_dataset(sweep):
    _, cache, _, _ = sweep
    files = lambda kind: [p for p in (cache / kind).rglob("*") if p.is_file()]  # noqa: E731
    # Two tokenizers scored the same 2 utterances: reference F0 and speaker embeddings exist once.
    assert len(files("reference-f0")) == 2 and len(files("reference-speaker")) == 2


def test_rerun_skips_complete_and_resumes_partial(sweep):
    out, cache, outcomes, _ = sweep
    recon = next(o for o in outcomes if o.label == "mulaw" and o.task == "recon")
    info = read_run_json(recon.path)
    info["status"] = "running"  # as if killed after its records were written
    (Path(recon.path) / "run.json").write_text(json.dumps(info))
    opts = SweepOptions(out=out, limit=2, workers=0, cache_dir=cache, device="cpu")
    again = run_matrix(entries_of(["identity", "mulaw"]), {"recon": {}, "bpe": {"multipliers": (1, 2)}},
                       ["sample"], opts, {"asr": False})
    got = {(o.label, o.task): o.status for o in again}
    assert got == {("identity", "recon"): "skipped", ("identity", "bpe"): "skipped",
                   ("mulaw", "recon"): "resumed", ("mulaw", "bpe"): "skipped"}
    assert len(list(iter_records(recon.path))) == 2  # nothing duplicated
    more = run_matrix(entries_of(["mulaw"]), {"recon": {}}, ["sample"],
                      SweepOptions(out=out, limit=3, workers=0, cache_dir=cache, device="cpu"),
                      {"asr": False})
    # the utterance selection is part of a run's identity: a larger --limit is a run of its own
    assert more[0].status == "done" and more[0].path != recon.path
    assert len(list(iter_records(more[0].path))) == 3
    assert len(list(iter_records(recon.path))) == 2


def test_one_load_serves_every_dataset_and_a_broken_dataset_fails_only_its_runs(tmp_path, monkeypatch):
    from tokbench.data import Dataset, Utterance, open_dataset
    from tokbench.resolve import ResolvedTokenizer

    loads = []
    real = ResolvedTokenizer.load
    monkeypatch.setattr(ResolvedTokenizer, "load", lambda self, *a, **k: loads.append(1) or real(self, *a, **k))
    src = open_dataset("sample").utterances[4:6]
    mini = Dataset("mini", "r0", [Utterance(u.id, u.path, u.text, u.speaker) for u in src])
    outcomes = run_matrix(entries_of(["mulaw"]), {"recon": {}}, ["sample", mini, str(tmp_path / "nowhere")],
                          SweepOptions(out=tmp_path, limit=1, workers=0, device="cpu"), {"asr": False})
    assert [(o.dataset, o.status) for o in outcomes] == [
        ("sample", "done"), ("mini", "done"), (str(tmp_path / "nowhere"), "failed")]
    assert "dataset:" in outcomes[2].detail and len(loads) == 1


def test_unknown_shared_option_is_an_error_before_anything_runs(tmp_path):
    from tokbench.options import OptionError

    with pytest.raises(OptionError, match="did you mean 'asr'"):
        run_matrix(entries_of(["mulaw"]), {"recon": {}}, ["sample"], SweepOptions(out=tmp_path), {"asrr": 0})
    assert not any(tmp_path.iterdir())


def test_cli_run_with_comma_lists_prints_one_summary(tmp_path):
    r = CliRunner().invoke(app, ["run", "--tokenizer", "mulaw,nope", "--task", "recon", "--limit", "2",
                                 "--set", "asr=false", "--workers", "0", "--out", str(tmp_path),
                                 "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "2 runs: 1 done, 1 not available" in r.output


SUITE = """
name: tiny
dataset: sample
limit: 2
tasks:
  recon: {asr: false}
metrics: [pesq_wb, stoi, bitrate_nominal]
protocol:
  expect: {scoring_sample_rate: 16000, resampler: not-soxr}
reproduces: {reference: tiny_table}
tokenizers:
  - {preset: identity, row: {tokenizer: ground-truth}}
  - {preset: mulaw, row: {tokenizer: mulaw, variant: 8bit}}
  - {preset: speechtokenizer-from-the-future, row: {tokenizer: st}}
  - {preset: mimi, label: tiny-mimi, checkpoint: MIMI_DIR}
"""


@pytest.fixture(scope="module")
def tiny_mimi(tiny_checkpoint):
    from tokbench.registry import tokenizers

    # The family's own tiny-checkpoint builder (built once per session, conftest): real strides
    # and 32 x 2048 codes, narrow layers.
    return tiny_checkpoint(tokenizers.get("mimi").load())[1]


def tiny_suite(path: Path, mimi: Path, reference: bool = True) -> Path:
    text = SUITE.replace("MIMI_DIR", str(mimi))
    if not reference:
        text = text.replace("reproduces: {reference: tiny_table}\n", "")
    return write(path, text)


def test_suite_run_and_report_side_by_side(tmp_path, tiny_mimi, one_torch_thread):
    suite = tiny_suite(tmp_path / "tiny.yaml", tiny_mimi)
    ref = tmp_path / "ref"
    write(ref / "tiny_table.csv", "tokenizer,variant,kbps,pesq,stoi,utmos\n"
                                  "ground-truth,,,4.64,1.00,4.1\nmulaw,8bit,128,1.0,0.99,3\nst,,1,2,0.9,3\n")
    write(ref / "tiny_table.json", json.dumps({
        "csv": "tiny_table.csv", "citation": "Someone 2025", "task": "recon", "dataset": "sample",
        "label_columns": ["tokenizer", "variant"],
        "columns": {"kbps": {"metric": "bitrate_nominal", "scale": 1000, "comparable": "rate"},
                    "pesq": {"metric": "pesq_wb", "comparable": "caveats"},
                    "stoi": {"metric": "stoi", "comparable": "yes"},
                    "utmos": {"comparable": "no", "note": "no counterpart"}}}))
    out = tmp_path / "out"
    runner = CliRunner()
    r = runner.invoke(app, ["suite", "run", str(suite), "--out", str(out), "--workers", "0",
                            "--no-progress", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "4 runs: 3 done, 1 not available" in r.output
    mimi_run = next((out / "sample" / "recon").glob("mimi/*/run.json")).parent
    assert read_run_json(mimi_run)["tokenizer_meta"]["source"]["local_path"] == str(tiny_mimi.resolve())
    from tokbench.suites.compare import build_comparison

    comp = build_comparison(load_suite(str(suite)), out, reference_dir=ref)
    rows = {r.label: r for r in comp.rows}
    mu = rows["mulaw"].cells
    assert rows["mulaw"].reference_row == "mulaw 8bit" and rows["mulaw"].status == "complete"
    assert mu["bitrate_nominal"].reported == 128_000 and mu["bitrate_nominal"].ours == 128_000
    assert mu["pesq_wb"].reported == 1.0 and mu["pesq_wb"].ours > 3.0
    assert mu["pesq_wb"].difference == pytest.approx(mu["pesq_wb"].ours - 1.0)
    assert mu["pesq_wb"].in_ci is False and mu["pesq_wb"].n == 2
    assert rows["speechtokenizer-from-the-future"].status == "no run"
    assert [c.name for c in comp.not_comparable] == ["utmos"]
    checks = {p.key: p.ok for p in comp.protocol}
    assert checks == {"scoring_sample_rate": True, "resampler": False}
    r = runner.invoke(app, ["suite", "report", str(suite), "--results", str(out), "--reference",
                            str(ref), "--format", "md"])
    assert r.exit_code == 0, r.output
    assert "pesq_wb reported (pesq, caveats)" in r.output and "DIFFERS from the source" in r.output
    r = runner.invoke(app, ["suite", "run", str(suite), "--out", str(out), "--workers", "0",
                            "--no-progress", "--device", "cpu"])
    assert "4 runs: 3 skipped, 1 not available" in r.output


def test_suite_run_errors_are_messages_not_tracebacks(tmp_path):
    r = CliRunner().invoke(app, ["suite", "run", "codec-zoo", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "names no dataset: pass --dataset" in r.output
    r = CliRunner().invoke(app, ["suite", "run", "tiny-suite-that-is-not"])
    assert r.exit_code == 2 and "unknown suite" in r.output


# ------------------------------------------------------------------------------- prefetch
def test_prefetch_offline_names_what_is_missing_and_verifies_the_cache(tmp_path, monkeypatch):
    import hashlib

    from tokbench.suites.assets import needed_assets, prefetch

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assets = prefetch(needed_assets(None, "identity,mimi,mimi-32,nope", "recon", "librispeech-test-clean",
                                    {}), download=False)
    by = {a.needed_by: a for a in assets}
    assert by["identity"].state == "nothing to fetch"
    mimi = by["mimi, mimi-32"]  # one repo, both presets
    assert mimi.state == "missing" and mimi.source.startswith("https://huggingface.co/kyutai/mimi@")
    assert by["nope"].state == "not available"
    ls = by["librispeech-test-clean"]
    assert ls.state == "missing" and ls.size == 346_663_984
    assert ls.source == "https://www.openslr.org/resources/12/test-clean.tar.gz"
    asr = by["recon (WER/CER)"]
    assert asr.state == "missing" and asr.source.endswith("/large-v3.pt")
    # A cached snapshot is verified blob by blob against the hash it is stored under.
    repo, rev = mimi.source.removeprefix("https://huggingface.co/").split("@")
    base = tmp_path / "hub" / ("models--" + repo.replace("/", "--"))
    payload = b"weights" * 100
    blob = base / "blobs" / hashlib.sha256(payload).hexdigest()
    blob.parent.mkdir(parents=True)
    blob.write_bytes(payload)
    snap = base / "snapshots" / rev
    snap.mkdir(parents=True)
    (snap / "model.safetensors").symlink_to(blob)
    again = prefetch(needed_assets(None, "mimi", None, None, {}), download=False)
    assert again[0].state == "cached" and again[0].size == len(payload)
    blob.write_bytes(payload[:-1] + b"X")
    assert prefetch(needed_assets(None, "mimi", None, None, {}), download=False)[0].state == "corrupt"


def test_prefetch_cli_exits_1_when_something_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    r = CliRunner().invoke(app, ["prefetch", "--tokenizer", "mulaw,mimi", "--verify-only"])
    assert r.exit_code == 1 and "missing" in r.output and "kyutai/mimi" in r.output
    r = CliRunner().invoke(app, ["prefetch", "--tokenizer", "mulaw", "--verify-only"])
    assert r.exit_code == 0 and "everything needed is cached" in r.output


# ------------------------------------------------------------------------------- --data-dir
def fake_librispeech(root: Path, split: str = "test-clean") -> Path:
    """LibriSpeech's real layout: LibriSpeech/<split>/<spk>/<chapter>/<spk>-<chapter>-NNNN.flac
    with one <spk>-<chapter>.trans.txt per chapter, and SPEAKERS.TXT beside the split."""
    rng = np.random.default_rng(0)
    base = root / "LibriSpeech"
    layout = {"1089": ["134686", "134691"], "121": ["121726"]}
    for spk, chapters in layout.items():
        for chap in chapters:
            folder = base / split / spk / chap
            folder.mkdir(parents=True)
            lines = []
            for i in range(2):
                utt = f"{spk}-{chap}-{i:04d}"
                sf.write(folder / f"{utt}.flac", (0.1 * rng.standard_normal(1600)).astype(np.float32), 16000)
                lines.append(f"{utt} WORDS OF {utt}")
            (folder / f"{spk}-{chap}.trans.txt").write_text("\n".join(lines) + "\n")
    (base / "SPEAKERS.TXT").write_text("; ID|SEX|SUBSET|MINUTES|NAME\n"
                                       f"1089 | M | {split} | 8.0 | A\n121 | F | {split} | 8.0 | B\n"
                                       "14 | F | train-clean-360 | 25.0 | C\n")
    return root


@pytest.fixture
def small_split(monkeypatch):
    from tokbench.data import local_copies

    monkeypatch.setitem(local_copies.LIBRISPEECH_COUNTS, "test-clean", (6, 2))


def test_data_dir_recognises_a_hand_made_librispeech(tmp_path, small_split, monkeypatch):
    from tokbench.data.base import read_folder
    from tokbench.data.local_copies import open_dataset_at

    root = fake_librispeech(tmp_path / "corpora")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    for given in (root, root / "LibriSpeech", root / "LibriSpeech" / "test-clean"):
        ds = open_dataset_at("librispeech-test-clean", data_dir=given)
        assert ds.name == "librispeech-test-clean" and len(ds) == 6 and len(ds.speakers()) == 2
        assert ds.revision == read_folder(root / "LibriSpeech" / "test-clean").revision
        assert "speakers match SPEAKERS.TXT" in ds.info["local_copy"]["checks"]
        assert ds.info["md5"] == "32fa31d27d2e1cad72775fee3f4849a9"
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing written there
    from tokbench.suites.assets import needed_assets, prefetch

    [asset] = prefetch(needed_assets(None, None, None, "librispeech-test-clean", {}, data_dir=root),
                       download=False)
    assert asset.state == "cached" and asset.detail.startswith("local copy recognised")
    monkeypatch.setenv("TOKBENCH_DATA_DIR", str(root))
    assert open_dataset_at("librispeech-test-clean").info["local_copy"]["path"].endswith("test-clean")
    assert open_dataset_at("sample").name == "sample"  # not in that folder: opened as usual


def test_data_dir_rejects_a_copy_that_is_not_the_published_one(tmp_path, small_split):
    from tokbench.data import DatasetError
    from tokbench.data.local_copies import open_dataset_at

    root = fake_librispeech(tmp_path / "c")
    (root / "LibriSpeech/test-clean/121/121726/121-121726-0001.flac").unlink()
    with pytest.raises(DatasetError, match=r"lacks 1 listed file\(s\), first 121-121726-0001.flac"):
        open_dataset_at("librispeech-test-clean", data_dir=root)
    with pytest.raises(DatasetError, match="no LibriSpeech/test-clean folder there"):
        open_dataset_at("librispeech-test-clean", data_dir=tmp_path)
    with pytest.raises(DatasetError, match="only librispeech-test-clean"):
        open_dataset_at("sample", data_dir=root)
    other = fake_librispeech(tmp_path / "d")
    (other / "LibriSpeech/SPEAKERS.TXT").write_text("1089 | M | test-clean | 8 | A\n")
    with pytest.raises(DatasetError, match="speakers differ from the 1 SPEAKERS.TXT lists"):
        open_dataset_at("librispeech-test-clean", data_dir=other)


def test_data_dir_recognises_a_hand_made_libritts_test_b(tmp_path):
    from tokbench.data.libritts import TEST_B_LIST
    from tokbench.data.local_copies import open_dataset_at

    split = tmp_path / "LibriTTS" / "test-clean"
    ids = {x for line in TEST_B_LIST.read_text().splitlines() for x in line.split()}
    tone = (0.1 * np.sin(np.arange(2400) / 5)).astype(np.float32)
    for utt in sorted(ids):
        spk, chap = utt.split("_")[:2]
        folder = split / spk / chap
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{utt}.wav", tone, 24000)
        (folder / f"{utt}.normalized.txt").write_text(f"text of {utt}")
    ds = open_dataset_at("libritts-test-b", data_dir=tmp_path / "LibriTTS")
    assert ds.name == "libritts-test-b" and len(ds) == 500
    assert ds.info["local_copy"]["checks"] == [f"{len(ids)} transcribed utterances"]
    (split / "1089" / "134686" / "1089_134686_000002_000001.normalized.txt").unlink()
    from tokbench.data import DatasetError

    with pytest.raises(DatasetError, match="1 wav files have no .normalized.txt"):
        open_dataset_at("libritts-test-b", data_dir=tmp_path)


def test_cli_run_with_data_dir(tmp_path, small_split):
    root = fake_librispeech(tmp_path / "corpora")
    r = CliRunner().invoke(app, ["run", "--tokenizer", "mulaw", "--task", "recon", "--dataset",
                                 "librispeech-test-clean", "--data-dir", str(root), "--limit", "2",
                                 "--set", "asr=false", "--workers", "0", "--out", str(tmp_path / "o"),
                                 "--no-progress"])
    assert r.exit_code == 0, r.output
    run_dir = next((tmp_path / "o" / "librispeech-test-clean").rglob("run.json")).parent
    assert read_run_json(run_dir)["dataset"]["local_copy"]["checks"]


# ------------------------------------------------------------------------------- processes
def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "TOKBENCH_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


@pytest.mark.slow
def test_suite_through_the_submitit_local_executor(tmp_path, monkeypatch, tiny_mimi):
    suite = tiny_suite(tmp_path / "tiny.yaml", tiny_mimi, reference=False)
    for k, v in _env(tmp_path).items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["suite", "run", str(suite), "--launcher", "submitit-local",
                                 "--out", str(out), "--workers", "0", "--device", "cpu",
                                 "--timeout-min", "20", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "4 runs: 3 done, 1 not available" in r.output and "4 jobs" in r.output
    runs = sorted(p.parent.relative_to(out).parts[2] for p in (out / "sample").rglob("run.json"))
    assert runs == ["identity", "mimi", "mulaw"]
    assert all(read_run_json(p.parent)["status"] == "complete" for p in out.rglob("run.json")
               if ".jobs" not in p.parts)
    again = CliRunner().invoke(app, ["suite", "run", str(suite), "--launcher", "submitit-local",
                                     "--only", "tiny-mimi", "--out", str(out), "--workers", "0",
                                     "--device", "cpu", "--no-progress"])
    assert again.exit_code == 0 and "1 runs: 1 skipped" in again.output


@pytest.mark.slow
def test_a_submitit_job_can_shard_itself_with_torchrun(tmp_path, monkeypatch, tiny_mimi):
    """--nproc 2: the job is `torch.distributed.run --nproc-per-node=2 ... suite run --only`."""
    suite = tiny_suite(tmp_path / "tiny.yaml", tiny_mimi, reference=False)
    for k, v in _env(tmp_path).items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["suite", "run", str(suite), "--launcher", "submitit-local",
                                 "--only", "mulaw", "--nproc", "2", "--out", str(out),
                                 "--workers", "0", "--device", "cpu", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "1 runs: 1 done" in r.output
    [run_dir] = [p.parent for p in (out / "sample").rglob("run.json")]
    assert read_run_json(run_dir)["world_size"] == 2
    assert len(list(run_dir.glob("utterances.rank*.jsonl"))) == 2
    assert len(list(iter_records(run_dir))) == 2  # limit 2 of the suite, split over 2 ranks


def test_a_job_that_dies_fails_its_runs_with_the_log_named(tmp_path):
    from types import SimpleNamespace

    from tokbench.suites.launchers import JobSettings, collect
    from tokbench.suites.matrix import Outcome, write_outcomes

    class Job:
        def __init__(self, job_id, error=None):
            self.job_id, self.error = job_id, error
            self.paths = SimpleNamespace(stderr=tmp_path / f"{job_id}_log.err")

        def result(self):
            if self.error:
                raise self.error

    settings = JobSettings(folder=tmp_path)
    write_outcomes(tmp_path / "outcomes" / "0000.json",
                   [Outcome("mulaw", "mulaw", "recon", "sample", "done", n_records=2)])
    got = collect([Job("11"), Job("12", RuntimeError("Traceback...\nMemoryError: out of memory"))],
                  ["mulaw", "mimi"], settings, ["recon", "bpe"], "sample")
    assert [(o.label, o.task, o.status) for o in got] == [
        ("mulaw", "recon", "done"), ("mimi", "recon", "failed"), ("mimi", "bpe", "failed")]
    assert "job 12 failed (MemoryError: out of memory)" in got[1].detail and "12_log.err" in got[1].detail


def test_slurm_jobs_ask_for_what_was_given(tmp_path, monkeypatch):
    from tokbench.suites.launchers import JobSettings, _executor, job_command

    # submitit's Slurm executor only checks that `srun` is on PATH; nothing is submitted here.
    fake = write(tmp_path / "bin" / "srun", "#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")

    settings = JobSettings(launcher="slurm", folder=tmp_path, partition="gpu", gpus=4, cpus=8,
                           mem_gb=64, timeout_min=90, account="lab")
    executor, nproc = _executor(settings)
    params = executor._executor.parameters
    assert nproc == 4 and params["partition"] == "gpu" and params["gpus_per_node"] == 4
    assert params["ntasks_per_node"] == 1 and params["cpus_per_task"] == 8
    assert params["time"] == 90 and params["account"] == "lab" and params["mem"] == "64GB"
    cmd = job_command(["dates-speech-recon", "--out", "/r"], "mimi", tmp_path / "o.json", nproc)
    assert cmd[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=4"]
    assert cmd[5:] == ["-m", "tokbench.cli", "suite", "run", "dates-speech-recon", "--out", "/r",
                       "--only", "mimi", "--launcher", "local", "--outcomes",
                       str(tmp_path / "o.json"), "--no-progress"]
    assert job_command(["x"], "m", tmp_path / "o.json", 1)[1:3] == ["-m", "tokbench.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _comparable(run_dir: Path) -> dict:
    """Records by key, without what legitimately differs between processes (timings)."""
    out = {}
    for rec in iter_records(run_dir, include_corpus=True):
        metrics = {k: v for k, v in rec["metrics"].items() if not k.startswith("rtf_")}
        out[(rec.get("utterance_id"), json.dumps(rec.get("param")))] = (metrics, rec.get("reasons"))
    return out


@pytest.mark.slow
def test_torchrun_two_gloo_processes_equal_one_process(tmp_path):
    args = ["run", "--tokenizer", "mulaw", "--task", "recon", "--limit", "4", "--batch-size", "2",
            "--set", "asr=false", "--workers", "0", "--device", "cpu", "--no-progress"]
    env = _env(tmp_path)
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nnodes=1",
                          "--nproc-per-node=2", f"--master-port={_free_port()}", "-m", "tokbench.cli",
                          *args, "--out", str(tmp_path / "two")],
                         env=env, capture_output=True, text=True, timeout=900)
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([sys.executable, "-m", "tokbench.cli", *args, "--out", str(tmp_path / "one")],
                         env=env, capture_output=True, text=True, timeout=900)
    assert one.returncode == 0, one.stderr[-3000:]
    [run_two] = [p.parent for p in (tmp_path / "two").rglob("run.json")]
    [run_one] = [p.parent for p in (tmp_path / "one").rglob("run.json")]
    assert run_two.relative_to(tmp_path / "two") == run_one.relative_to(tmp_path / "one")  # same id
    assert sorted(p.name for p in run_two.glob("utterances.rank*.jsonl")) == [
        "utterances.rank0.jsonl", "utterances.rank1.jsonl"]
    assert read_run_json(run_two)["world_size"] == 2 and read_run_json(run_two)["status"] == "complete"
    a, b = _comparable(run_two), _comparable(run_one)
    assert len(b) >= 4 and a.keys() == b.keys()
    for key in b:
        (ma, ra), (mb, rb) = a[key], b[key]
        assert ra == rb and ma.keys() == mb.keys()
        assert {k for k, v in ma.items() if v is None} == {k for k, v in mb.items() if v is None}
        # Sharding changes which utterances share a batch, and batch composition alone changes
        # ESTOI in its last bit (measured in one process: batch size 1 vs 2 vs 4). Nothing more.
        assert {k: v for k, v in ma.items() if v is not None} == pytest.approx(
            {k: v for k, v in mb.items() if v is not None}, rel=1e-12, abs=1e-12)
