"""Issue 13: records validated on load, duplicate runs loaded once, coverage-aware tables."""

import json
import shutil

import numpy as np
import pytest

from tests.report_fixtures import PROTOCOL_A, make_meta, run_spec, write_run
from tokbench.records import make_record
from tokbench.report import build_tables, render
from tokbench.report.tables import PARTIAL_MARK
from tokbench.results import compare, load_results, runs_table, summarize, summary_records
from tokbench.results.store import RunStore
from tokbench.results.validate import RecordError

MULAW = make_meta("mulaw", "acoustic", 16000.0, (256,))
PCM = make_meta("identity", "reference", 16000.0, (65536,))
OTHER = make_meta("other", "acoustic", 50.0, (1024,))


def _edit_line(run_path, n, change):
    shard = run_path / "utterances.rank0.jsonl"
    lines = shard.read_text().splitlines()
    record = json.loads(lines[n])
    change(record)
    lines[n] = record if isinstance(record, str) else json.dumps(record)
    shard.write_text("\n".join(lines) + "\n")
    return shard


@pytest.mark.parametrize("damage, message", [
    (lambda r: r["metrics"].update(pesq_wb=99.0), "pesq_wb = 99 is outside its valid range"),
    (lambda r: r["metrics"].update(pesq_wb="4.5"), "pesq_wb = '4.5' is a str, not a number"),
    (lambda r: r.update(utterance_id=7), "utterance_id must be a non-empty string or null"),
])
def test_damaged_records_flag_the_run_and_the_rest_loads(tmp_path, damage, message):
    bad = write_run(tmp_path, MULAW, "mulaw", {"pesq_wb": [3.0, 3.5, 4.0]})
    write_run(tmp_path, OTHER, "other", {"pesq_wb": [2.0, 2.5, 3.0]})
    shard = _edit_line(bad, 1, damage)
    notes = []
    df = load_results(tmp_path, log=notes.append)
    assert set(df["variant"]) == {"other"}  # the damaged run is left out, the rest loads
    runs = runs_table(tmp_path).set_index("variant")
    assert runs.loc["mulaw", "status"] == "invalid"
    assert f"{shard}:2: " in runs.loc["mulaw", "status_reason"]
    assert message in runs.loc["mulaw", "status_reason"]
    assert any(f"{shard}:2" in n for n in notes)
    table = build_tables(df, runs_table(tmp_path))[0]
    row = next(r for r in table.rows if r.variant == "mulaw")
    assert not row.cells and row.status == "invalid"
    assert message.split(" ", 2)[2] in render([table], "md")  # the reason shows in the table


def test_non_finite_json_and_conflicting_duplicates_are_errors(tmp_path):
    run = write_run(tmp_path, MULAW, "mulaw", {"pesq_wb": [3.0, 3.5]})
    shard = run / "utterances.rank0.jsonl"
    text = shard.read_text().replace('"pesq_wb": 3.5', '"pesq_wb": NaN')
    shard.write_text(text)
    reason = runs_table(tmp_path).iloc[0]["status_reason"]
    assert f"{shard}:2: not a valid JSON record (non-finite number NaN" in reason
    shard.write_text(text.replace("NaN", "3.5"))
    (run / "utterances.rank1.jsonl").write_text(json.dumps(make_record("utt0", {"pesq_wb": 1.5})) + "\n")
    reason = runs_table(tmp_path).iloc[0]["status_reason"]
    assert "utterances.rank1.jsonl:1: conflicts with the record of the same utterance" in reason
    assert f"{shard}:1" in reason
    # an identical copy of a record is not a conflict
    (run / "utterances.rank1.jsonl").write_text(shard.read_text().splitlines()[0] + "\n")
    assert runs_table(tmp_path).iloc[0]["status"] == "complete"


