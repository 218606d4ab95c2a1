"""F0 contours (WORLD Harvest) and the pitch metrics gpe, vde, ffe, f0_corr (docs/protocol.md).

A frame is voiced where F0 > 0. Contours of different lengths are compared over the first
``min(len(ref), len(hyp))`` frames. With ``both`` = frames voiced in both contours and
``gross`` = frames of ``both`` where |f0_hyp / f0_ref - 1| > 0.2:

- ``gpe`` = |gross| / |both|                         (not computable when |both| = 0)
- ``vde`` = frames whose voicing differs / all frames
- ``ffe`` = (frames whose voicing differs + |gross|) / all frames
- ``f0_corr`` = Pearson r of F0 over ``both``        (not computable with |both| < 2 or a
  constant F0 on either side)
- ``f0_rmse_cents`` = 1200 * sqrt(mean(log2(f0_hyp / f0_ref) ** 2)) over ``both``
                                                       (not computable when |both| = 0)

Long signals: Harvest's memory grows superlinearly with the input length (about 3.8 GiB at
180 s), so signals longer than ``PITCH_WINDOW_SECONDS`` are analysed in windows of that length
with ``PITCH_CONTEXT_SECONDS`` of audio either side, and each window contributes the frames of
its central part: the joined contour has exactly the frames of a whole-signal analysis, and the
memory is bounded by one window whatever the length.
"""

from __future__ import annotations

import numpy as np

from tokbench.io.cache import CacheEntryError
from tokbench.metrics.base import NotComputable, Scores
from tokbench.metrics.inputs import as_signal
from tokbench.metrics.kit import MetricSpec, Needs, SignalInput, declare
from tokbench.metrics.reference_features import package_version, register_feature
from tokbench.protocol import SCORING_SAMPLE_RATE

HOP_MS = 5.0
F0_FLOOR = 40.0
F0_CEIL = 800.0
GROSS_ERROR = 0.2  # relative deviation that makes a pitch error "gross"
PITCH_METRICS = ("gpe", "vde", "ffe", "f0_corr", "f0_rmse_cents")
HOP_SAMPLES = int(SCORING_SAMPLE_RATE * HOP_MS / 1000)  # 80
# WORLD Harvest's memory grows superlinearly with length: contours of longer signals are computed
# over windows of this length with PITCH_CONTEXT_SECONDS of context each side, and joined.
PITCH_WINDOW_SECONDS = 20.0
PITCH_CONTEXT_SECONDS = 1.0


def f0_contour(wav16: np.ndarray) -> np.ndarray:
    """F0 in Hz (float64, one value per 5 ms, 0 where unvoiced) of a 16 kHz signal by WORLD
    Harvest, 40 to 800 Hz. The costliest metric here (the 40 Hz floor costs ~1.8x Harvest's
    default 71 Hz; see benchmarks/metric_costs.py): reuse reference contours
    (``tokbench.metrics.reference_features.cached_f0``).
    Digital silence gives an all-zero (unvoiced) contour, an empty signal an empty contour
    (``pitch_scores`` then reports why); a non-finite signal is NotComputable."""
    if np.asarray(wav16).ndim == 1 and np.asarray(wav16).size == 0:
        return np.zeros(0, dtype=np.float64)  # pyworld would fail with std::bad_array_new_length
    x = as_signal(wav16, "signal", np.float64)
    return harvest_windowed(x, SCORING_SAMPLE_RATE, F0_FLOOR, F0_CEIL)


def _harvest(x: np.ndarray, sample_rate: int, f0_floor: float, f0_ceil: float) -> np.ndarray:
    import pyworld

    f0, _ = pyworld.harvest(np.ascontiguousarray(x, dtype=np.float64), sample_rate,
                            f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=HOP_MS)
    return np.asarray(f0, dtype=np.float64)


def harvest_windowed(x: np.ndarray, sample_rate: int, f0_floor: float, f0_ceil: float,
                     window_s: float | None = None, context_s: float | None = None) -> np.ndarray:
    """WORLD Harvest F0 (5 ms frames) of ``x`` in bounded memory.

    Up to ``window_s`` (default ``PITCH_WINDOW_SECONDS``): one Harvest call. Longer: frame
    ``k`` (time ``k * 5 ms``) comes from the window whose central part holds it; every window
    is analysed with ``context_s`` (default ``PITCH_CONTEXT_SECONDS``) of extra audio on each
    side, so no frame's analysis is cut short by a window edge. The result has as many frames
    as one Harvest call on the whole signal (``len(x) // hop + 1``).
    """
    window_s = PITCH_WINDOW_SECONDS if window_s is None else window_s
    context_s = PITCH_CONTEXT_SECONDS if context_s is None else context_s
    hop = int(round(sample_rate * HOP_MS / 1000))
    n_frames = len(x) // hop + 1
    frames_per_window = max(1, int(round(window_s * 1000 / HOP_MS)))
    if n_frames <= frames_per_window + 1:
        return _harvest(x, sample_rate, f0_floor, f0_ceil)
    context = int(round(context_s * 1000 / HOP_MS))  # in frames
    out = np.zeros(n_frames, dtype=np.float64)
    for first in range(0, n_frames, frames_per_window):
        last = min(first + frames_per_window, n_frames)  # frames [first, last) come from here
        lo = max(0, first - context)  # the analysed part starts on a frame boundary
        hi_sample = min(len(x), (last + context) * hop)
        f0 = _harvest(x[lo * hop:hi_sample], sample_rate, f0_floor, f0_ceil)
        out[first:last] = f0[first - lo:last - lo]
    return out


