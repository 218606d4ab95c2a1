"""WORLD Harvest F0 and the pitch metrics gpe, vde, ffe, f0_corr: known answers."""

import numpy as np
import pytest

from tokbench.metrics.base import NotComputable
from tokbench.metrics.pitch import f0_contour, pitch_scores

from .synth import add_noise, glide, harmonic, speechlike


@pytest.fixture(scope="module")
def f0_150():
    return f0_contour(harmonic(150.0, 1.0))


def test_f0_contour_of_a_harmonic_signal(f0_150):
    assert f0_150.dtype == np.float64
    assert len(f0_150) == 1 + 16000 // 80  # one frame per 5 ms, both ends included
    assert np.all(f0_150 > 0)
    assert np.median(f0_150) == pytest.approx(150.0, abs=1.0)


def test_silence_is_unvoiced_empty_has_no_frames_and_nan_is_not_computable():
    assert not np.any(f0_contour(np.zeros(8000, np.float32)))
    empty = f0_contour(np.zeros(0, np.float32))
    assert empty.shape == (0,)
    assert "no frames" in pitch_scores(empty, empty).reasons["vde"]
    with pytest.raises(NotComputable, match="NaN"):
        f0_contour(np.full(800, np.nan))


def test_octave_error_is_a_gross_error_and_five_percent_is_not(f0_150):
    octave = pitch_scores(f0_150, f0_contour(harmonic(300.0, 1.0))).values
    assert octave["gpe"] > 0.95 and octave["ffe"] > 0.95 and octave["vde"] == 0.0
    shifted = pitch_scores(f0_150, f0_contour(harmonic(157.5, 1.0))).values
    assert shifted["gpe"] < 0.05 and shifted["ffe"] < 0.05


def test_identical_contours_are_perfect():
    f0 = f0_contour(harmonic(glide(120.0, 220.0, 1.0), 1.0))
    s = pitch_scores(f0, f0.copy())
    assert s.values == {"gpe": 0.0, "vde": 0.0, "ffe": 0.0, "f0_corr": pytest.approx(1.0),
                        "f0_rmse_cents": 0.0}
    assert not s.reasons


def test_noise_lowers_f0_correlation_on_speechlike_audio():
    x = speechlike(1.0, seed=4)
    ref = f0_contour(x)
    s = pitch_scores(ref, f0_contour(add_noise(x, 5)))
    assert s.values["f0_corr"] < 0.999 and s.values["vde"] > 0.0


def test_hand_made_contours():
    #          0  1    2    3    4    5  6    7
    ref = [0, 0, 100, 100, 100, 100, 0, 200]
    hyp = [0, 100, 100, 130, 0, 100, 0, 100, 50]  # one frame longer: ignored
    # voicing errors at 1 (U->V) and 4 (V->U); voiced in both: 2, 3, 5, 7;
    # gross: 3 (ratio 1.3) and 7 (ratio 0.5)
    s = pitch_scores(np.array(ref, float), np.array(hyp, float))
    assert s.values["vde"] == pytest.approx(2 / 8)
    assert s.values["gpe"] == pytest.approx(2 / 4)
    assert s.values["ffe"] == pytest.approx((2 + 2) / 8)
    # ref [100, 100, 100, 200] vs hyp [100, 130, 100, 100]: r = -750 / sqrt(7500 * 675) = -1/3
    assert s.values["f0_corr"] == pytest.approx(-1 / 3)
    assert s.extra["pitch_frames"] == 8 and s.extra["pitch_frames_both_voiced"] == 4
    assert s.extra["pitch_frames_length_mismatch"] == 1


def test_gross_error_threshold_is_twenty_percent():
    ref = np.full(4, 100.0)
    assert pitch_scores(ref, np.array([119.0, 81.0, 100.0, 100.0])).values["gpe"] == 0.0
    assert pitch_scores(ref, np.array([121.0, 79.0, 100.0, 100.0])).values["gpe"] == 0.5


def test_no_mutually_voiced_frame():
    s = pitch_scores(np.array([100.0, 100.0, 0.0, 0.0]), np.array([0.0, 0.0, 120.0, 0.0]))
    assert s.values["gpe"] is None and "voiced in both" in s.reasons["gpe"]
    assert s.values["f0_corr"] is None
    assert s.values["vde"] == pytest.approx(3 / 4) and s.values["ffe"] == pytest.approx(3 / 4)


def test_correlation_needs_two_frames_and_variance():
    one = pitch_scores(np.array([100.0, 0.0]), np.array([150.0, 0.0]))
    assert one.values["gpe"] == 1.0
    assert one.values["f0_corr"] is None and "at least 2" in one.reasons["f0_corr"]
    flat = pitch_scores(np.full(5, 0.1), np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert flat.values["f0_corr"] is None and "constant" in flat.reasons["f0_corr"]


def test_unvoiced_everywhere_and_empty_contours():
    s = pitch_scores(np.zeros(10), np.zeros(10))
    assert s.values["vde"] == 0.0 and s.values["ffe"] == 0.0
    assert s.values["gpe"] is None and s.values["f0_corr"] is None
    e = pitch_scores(np.zeros(0), np.array([100.0]))
    assert all(e.values[k] is None for k in ("gpe", "vde", "ffe", "f0_corr"))


def test_malformed_contours_are_caller_errors():
    with pytest.raises(ValueError, match="non-finite"):
        pitch_scores(np.array([np.nan, 100.0]), np.array([100.0, 100.0]))
    with pytest.raises(ValueError, match="1-D"):
        pitch_scores(np.zeros((2, 2)), np.zeros(2))


def test_f0_rmse_cents_is_the_rms_of_log_ratios_over_frames_voiced_in_both():
    ref = np.array([100.0, 200.0, 0.0, 150.0, 120.0])
    hyp = np.array([200.0, 200.0, 180.0, 0.0, 120.0 * 2 ** (50 / 1200)])
    s = pitch_scores(ref, hyp)
    both = [1200.0, 0.0, 50.0]  # frames 0, 1, 4 are voiced in both
    assert s.values["f0_rmse_cents"] == pytest.approx(np.sqrt(np.mean(np.square(both))))
    none = pitch_scores(np.array([100.0, 0.0]), np.array([0.0, 100.0]))
    assert none.values["f0_rmse_cents"] is None
    assert "voiced in both" in none.reasons["f0_rmse_cents"]


def test_windowed_harvest_is_one_call_up_to_the_window_and_close_beyond():
    """Long inputs (issue 14): contours over overlapping windows, joined. Up to the window it is
    exactly one Harvest call; beyond it the joined contour has the same frames and agrees with
    the whole-signal analysis (voicing on >= 99% of frames, F0 within 1% on the median frame)."""
    import pyworld

    from tokbench.metrics.pitch import harvest_windowed

    x = np.concatenate([speechlike(3.0, seed=s) for s in range(3)]).astype(np.float64)
    whole, _ = pyworld.harvest(x, 16000, f0_floor=40.0, f0_ceil=800.0, frame_period=5.0)
    assert np.array_equal(harvest_windowed(x, 16000, 40.0, 800.0, window_s=10.0), whole)
    joined = harvest_windowed(x, 16000, 40.0, 800.0, window_s=2.0, context_s=1.0)
    assert joined.shape == whole.shape
    assert np.mean((joined > 0) == (whole > 0)) >= 0.99
    both = (joined > 0) & (whole > 0)
    assert np.median(np.abs(joined[both] / whole[both] - 1)) < 0.01