def test_unknown_utterances_are_errors_and_resume_refuses_damage(tmp_path):
    spec = run_spec(MULAW, "mulaw", {"version": "1"})
    store = RunStore(tmp_path, spec).open({}, utterance_ids=["a", "b"])
    store.append(make_record("a", {"pesq_wb": 3.0}))
    store.append(make_record("zz", {"pesq_wb": 3.0}))
    store.finish({"run_id": spec.run_id, "metrics": []})
    assert "utterance 'zz' is not in the run's dataset selection" in runs_table(tmp_path).iloc[0]["status_reason"]
    with pytest.raises(RecordError, match=r"utterances.rank0.jsonl:2: utterance 'zz'"):
        RunStore(tmp_path, spec).open({}, utterance_ids=["a", "b"])


def test_a_torn_or_truncated_file_in_a_complete_run_marks_it_incomplete(tmp_path):
    run = write_run(tmp_path, MULAW, "mulaw", {"pesq_wb": [3.0, 3.5, 4.0]})
    # the summary a finished run writes (n_total = 3), as the runner writes it
    info = json.loads((run / "run.json").read_text())
    (run / "summary.json").write_text(json.dumps(
        {"run_id": info["run_id"], "metrics": summary_records(summarize(load_results(run)))}))
    shard = run / "utterances.rank0.jsonl"
    full = shard.read_bytes()
    shard.write_bytes(full[:-20])  # torn in the middle of the last record
    row = runs_table(tmp_path).iloc[0]
    assert row["status"] == "incomplete" and "torn line" in row["status_reason"]
    shard.write_bytes(b"".join(full.splitlines(keepends=True)[:2]))  # cut at a line boundary
    row = runs_table(tmp_path).iloc[0]
    assert row["status"] == "incomplete" and "has 2 records but the run's summary counted 3" in row["status_reason"]
    table = build_tables(load_results(tmp_path), runs_table(tmp_path))[0]
    assert "incomplete" in render([table], "md")


def test_a_run_found_twice_is_one_run(tmp_path):
    """results/demo nested in results/: the same run at two paths is never pooled."""
    run = write_run(tmp_path / "demo", MULAW, "mulaw", {"pesq_wb": [3.0, 3.5, 4.0, 4.5]})
    copy = tmp_path / run.relative_to(tmp_path / "demo")
    shutil.copytree(run, copy)
    notes = []
    df = load_results(tmp_path, log=notes.append)
    assert len(df[df["metric"] == "pesq_wb"]) == 4
    assert df["run_path"].nunique() == 1
    assert len(notes) == 1 and "is stored at 2 paths" in notes[0] and "never pooled" in notes[0]
    assert df.attrs["notes"] == notes
    runs = runs_table(tmp_path)
    assert len(runs) == 1 and runs.iloc[0]["copies"]
    s = summarize(df).set_index("metric")
    assert s.loc["pesq_wb", "n"] == 4
    # a copy with fewer records loses to the complete one
    lines = (copy / "utterances.rank0.jsonl").read_text().splitlines()
    (copy / "utterances.rank0.jsonl").write_text(lines[0] + "\n")
    info = json.loads((copy / "run.json").read_text())
    info["status"] = "running"
    (copy / "run.json").write_text(json.dumps(info))
    df = load_results(tmp_path, log=None)
    assert df["run_path"].unique().tolist() == [str(run)]


