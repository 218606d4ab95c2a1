"""The metric kit: a metric is one module; the registry, the scorer, selection, protocol, preload,
prefetch and the listing read its declaration; every registered metric passes check_metric."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tokbench.metrics import MetricSpec, Needs, all_metrics, declaration_of, declarations
from tokbench.metrics.kit import make_metric
from tokbench.testing import MetricContractError, check_metric

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "tests" / "plugins" / "crest_factor_metric.py"


@pytest.mark.parametrize("name", [m.name for m in all_metrics()])
def test_every_registered_metric_passes_check_metric(name):
    report = check_metric(name)
    assert "declaration" in report.checked
    if declaration_of(name).where != "recorded":
        assert report.values.keys() == {"identity", "degraded", "silent output", "constant output",
                                        "very short", "clipped output", "NaN output"}
        # a null always says why
        assert all(report.reasons.get(c) for c, v in report.values.items() if v is None)


def test_check_metric_checks_what_it_says():
    # identity scores perfectly, and the agreement with pesq's own call is checked
    report = check_metric("pesq_wb")
    assert report.values["identity"] == pytest.approx(4.644, abs=1e-3)
    assert {"direction", "agrees with a direct library call", "deterministic"} <= set(report.checked)
    assert report.values["NaN output"] is None and "NaN" in report.reasons["NaN output"]


def _made(compute, direction="lower", lo=0.0, hi=10.0, **kw):
    return make_metric(MetricSpec("toy_distance", "a toy", direction, "", lo=lo, hi=hi, **kw),
                       where="worker", compute=compute, needs=Needs(reference=True),
                       citation="a test", implementation="numpy", module="tests.toy")


def _distance(x):
    return float(np.mean(np.abs(np.asarray(x.output, np.float64) - x.reference)))


def test_check_metric_refuses_a_metric_that_raises_on_an_edge_input():
    def raises_on_nan(x):
        if np.isnan(x.output).any():
            raise ValueError("boom")
        return _distance(x)

    with pytest.raises(MetricContractError, match="raised ValueError on the NaN output input"):
        check_metric("toy_distance", declaration=_made(raises_on_nan))


def test_check_metric_refuses_out_of_range_values_and_inverted_directions():
    def finite(x):
        if not np.isfinite(x.output).all():
            from tokbench.metrics import NotComputable

            raise NotComputable("NaN")
        return _distance(x)

    with pytest.raises(MetricContractError, match="outside its valid range"):
        check_metric("toy_distance", declaration=_made(lambda x: finite(x) + 20.0, valid_hi=12.0))
    with pytest.raises(MetricContractError, match="does not score better"):
        check_metric("toy_distance", declaration=_made(finite, direction="higher"))
    assert "direction" in check_metric("toy_distance", declaration=_made(finite)).checked


def test_check_metric_refuses_bad_declarations():
    with pytest.raises(MetricContractError, match="chart range"):
        check_metric("toy_distance", declaration=_made(_distance, lo=5.0, hi=1.0))
    with pytest.raises(MetricContractError, match="default metric must belong to a group"):
        check_metric("toy_distance", declaration=_made(_distance, default=True))


def test_the_protocol_id_changes_only_deliberately():
    """Every run's protocol id is a hash of the engine's and the declared metrics' settings. A
    new metric with protocol settings changes the id of every run (even of runs without it): do
    it deliberately (bump PROTOCOL_VERSION in tokbench/protocol.py and this value)."""
    from tokbench.protocol import protocol_id, protocol_settings

    assert protocol_id(protocol_settings()) == "a2b7ff5bdf"


def test_declarations_assemble_selection_preload_protocol_and_assets():
    from tokbench.metrics.selection import default_selection, groups, reference_audio_metrics
    from tokbench.protocol import protocol_settings
    from tokbench.run.scoring import preload_for, worker_metrics
    from tokbench.suites.assets import _metric_assets

    assert default_selection() == ("pesq_wb", "pesq_nb", "stoi", "estoi", "mel_l1", "gpe", "vde",
                                   "ffe", "f0_corr", "secs", "wer", "cer")
    assert groups()["signal"][:2] == ("pesq_wb", "pesq_nb") and "si_snr" in groups()["signal"]
    assert "wer" not in reference_audio_metrics() and "dwer" in reference_audio_metrics()
    assert "dnsmos_sig" not in reference_audio_metrics()
    assert "wer" not in worker_metrics() and "pesq_wb" in worker_metrics()
    # workers preload what the worker computations declare; nothing for model metrics only
    assert {"pyworld", "pesq", "resemblyzer", "tokbench.metrics.signal"} <= set(preload_for(("gpe",)))
    assert preload_for(("utmos",)) == ()
    assert protocol_settings()["pesq"]["max_seconds"] == 200.0
    # prefetch lists the weights the declarations name
    sources = [a.source for a in _metric_assets("utmos,spk_sim_wavlm,pesq_wb", "test")]
    assert any("utmos22" in s for s in sources) and any("wavlm-base-plus-sv" in s for s in sources)
    assert len(sources) == 2


def test_every_declaration_comes_from_one_module_and_tasks_declare_their_own():
    modules = {d.module for d in declarations()}
    assert "tokbench.tasks.bpe.metrics" in modules and "tokbench.tasks.vc.metrics" in modules
    assert declaration_of("bpe_reduction").module == "tokbench.tasks.bpe.metrics"
    # the engine's metric package declares none of the tasks' metrics
    assert not any(d.module.startswith("tokbench.metrics.") and
                   any(n.startswith(("bpe_", "probe_", "ued", "lm_")) for n in d.names)
                   for d in declarations())


def test_listing_metrics_and_describing_each():
    from tokbench.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["list", "metrics"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    for spec in all_metrics():
        assert spec.name in result.output
    for spec in all_metrics():
        result = runner.invoke(app, ["list", "metrics", "--describe", spec.name],
                               env={"COLUMNS": "400"})
        assert result.exit_code == 0 and "Traceback" not in result.output, result.output
        for field in ("measures", "better", "valid values", "runs on", "declared in"):
            assert field in result.output
    result = runner.invoke(app, ["list", "metrics", "--describe", "pesq"])
    assert result.exit_code == 2 and "did you mean" in result.output


def test_metric_modules_are_cheap_to_import():
    code = ("import sys; from tokbench.metrics import all_metrics; all_metrics(); "
            "heavy = {'torch', 'pesq', 'pystoi', 'pyworld', 'librosa', 'onnxruntime', "
            "'transformers', 'whisper', 'resemblyzer', 'pandas'} & set(sys.modules); "
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.slow
def test_a_metric_of_ones_own_is_one_module(tmp_path):
    """A metric in one file of the user's, with no edit anywhere else: listed, described,
    selected with --metrics, computed by the metric workers, in the records and the protocol."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKBENCH_CACHE": str(tmp_path / "cache")}
    tokbench = [sys.executable, "-m", "tokbench.cli"]
    listed = subprocess.run([*tokbench, "list", "metrics", "--metric-module", str(PLUGIN),
                             "--describe", "crest_factor"], capture_output=True, text=True, env=env)
    assert listed.returncode == 0 and "peak-to-RMS" in listed.stdout, listed.stdout + listed.stderr
    run = subprocess.run([*tokbench, "run", "--tokenizer", "identity", "--task", "recon",
                          "--limit", "2", "--out", str(tmp_path / "results"), "--workers", "1",
                          "--set", "asr=false", "--metric-module", str(PLUGIN),
                          "--metrics", "crest_factor,stoi", "--no-progress"],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    records = [json.loads(line) for p in (tmp_path / "results").rglob("utterances.rank*.jsonl")
               for line in p.read_text().splitlines()]
    scored = [r for r in records if r.get("utterance_id")]
    assert len(scored) == 2
    for r in scored:
        assert 0.0 < r["metrics"]["crest_factor"] < 30.0 and r["metrics"]["stoi"] > 0.99
    run_json = json.loads(next((tmp_path / "results").rglob("run.json")).read_text())
    assert run_json["protocol"]["crest_factor"] == {"definition": "20 log10(max|y| / rms(y))"}


def test_metric_modules_of_installed_packages_are_found_through_entry_points(monkeypatch):
    """A package registers a metric module in the `tokbench.metrics` entry-point group; the
    registry imports it on first use (a fresh registry, so no built-in is already counted)."""
    from tokbench.metrics import kit

    fresh = kit.MetricRegistry()
    monkeypatch.setattr(kit, "registry", fresh)

    class EntryPoint:
        value = "tests.plugins.crest_factor_metric"

    monkeypatch.setattr(kit, "entry_points",
                        lambda group: [EntryPoint()] if group == kit.ENTRY_POINT_GROUP else [])
    monkeypatch.delitem(sys.modules, EntryPoint.value, raising=False)
    assert "crest_factor" in fresh.names()
    assert fresh.declaration("crest_factor").origin == "plug-in"
    assert fresh.broken == {}


def test_a_metric_fed_band_limited_audio_is_flagged_once_and_in_each_record(tmp_path):
    """VERSA's users found a speaker model scoring 8 kHz audio far lower than 16 kHz audio: a
    metric whose declaration expects a higher rate than the audio has is said once per run and
    recorded with its values."""
    from tokbench.io.cache import Cache
    from tokbench.metrics.conformance import reference_speech
    from tokbench.run.scoring import ReferenceKeys, ScoreItem, Scorer

    ref = reference_speech(1.0)
    said: list[str] = []
    items = [ScoreItem(f"u{k}", ref, ref.copy(), audio_rate=8000) for k in range(2)]
    full = ScoreItem("u2", ref, ref.copy(), audio_rate=16000)
    with Scorer(Cache(tmp_path), ReferenceKeys("t", "1"), workers=0, metrics="mel_l1,si_snr",
                log=said.append) as scorer:
        scored = [s for _, s in scorer.score([*items, full])]
    assert len(said) == 1 and "8000 Hz" in said[0] and "mel_l1" in said[0]
    for s in scored[:2]:
        assert s.extra["rate_below_metric"] == {"audio_rate": 8000, "expects": {"mel_l1": 16000}}
    assert "rate_below_metric" not in scored[2].extra  # full-band audio: nothing to say
