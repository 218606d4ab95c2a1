"""--metrics: groups, names, errors; every selectable metric is declared; supplements merge."""

from __future__ import annotations

import pytest

from tokbench.metrics import get_metric
from tokbench.metrics.selection import (
    ALL,
    DEFAULT,
    GROUPS,
    MetricSelectionError,
    lacking,
    resolve_metrics,
)
from tokbench.records import merge_supplements


def test_default_is_the_set_before_selection_existed():
    assert resolve_metrics(None) == resolve_metrics("default") == DEFAULT
    assert set(DEFAULT) == {"pesq_wb", "pesq_nb", "stoi", "estoi", "secs", "gpe", "vde", "ffe",
                            "f0_corr", "mel_l1", "wer", "cer"}


def test_groups_names_and_mixtures():
    assert resolve_metrics("pitch") == GROUPS["pitch"]
    assert resolve_metrics("all") == ALL
    assert resolve_metrics("asr,stoi") == ("stoi", "wer", "cer", "dwer", "dcer")
    assert resolve_metrics(["mos", "secs"]) == ("secs", *GROUPS["mos"])
    # skip Harvest and ASR: signal + speaker only
    chosen = resolve_metrics("signal,speaker")
    assert not set(chosen) & {"gpe", "f0_corr", "wer", "dwer", "mcd"} - set(GROUPS["signal"])


@pytest.mark.parametrize("bad", ["pesq", "wers", "signals"])
def test_unknown_names_are_errors_that_list_the_choices(bad):
    with pytest.raises(MetricSelectionError, match="Groups: signal, pitch"):
        resolve_metrics(bad)


def test_an_empty_selection_is_an_error():
    with pytest.raises(MetricSelectionError, match="selects no metric"):
        resolve_metrics(" , ")


def test_every_selectable_metric_is_declared_with_a_range_and_direction():
    for name in ALL:
        spec = get_metric(name)
        assert spec.direction in ("higher", "lower") and spec.lo is not None and spec.hi is not None


def test_lacking_counts_a_null_metric_as_present():
    record = {"metrics": {"stoi": 0.9, "pesq_wb": None}, "reasons": {"pesq_wb": "too short"}}
    assert lacking(record, ("pesq_wb", "stoi", "si_sdr")) == ("si_sdr",)
    assert lacking(None, ("stoi",)) == ("stoi",)


def test_a_supplement_adds_metrics_and_never_replaces_one():
    record = {"utterance_id": "u", "param": None, "metrics": {"stoi": 0.9},
              "reasons": {}, "extra": {"ratio": {"wer": [1, 10]}}}
    sup = {"utterance_id": "u", "param": None, "metrics": {"stoi": 0.1, "dwer": None},
           "reasons": {"dwer": "no speech"}, "extra": {"ratio": {"dcer": [2, 30]}, "x": 1}}
    merged = merge_supplements(record, [sup])
    assert merged["metrics"] == {"stoi": 0.9, "dwer": None}
    assert merged["reasons"] == {"dwer": "no speech"}
    assert merged["extra"] == {"ratio": {"wer": [1, 10], "dcer": [2, 30]}, "x": 1}
    assert record["metrics"] == {"stoi": 0.9}  # the input is not modified


def test_a_transient_null_is_not_stored_as_a_supplement(tmp_path):
    """A metric null because its model is not available yet stays lacking (computed later)."""
    from tokbench.records import make_record
    from tokbench.results.store import RunSpec, RunStore, iter_records

    spec = RunSpec(dataset="d", dataset_revision="r", task="score", task_version="1",
                   task_options={}, tokenizer="t", variant="v", tokenizer_options={},
                   tokenizer_revision=None, protocol={"version": "x"})
    store = RunStore(tmp_path, spec).open({})
    assert store.append(make_record("u", {"stoi": 0.5}))
    sup = make_record("u", {"stoi": 0.1, "si_sdr": 3.0, "spk_sim_wavlm": None},
                      {"spk_sim_wavlm": "model unavailable"}, extra={"transient": ["spk_sim_wavlm"]})
    assert store.supplement(sup)
    assert store.recorded_metrics("u") == {"stoi", "si_sdr"}
    again = RunStore(tmp_path, spec).open({})
    assert again.recorded_metrics("u") == {"stoi", "si_sdr"}
    [rec] = list(iter_records(again.path))
    assert rec["metrics"] == {"stoi": 0.5, "si_sdr": 3.0}
    assert not again.supplement(make_record("u", {"stoi": 0.9}))  # nothing new
    with pytest.raises(KeyError, match="append it instead"):
        again.supplement(make_record("other", {"stoi": 0.9}))
