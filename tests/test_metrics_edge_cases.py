"""Issue 13: a silent or constant output is a result; a reference without speech is flagged."""

from __future__ import annotations

import numpy as np
import pytest

from tokbench.data import open_dataset
from tokbench.io.audio import resample
from tokbench.io.cache import Cache
from tokbench.metrics.selection import REFERENCE_AUDIO_METRICS
from tokbench.metrics.vad import speech_seconds
from tokbench.run.scoring import ReferenceKeys, ScoreItem, Scorer

SELECTION = "pesq_wb,stoi,estoi,mel_l1,si_sdr,mstft_distance,gpe,vde,f0_corr,secs,dnsmos_ovrl"


@pytest.fixture(scope="module")
def speech():
    ds = open_dataset("sample")
    a = ds.load(ds.utterances[0])
    return resample(a.wav, a.sample_rate, 16000).astype(np.float32)


def _score(ref, hyp, tmp_path, utt="u"):
    with Scorer(Cache(tmp_path / "cache"), ReferenceKeys("edge", "r1"), workers=0,
                metrics=SELECTION) as scorer:
        [(_, s)] = list(scorer.score([ScoreItem(utt, ref, hyp)]))
    return s


def test_speech_is_detected_and_noise_dc_and_silence_are_not(speech):
    n = len(speech)
    assert speech_seconds(speech) > 1.0
    assert speech_seconds(0.1 * np.random.default_rng(0).standard_normal(n)) < 0.25
    assert speech_seconds(np.full(n, 0.4)) == 0.0
    assert speech_seconds(np.zeros(n)) == 0.0


@pytest.mark.parametrize("kind", ["noise", "dc"])
def test_a_reference_without_speech_makes_its_metrics_null(kind, speech, tmp_path):
    """Before: the identity of noise scored near-perfect PESQ/STOI/mel; now null with a reason,
    while the non-intrusive DNSMOS of the output is still a result."""
    n = len(speech)
    ref = (0.1 * np.random.default_rng(1).standard_normal(n) if kind == "noise"
           else np.full(n, 0.4)).astype(np.float32)
    s = _score(ref, ref.copy(), tmp_path, utt=kind)
    intrusive = [m for m in s.values if m in REFERENCE_AUDIO_METRICS]
    assert len(intrusive) == 10
    for name in intrusive:
        assert s.values[name] is None and "holds no speech" in s.reasons[name], name
    assert s.values["dnsmos_ovrl"] is not None
    assert s.extra["reference_speech_seconds"] < 0.25


def test_a_silent_output_is_scored_where_the_metric_is_defined(speech, tmp_path):
    s = _score(speech, np.zeros_like(speech), tmp_path)
    assert s.values["stoi"] == 0.0  # pystoi: nothing intelligible (was "not computable")
    assert s.values["estoi"] is not None and abs(s.values["estoi"]) < 0.05
    assert s.values["vde"] is not None and s.values["vde"] > 0.3  # every voiced frame is lost
    assert s.values["mel_l1"] is not None and s.values["mstft_distance"] is not None
    for name, why in (("pesq_wb", "digital silence"), ("gpe", "voiced in both"),
                      ("f0_corr", "voiced in both"), ("secs", "digital silence"),
                      ("si_sdr", "silent output"), ("dnsmos_ovrl", "digital silence")):
        assert s.values[name] is None and why in s.reasons[name], name


def test_a_constant_output_is_scored_and_estoi_is_deterministic(speech, tmp_path):
    from pystoi import stoi

    dc = np.full_like(speech, 0.2)
    a = _score(speech, dc, tmp_path)
    b = _score(speech, dc, tmp_path)
    assert a.values["stoi"] == pytest.approx(stoi(speech.astype(np.float64),
                                                  dc.astype(np.float64), 16000))
    assert a.values["estoi"] == b.values["estoi"] is not None
    assert a.values["secs"] is None and a.reasons["secs"]
