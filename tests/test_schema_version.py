"""schema_version in run.json and in every record: written, read back, refused when newer."""

import json

import pytest
from typer.testing import CliRunner

from tokbench.cli import app
from tokbench.records import SCHEMA_VERSION, make_record
from tokbench.results import load_results
from tokbench.results.load import runs_table
from tokbench.results.store import RunSpec, RunStore, iter_records, read_run_json
from tokbench.results.validate import RecordError, SchemaVersionError, check_run_records


def spec():
    return RunSpec(dataset="sample", dataset_revision="r1", task="recon", task_version="1",
                   task_options={}, tokenizer="mulaw", variant="mulaw",
                   tokenizer_options={"bits": 8}, tokenizer_revision=None,
                   protocol={"version": "1"}, kind="acoustic")


def _finished_run(root):
    store = RunStore(root, spec()).open({"note": "x"})
    store.append(make_record("u1", {"x": 1.0}))
    # a record a task built by hand (not through make_record) is stamped by the store
    store.append({"utterance_id": "u2", "param": None, "metrics": {"x": 2.0}, "reasons": {},
                  "extra": {}})
    store.write_corpus([make_record(None, {"n": 2.0})])
    store.finish({"metrics": []})
    return store.path


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_current_version_is_written_everywhere(tmp_path):
    assert SCHEMA_VERSION == 2
    assert make_record("u", {"x": 1.0})["schema_version"] == 2
    run = _finished_run(tmp_path)
    assert json.loads((run / "run.json").read_text())["schema_version"] == 2
    assert [r["schema_version"] for r in _lines(run / "utterances.rank0.jsonl")] == [2, 2]
    assert [r["schema_version"] for r in _lines(run / "corpus.jsonl")] == [2]
    assert runs_table(tmp_path)["schema_version"].tolist() == [2]


def _strip_versions(run):
    """Make ``run`` look as written before the field existed."""
    info = json.loads((run / "run.json").read_text())
    del info["schema_version"]
    (run / "run.json").write_text(json.dumps(info))
    for name in ("utterances.rank0.jsonl", "corpus.jsonl"):
        rows = _lines(run / name)
        for r in rows:
            r.pop("schema_version")
        (run / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_run_without_the_field_reads_as_version_1_and_resumes(tmp_path):
    run = _finished_run(tmp_path)
    _strip_versions(run)
    assert read_run_json(run)["schema_version"] == 1
    assert runs_table(tmp_path)["schema_version"].tolist() == [1]
    df = load_results(tmp_path)
    assert sorted(df[df.metric == "x"]["value"]) == [1.0, 2.0]
    assert [r["utterance_id"] for r in iter_records(run)] == ["u1", "u2"]
    # resuming an old run keeps its records and writes the current version from then on
    store = RunStore(tmp_path, spec()).open({"note": "again"})
    assert store.is_done("u1") and store.append(make_record("u3", {"x": 3.0}))
    assert json.loads((run / "run.json").read_text())["schema_version"] == 2
    assert [r.get("schema_version", 1) for r in _lines(run / "utterances.rank0.jsonl")] == [1, 1, 2]


def test_newer_run_json_is_refused_with_an_upgrade_hint(tmp_path):
    run = _finished_run(tmp_path)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(SchemaVersionError) as exc:
        read_run_json(run)
    message = str(exc.value)
    assert str(run / "run.json") in message and "upgrade tokbench" in message
    # resuming it stops with that error (a RecordError: the CLI prints it without a traceback)
    assert issubclass(SchemaVersionError, RecordError)
    with pytest.raises(SchemaVersionError):
        RunStore(tmp_path, spec()).open({})
    # reading a results tree leaves that run out, says why, and goes on with the others
    df = load_results(tmp_path, log=None)
    assert df.empty and any("upgrade tokbench" in n for n in df.attrs["notes"])
    table = runs_table(tmp_path)
    assert table["status"].tolist() == ["invalid"] and "newer tokbench" in table["status_reason"][0]


def test_newer_record_is_refused_naming_file_and_line(tmp_path):
    run = _finished_run(tmp_path)
    shard = run / "utterances.rank0.jsonl"
    rows = _lines(shard)
    rows[1]["schema_version"] = SCHEMA_VERSION + 1
    shard.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(SchemaVersionError, match=rf"{shard}:2 was written by a newer tokbench"):
        check_run_records(run)
    assert "upgrade tokbench" in runs_table(tmp_path)["status_reason"][0]


def test_malformed_version_is_a_damaged_record(tmp_path):
    run = _finished_run(tmp_path)
    shard = run / "utterances.rank0.jsonl"
    rows = _lines(shard)
    rows[0]["schema_version"] = "two"
    shard.write_text("".join(json.dumps(r) + "\n" for r in rows))
    checked = check_run_records(run)
    assert not checked.ok and "schema_version must be a positive integer" in checked.errors[0]


def test_cli_report_on_a_newer_run_says_upgrade_without_traceback(tmp_path):
    run = _finished_run(tmp_path)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "schema_version": SCHEMA_VERSION + 7}))
    res = CliRunner().invoke(app, ["report", "--results", str(tmp_path)])
    out = res.output + (res.stderr if res.stderr_bytes is not None else "")
    assert "Traceback" not in out
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert "upgrade tokbench" in out, out


def test_cli_score_into_a_newer_run_says_upgrade_without_traceback(tmp_path, monkeypatch):
    import numpy as np
    import soundfile as sf

    ref, hyp = tmp_path / "ref", tmp_path / "hyp"
    ref.mkdir()
    hyp.mkdir()
    x = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    sf.write(ref / "a.wav", x, 16000)
    sf.write(hyp / "a.wav", x, 16000)
    monkeypatch.setenv("TOKBENCH_CACHE", str(tmp_path / "cache"))
    args = ["score", "--ref", str(ref), "--hyp", str(hyp), "--out", str(tmp_path / "out"),
            "--no-asr", "--workers", "0", "--metrics", "stoi"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    (run,) = [p.parent for p in (tmp_path / "out").rglob("run.json")]
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "schema_version": SCHEMA_VERSION + 1}))
    again = CliRunner().invoke(app, args)
    out = again.output + (again.stderr if again.stderr_bytes is not None else "")
    assert again.exit_code != 0 and isinstance(again.exception, SystemExit), out
    assert "Traceback" not in out and "upgrade tokbench" in out, out
