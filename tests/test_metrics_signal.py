"""PESQ, STOI/ESTOI and mel distance: known answers, degradation order, null-with-reason cases."""

import pickle

import librosa
import numpy as np
import pytest

from tokbench.metrics.base import NotComputable
from tokbench.metrics.mel import log_mel, mel_l1
from tokbench.metrics.signal import pesq_scores, stoi_scores

from .synth import add_noise, speechlike

PESQ = ("pesq_wb", "pesq_nb")
STOI = ("stoi", "estoi")


@pytest.fixture(scope="module")
def speech():
    return speechlike(4.0, seed=0)


def _all_null(scores, names, *words):
    for name in names:
        assert scores.values[name] is None, (name, scores.values)
        for word in words:
            assert word in scores.reasons[name], (name, scores.reasons[name])


def test_identical_signals_score_at_the_top(speech):
    p = pesq_scores(speech, speech.copy())
    s = stoi_scores(speech, speech.copy())
    assert p.values["pesq_wb"] >= 4.5 and p.values["pesq_nb"] >= 4.4
    assert s.values["stoi"] >= 0.99 and s.values["estoi"] >= 0.99
    assert not p.reasons and not s.reasons


def test_more_noise_scores_lower(speech):
    clean = {**pesq_scores(speech, speech).values, **stoi_scores(speech, speech).values}
    mild, heavy = ({**pesq_scores(speech, y).values, **stoi_scores(speech, y).values}
                   for y in (add_noise(speech, 20), add_noise(speech, 0)))
    for name in PESQ + STOI:
        assert clean[name] > mild[name] > heavy[name], (name, clean[name], mild[name], heavy[name])
    assert clean["pesq_wb"] - mild["pesq_wb"] > 1.0


def test_float64_and_float32_inputs_agree(speech):
    noisy = add_noise(speech, 10)
    a = pesq_scores(speech, noisy).values
    b = pesq_scores(speech.astype(np.float64), noisy.astype(np.float64)).values
    assert a == pytest.approx(b, abs=1e-4)


@pytest.mark.parametrize("which", ["both", "ref", "hyp"])
def test_digital_silence_is_not_computable(speech, which):
    zero = np.zeros_like(speech)
    ref = zero if which in ("both", "ref") else speech
    hyp = zero if which in ("both", "hyp") else speech
    _all_null(pesq_scores(ref, hyp), PESQ, "digital silence")
    if which == "hyp":  # a silent output is a result for STOI (issue 13), see below
        return
    _all_null(stoi_scores(ref, hyp), STOI, "digital silence")


@pytest.mark.parametrize("kind", ["silent", "constant"])
def test_silent_or_constant_output_gets_the_library_stoi(speech, kind):
    """Issue 13: a silent output scored "not computable" and was dropped from the mean; it is a
    result (pystoi: 0 for silence), and ESTOI is deterministic (seeded internal noise)."""
    from pystoi import stoi

    hyp = np.zeros_like(speech) if kind == "silent" else np.full_like(speech, 0.25)
    s = stoi_scores(speech, hyp)
    assert s.values["stoi"] is not None and s.values["estoi"] is not None
    assert s.values["stoi"] == pytest.approx(stoi(speech.astype(np.float64), hyp.astype(np.float64),
                                                  16000), abs=1e-12)
    if kind == "silent":
        assert s.values["stoi"] == 0.0
    assert abs(s.values["estoi"]) < 0.05  # nothing intelligible
    np.random.seed(123)
    again = stoi_scores(speech, hyp)
    assert again.values == s.values  # the same whatever numpy's global state
    assert np.random.get_state()[1][0] == np.random.RandomState(123).get_state()[1][0]


def test_pesq_beyond_its_stated_length_is_null_with_the_reason(monkeypatch, speech):
    """Issue 14: the pesq package segfaults at >= 240 s; beyond PESQ_MAX_SECONDS it is null."""
    from tokbench.metrics import signal

    monkeypatch.setattr(signal, "PESQ_MAX_SECONDS", 3.0)  # the rule, on a 4 s signal
    _all_null(pesq_scores(speech, speech), PESQ, "longer than the 3 s", "crashes at 240 s")


def test_shorter_than_a_quarter_second_is_not_computable(speech):
    short = speech[1600:1600 + 3000]  # 0.19 s of sound
    assert np.any(short)
    _all_null(pesq_scores(short, short), PESQ, "0.25 s", "BufferTooShortError")
    _all_null(stoi_scores(short, short), STOI, "30 STFT frames")


def test_stoi_too_short_while_pesq_still_works(speech):
    x = speech[16000:int(1.35 * 16000)]  # pystoi would warn and return 1e-5 here
    p, s = pesq_scores(x, x), stoi_scores(x, x)
    assert p.values["pesq_wb"] >= 4.5 and p.values["pesq_nb"] >= 4.4
    _all_null(s, STOI, "pystoi would return 1e-5")


def test_pesq_finding_no_utterance_is_not_computable(speech):
    x = speech[:int(0.4 * 16000)]  # 0.1 s of silence and one short syllable
    _all_null(pesq_scores(x, x), PESQ, "NoUtterancesError")


def test_almost_silent_output_is_not_computable_for_pesq(speech):
    # The pesq package fails with "cannot convert float NaN to integer" here; no on_error value.
    _all_null(pesq_scores(speech, speech * np.float32(1e-30)), PESQ, "too quiet", "NaN")


def test_non_finite_output_is_not_computable(speech):
    bad = speech.copy()
    bad[100] = np.nan
    _all_null(pesq_scores(speech, bad), PESQ, "NaN")
    _all_null(stoi_scores(speech, bad), STOI, "NaN")
    with pytest.raises(NotComputable, match="NaN"):
        mel_l1(speech, bad)


def test_length_mismatch_is_a_caller_error(speech):
    for fn in (pesq_scores, stoi_scores, mel_l1):
        with pytest.raises(ValueError, match="fit_length"):
            fn(speech, speech[:-1])


def test_mel_l1_zero_for_identical_and_grows_with_noise(speech):
    assert mel_l1(speech, speech.copy()) == 0.0
    assert 0.0 < mel_l1(speech, add_noise(speech, 30)) < mel_l1(speech, add_noise(speech, 10))


def test_mel_l1_known_answer_for_a_gain_change():
    # Where every mel bin is above the 1e-5 floor, halving the signal shifts every log-mel
    # value by exactly log(2).
    x = (np.random.default_rng(3).standard_normal(16000) * 0.1).astype(np.float32)
    assert mel_l1(x, 0.5 * x) == pytest.approx(np.log(2.0), abs=1e-5)


def test_log_mel_matches_librosa(speech):
    x = speech[:20000]
    ref = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=1024, hop_length=256, n_mels=80,
                                         fmax=8000, power=1.0)
    expected = np.log(np.maximum(ref, 1e-5)).T
    got = log_mel(x)
    assert got.shape == expected.shape == (1 + len(x) // 256, 80)
    # Both float32; bins near the 1e-5 floor differ by float32 rounding of tiny sums only.
    np.testing.assert_allclose(got, expected, atol=1e-3)
    assert np.median(np.abs(got - expected)) < 1e-5


def test_mel_of_empty_signal_is_not_computable():
    with pytest.raises(NotComputable, match="empty"):
        mel_l1(np.zeros(0, np.float32), np.zeros(0, np.float32))


def test_metric_functions_pickle_for_worker_processes():
    for fn in (pesq_scores, stoi_scores, mel_l1):
        assert pickle.loads(pickle.dumps(fn)) is fn
