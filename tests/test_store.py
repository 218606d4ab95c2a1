import json
import math

import numpy as np
import pytest

import tokbench
from tokbench.records import make_record
from tokbench.results import MixedProtocolError, compare, load_results, summarize
from tokbench.results.store import RunSpec, RunStore, iter_records


def spec(variant="mulaw", protocol=None, task_options=None, dataset="sample"):
    return RunSpec(dataset=dataset, dataset_revision="r1", task="recon", task_version="1",
                   task_options=task_options or {}, tokenizer="mulaw", variant=variant,
                   tokenizer_options={"bits": 8}, tokenizer_revision=None,
                   protocol=protocol or {"version": "1"}, kind="acoustic")


def test_make_record_turns_nan_into_null_with_reason():
    r = make_record("u1", {"a": 1.0, "b": float("nan"), "c": None, "d": float("inf")},
                    reasons={"c": "silence"})
    assert r["metrics"] == {"a": 1.0, "b": None, "c": None, "d": None}
    assert r["reasons"]["c"] == "silence" and "not finite" in r["reasons"]["b"]
    assert "NaN" not in json.dumps(r) and "Infinity" not in json.dumps(r)
    with pytest.raises(ValueError):
        make_record("u1", {}, extra={"x": float("nan")})


def test_config_hash_separates_configurations(tmp_path):
    assert spec().run_id == spec().run_id
    assert spec().run_id != spec(task_options={"keep_audio": 2}).run_id
    assert spec().run_id != spec(protocol={"version": "2"}).run_id
    assert spec().run_id.startswith("sample/recon/mulaw/")


def test_append_resume_and_torn_tail(tmp_path):
    store = RunStore(tmp_path, spec()).open({"note": "first"})
    assert store.append(make_record("u1", {"x": 1.0}))
    assert store.append(make_record("u2", {"x": 2.0}))
    assert not store.append(make_record("u1", {"x": 9.0}))  # duplicate key refused
    # Simulate a crash in the middle of writing a third record.
    with store.records_path.open("a") as fh:
        fh.write('{"utterance_id": "u3", "metr')
    again = RunStore(tmp_path, spec()).open({"note": "second"})
    assert again.path == store.path
    assert again.is_done("u1") and again.is_done("u2") and not again.is_done("u3")
    assert again.append(make_record("u3", {"x": 3.0}))
    ids = [r["utterance_id"] for r in iter_records(store.path)]
    assert ids == ["u1", "u2", "u3"]
    info = json.loads((store.path / "run.json").read_text())
    assert info["attempts"] == 2 and info["note"] == "second" and info["status"] == "running"


def test_two_shards_read_back_as_one_run(tmp_path):
    s0 = RunStore(tmp_path, spec(), rank=0, world_size=2).open({})
    s1 = RunStore(tmp_path, spec(), rank=1, world_size=2).open({})
    s0.append(make_record("a", {"x": 1.0}))
    s1.append(make_record("b", {"x": 3.0}))
    assert {p.name for p in s0.path.glob("utterances.rank*.jsonl")} == {
        "utterances.rank0.jsonl", "utterances.rank1.jsonl"}
    df = load_results(tmp_path)
    assert sorted(df["utterance_id"]) == ["a", "b"] and df["run_id"].nunique() == 1
    # A later single-process resume sees both shards as done.
    s = RunStore(tmp_path, spec()).open({})
    assert s.is_done("a") and s.is_done("b")


def _write_known_run(tmp_path, variant, values, wer_counts=None, protocol=None):
    store = RunStore(tmp_path, spec(variant, protocol)).open({})
    for i, v in enumerate(values):
        metrics = {"pesq_wb": v}
        extra = {}
        if wer_counts:
            e, n = wer_counts[i]
            metrics["wer"] = 100 * e / n
            extra = {"ratio": {"wer": [e, n]}}
        store.append(make_record(f"u{i}", metrics, extra=extra))
    store.append(make_record("bad", {"pesq_wb": None, "wer": None}, reasons={"pesq_wb": "silence", "wer": "no text"}))
    store.write_corpus([make_record(None, {"bitrate_entropy": 1234.5})])
    return store