def _contour(f0: np.ndarray, role: str) -> np.ndarray:
    f = np.asarray(f0, dtype=np.float64)
    if f.ndim != 1:
        raise ValueError(f"{role} F0 contour: expected 1-D, got shape {f.shape}")
    if not np.all(np.isfinite(f)) or np.any(f < 0):
        raise ValueError(f"{role} F0 contour holds negative or non-finite values")
    return f


def pitch_scores(f0_ref: np.ndarray, f0_hyp: np.ndarray) -> Scores:
    """``gpe``, ``vde``, ``ffe`` and ``f0_corr`` of an output contour against the reference
    contour (see the module docstring). ``extra`` records the frame counts used."""
    ref = _contour(f0_ref, "reference")
    hyp = _contour(f0_hyp, "output")
    n = min(len(ref), len(hyp))
    scores = Scores()
    if n == 0:
        scores.fail(PITCH_METRICS, "an F0 contour has no frames")
        return scores
    ref, hyp = ref[:n], hyp[:n]
    v_ref, v_hyp = ref > 0, hyp > 0
    both = v_ref & v_hyp
    n_both = int(both.sum())
    voicing_errors = int((v_ref != v_hyp).sum())
    gross = np.zeros(n, dtype=bool)
    gross[both] = np.abs(hyp[both] / ref[both] - 1.0) > GROSS_ERROR
    n_gross = int(gross.sum())

    if n_both == 0:
        scores.put("gpe", None, "no frame is voiced in both reference and output")
    else:
        scores.put("gpe", n_gross / n_both)
    scores.put("vde", voicing_errors / n)
    scores.put("ffe", (voicing_errors + n_gross) / n)
    scores.compute("f0_corr", lambda: _pearson(ref[both], hyp[both]))
    if n_both == 0:
        scores.put("f0_rmse_cents", None, "no frame is voiced in both reference and output")
    else:
        cents = 1200.0 * np.log2(hyp[both] / ref[both])
        scores.put("f0_rmse_cents", float(np.sqrt(np.mean(cents ** 2))))
    scores.extra.update(pitch_frames=n, pitch_frames_both_voiced=n_both,
                        pitch_frames_length_mismatch=len(f0_hyp) - len(f0_ref))
    return scores


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2:
        raise NotComputable(f"F0 correlation needs at least 2 frames voiced in both; found {len(a)}")
    # Test constancy exactly: a constant minus its floating-point mean need not be exactly 0.
    if np.all(a == a[0]) or np.all(b == b[0]):
        raise NotComputable("F0 is constant over the frames voiced in both (zero variance)")
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    if not den > 0.0:
        raise NotComputable("F0 variance over the frames voiced in both is zero")
    return float(np.clip(np.dot(a, b) / den, -1.0, 1.0))


def _check_f0(value: np.ndarray) -> None:
    if value.ndim != 1 or value.dtype.kind != "f" or not np.isfinite(value).all() \
            or (value < 0).any() or (value > F0_CEIL * 1.01).any():
        raise CacheEntryError(f"an F0 contour is a 1-D array of Hz in [0, {F0_CEIL:g}], got "
                              f"shape {value.shape} dtype {value.dtype}")


register_feature("f0", lambda: {"method": "harvest", "hop_ms": HOP_MS, "f0_floor": F0_FLOOR,
                                "f0_ceil": F0_CEIL, "pyworld": package_version("pyworld")},
                 _check_f0)


def _pitch_of(x: SignalInput) -> Scores:
    f0_ref = x.cached("f0", lambda: f0_contour(x.reference_raw))
    return pitch_scores(f0_ref, f0_contour(x.output))


_UNIT = "ratio"
declare(
    MetricSpec("gpe", "gross pitch error: share of mutually voiced frames with |f0 ratio - 1| > "
               "0.2 (WORLD Harvest)", "lower", _UNIT, lo=0.0, hi=1.0, groups=("pitch",),
               default=True),
    MetricSpec("vde", "voicing decision error: share of frames whose voicing differs", "lower",
               _UNIT, lo=0.0, hi=1.0, groups=("pitch",), default=True),
    MetricSpec("ffe", "F0 frame error: share of frames with a voicing or gross pitch error",
               "lower", _UNIT, lo=0.0, hi=1.0, groups=("pitch",), default=True),
    MetricSpec("f0_corr", "Pearson correlation of F0 over mutually voiced frames (P.Corr)",
               "higher", "r", lo=-1.0, hi=1.0, groups=("pitch",), default=True),
    MetricSpec("f0_rmse_cents", "RMS of 1200 log2(f0_out / f0_in) over frames voiced in both "
               "(Harvest)", "lower", "cents", lo=0.0, hi=600.0, valid_hi=float("inf"),
               groups=("pitch",)),
    where="worker", compute=_pitch_of,
    needs=Needs(reference=True, speech=True, sample_rate=SCORING_SAMPLE_RATE),
    protocol={"pitch": {"method": "WORLD harvest (pyworld)", "hop_ms": HOP_MS,
                        "f0_floor": F0_FLOOR, "f0_ceil": F0_CEIL, "gross_error": GROSS_ERROR,
                        "window_seconds": PITCH_WINDOW_SECONDS,
                        "context_seconds": PITCH_CONTEXT_SECONDS,
                        "rmse": "cents over frames voiced in both"}},
    preload=("pyworld",), packages=("pyworld",),
    citation="Morise et al., IEICE 2016 (WORLD); Morise, Interspeech 2017 (Harvest); GPE/VDE/FFE "
             "as in Chu & Alwan, ICASSP 2009",
    implementation="pyworld.harvest; the error rates and correlation computed here",
)