def test_partial_coverage_excludes_a_row_from_best(tmp_path):
    # "other" is best on the mean, but only because two hard utterances were not computable
    write_run(tmp_path, MULAW, "mulaw", {"pesq_wb": [2.0, 2.0, 4.0, 4.0]})
    write_run(tmp_path, OTHER, "other", {"pesq_wb": [None, None, 4.2, 4.2]})
    write_run(tmp_path, make_meta("third", "acoustic", 50.0, (512,)), "third",
              {"pesq_wb": [1.5, 1.5, 3.5, 3.5]})
    table = build_tables(load_results(tmp_path), runs_table(tmp_path))[0]
    cells = {r.variant: r.cells["pesq_wb"] for r in table.rows}
    assert cells["other"].mean > cells["mulaw"].mean
    assert not cells["other"].best and cells["other"].partial
    assert cells["mulaw"].best and not cells["mulaw"].partial
    assert (cells["other"].n, cells["other"].n_total) == (2, 4)
    for fmt in ("md", "table", "latex"):
        text = render([table], fmt)
        assert ("n=2/4" + PARTIAL_MARK in text) or ("n=2/4$^\\dagger$" in text), fmt
        assert "partial coverage" in text or "dagger" in text, fmt
    lines = render([table], "csv").splitlines()
    head = lines[0].split(",")
    other = next(line.split(",") for line in lines if ",other," in line)
    assert other[head.index("partial")] == "1" and other[head.index("pesq_wb_partial")] == "1"
    # summarize(common=True): every run averaged over the utterances all of them scored
    common = summarize(load_results(tmp_path), ["pesq_wb"], common=True).set_index("variant")
    assert common.loc["mulaw", "mean"] == pytest.approx(4.0)
    assert common.loc["third", "mean"] == pytest.approx(3.5)
    assert (common["n"] == 2).all()


def test_limit_run_is_flagged_against_the_full_dataset(tmp_path):
    spec = run_spec(MULAW, "mulaw", PROTOCOL_A)
    store = RunStore(tmp_path, spec).open({"dataset": {"name": "sample", "n_utterances": 2,
                                                       "n_utterances_full": 4},
                                           "tokenizer_meta": MULAW.to_dict()})
    for u in ("utt0", "utt1"):
        store.append(make_record(u, {"pesq_wb": 4.0}))
    store.finish({"run_id": spec.run_id, "metrics": []})
    write_run(tmp_path, OTHER, "other", {"pesq_wb": [2.0, 2.0, 2.0, 2.0]})
    write_run(tmp_path, make_meta("third", "acoustic", 50.0, (512,)), "third",
              {"pesq_wb": [1.0, 1.0, 1.0, 1.0]})
    table = build_tables(load_results(tmp_path), runs_table(tmp_path))[0]
    rows = {r.variant: r for r in table.rows}
    assert rows["mulaw"].partial and "2 of the dataset's 4" in rows["mulaw"].coverage_note
    assert not rows["mulaw"].cells["pesq_wb"].best and rows["other"].cells["pesq_wb"].best


def test_compare_pairs_shared_utterances_and_says_how_many(tmp_path):
    rng = np.random.default_rng(0)
    base = list(rng.uniform(2, 3, 10))
    write_run(tmp_path, MULAW, "mulaw", {"pesq_wb": [b + 0.5 for b in base]})
    write_run(tmp_path, OTHER, "other", {"pesq_wb": [None, None, *base[2:]]})
    c = compare(load_results(tmp_path), "mulaw", "other", "pesq_wb")
    assert (c["n"], c["n_a"], c["n_b"]) == (8, 10, 8)
    assert c["mean_diff"] == pytest.approx(0.5) and c["n_boot"] == 10_000


def test_a_ci_over_one_utterance_is_undefined(tmp_path):
    write_run(tmp_path, MULAW, "mulaw", {"pesq_wb": [3.0]})
    s = summarize(load_results(tmp_path)).set_index("metric")
    assert s.loc["pesq_wb", "n"] == 1 and np.isnan(s.loc["pesq_wb", "ci_low"])
    assert np.isnan(s.loc["pesq_wb", "ci_high"])


def test_same_dataset_name_with_two_revisions_is_two_tables(tmp_path):
    write_run(tmp_path, MULAW, "mulaw", {"pesq_wb": [3.0, 3.0]})
    other = write_run(tmp_path / "b", MULAW, "mulaw-noise", {"pesq_wb": [4.5, 4.5]})
    info = json.loads((other / "run.json").read_text())
    info["config"]["dataset_revision"] = "rev2"
    (other / "run.json").write_text(json.dumps(info))
    tables = build_tables(load_results(tmp_path), runs_table(tmp_path))
    assert len(tables) == 2 and {t.dataset_revision for t in tables} == {"rev1", "rev2"}
    assert all("revision" in t.title for t in tables)
    assert not any(c.best for t in tables for r in t.rows for c in r.cells.values())
