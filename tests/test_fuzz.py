"""The fuzz corpus (scripts/make_fuzz_corpus.py) through `tokbench run` and `tokbench score`:
every file gets a record (scored, or null with a reason) or a named error; no crash, no
sentinel, no value outside a metric's declared range."""

import importlib.util
import math
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tokbench.cli import app
from tokbench.metrics import get_metric
from tokbench.registry import UnknownNameError
from tokbench.results.store import find_runs, iter_records

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "make_fuzz_corpus.py"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("make_fuzz_corpus", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    root = tmp_path_factory.mktemp("fuzz")
    cases = module.make_corpus(root / "in")
    return root, cases


def _check_records(out: Path, names: set[str]) -> dict[str, dict]:
    [run] = find_runs(out)
    records = {r["utterance_id"]: r for r in iter_records(run) if r.get("utterance_id")}
    assert set(records) == names, set(records) ^ names
    for uid, r in records.items():
        for metric, value in r["metrics"].items():
            if value is None:
                assert r["reasons"].get(metric), (uid, metric)  # every null says why
                continue
            assert isinstance(value, (int, float)) and math.isfinite(value), (uid, metric, value)
            try:
                spec = get_metric(metric)
            except UnknownNameError:
                continue
            lo, hi = spec.valid_range
            if lo is not None:
                assert value >= lo - 1e-6, (uid, metric, value)
            if hi is not None:
                assert value <= hi + 1e-6, (uid, metric, value)
    return records


@pytest.mark.slow
def test_every_bad_input_becomes_a_record_in_run(corpus, tmp_path):
    root, cases = corpus
    r = CliRunner().invoke(app, ["run", "--tokenizer", "mulaw", "--task", "recon", "--dataset",
                                 str(root / "in"), "--out", str(tmp_path), "--workers", "1",
                                 "--set", "asr=false", "--no-progress"])
    assert r.exit_code == 0, r.output
    records = _check_records(tmp_path, {Path(n).stem for n in cases})
    assert records["ok"]["metrics"]["pesq_wb"] is not None
    assert records["silence"]["metrics"]["pesq_wb"] is None
    for bad in ("zero_bytes", "not_audio", "truncated_header", "nan", "inf", "corrupt"):
        assert all(v is None for v in records[bad]["metrics"].values()), bad
    assert "failed" in r.output  # the failure account names them


@pytest.mark.slow
def test_every_bad_pair_becomes_a_record_in_score(corpus, tmp_path):
    root, cases = corpus
    hyp = tmp_path / "hyp"
    shutil.copytree(root / "in", hyp)
    shutil.copyfile(root / "in" / "ok.wav", hyp / "silence.wav")  # a good output for a silent ref
    shutil.copyfile(root / "in" / "not_audio.wav", hyp / "ok.wav")  # a broken output
    r = CliRunner().invoke(app, ["score", "--ref", str(root / "in"), "--hyp", str(hyp), "--out",
                                 str(tmp_path / "out"), "--no-asr", "--workers", "1"])
    assert r.exit_code == 0, r.output
    records = _check_records(tmp_path / "out", {Path(n).stem for n in cases})
    assert records["ok"]["metrics"]["pesq_wb"] is None
    assert "output" in records["ok"]["reasons"]["pesq_wb"]