def test_load_results_and_summarize_known_answers(tmp_path):
    _write_known_run(tmp_path, "mulaw", [1.0, 2.0, 3.0, 4.0], wer_counts=[(1, 10), (0, 10), (3, 20), (0, 10)])
    df = tokbench.load_results(tmp_path)
    for col in ["run_id", "tokenizer", "variant", "task", "dataset", "utterance_id", "metric",
                "value", "param", "protocol_id"]:
        assert col in df.columns
    bad = df[(df.utterance_id == "bad") & (df.metric == "pesq_wb")].iloc[0]
    assert math.isnan(bad.value) and bad.reason == "silence"
    s = tokbench.summarize(df).set_index("metric")
    assert s.loc["pesq_wb", "mean"] == pytest.approx(2.5)
    assert s.loc["pesq_wb", "n"] == 4 and s.loc["pesq_wb", "n_total"] == 5
    assert 1.0 <= s.loc["pesq_wb", "ci_low"] < 2.5 < s.loc["pesq_wb", "ci_high"] <= 4.0
    # corpus WER is total edits / total words, not the mean of utterance WERs (11.25)
    assert s.loc["wer", "mean"] == pytest.approx(100 * 4 / 50)
    assert s.loc["bitrate_entropy", "mean"] == 1234.5 and math.isnan(s.loc["bitrate_entropy", "ci_low"])
    again = tokbench.summarize(df).set_index("metric")
    assert again.loc["pesq_wb", "ci_low"] == s.loc["pesq_wb", "ci_low"]  # fixed seed


def test_summarize_refuses_mixed_protocols(tmp_path):
    _write_known_run(tmp_path, "a", [1.0, 2.0], protocol={"version": "1"})
    _write_known_run(tmp_path, "b", [1.0, 2.0], protocol={"version": "2"})
    df = load_results(tmp_path)
    with pytest.raises(MixedProtocolError):
        summarize(df)
    one = df[df.protocol_id == df.protocol_id.iloc[0]]
    assert len(summarize(one)) > 0


def test_compare_paired(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.uniform(2, 3.5, size=40)  # plus noise, still valid PESQ values
    _write_known_run(tmp_path, "a", list(base + 0.5))
    _write_known_run(tmp_path, "b", list(base))
    c = compare(load_results(tmp_path), "a", "b", "pesq_wb")
    assert c["n"] == 40 and c["mean_diff"] == pytest.approx(0.5)
    assert c["ci_low"] == pytest.approx(0.5) and c["p_value"] < 0.01
    _write_known_run(tmp_path / "x", "c", list(base + rng.normal(0, 0.3, 40)))
    _write_known_run(tmp_path / "x", "d", list(base + rng.normal(0, 0.3, 40)))
    c2 = compare(load_results(tmp_path / "x"), "c", "d", "pesq_wb")
    assert c2["ci_low"] < 0 < c2["ci_high"] and c2["p_value"] > 0.05


def test_empty_results_give_empty_frames(tmp_path):
    df = load_results(tmp_path)
    assert df.empty and "metric" in df.columns
    assert summarize(df).empty


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    from tokbench.io.files import atomic_write, atomic_write_json

    target = tmp_path / "run.json"
    atomic_write_json(target, {"status": "running"})

    def broken(fh):
        fh.write(b'{"status": "comp')
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, broken)
    assert json.loads(target.read_text()) == {"status": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temporary file left behind
    with pytest.raises(ValueError):
        atomic_write_json(target, {"x": float("nan")})  # NaN is not JSON: refused, file untouched
    assert json.loads(target.read_text()) == {"status": "running"}
