"""F0 contours (WORLD Harvest) and the pitch metrics gpe, vde, ffe, f0_corr (docs/protocol.md).

A frame is voiced where F0 > 0. Contours of different lengths are compared over the first
``min(len(ref), len(hyp))`` frames. With ``both`` = frames voiced in both contours and
``gross`` = frames of ``both`` where |f0_hyp / f0_ref - 1| > 0.2:

- ``gpe`` = |gross| / |both|                         (not computable when |both| = 0)
- ``vde`` = frames whose voicing differs / all frames
- ``ffe`` = (frames whose voicing differs + |gross|) / all frames
- ``f0_corr`` = Pearson r of F0 over ``both``        (not computable with |both| < 2 or a
  constant F0 on either side)
"""

from __future__ import annotations

import numpy as np
import pyworld

from tokbench.metrics.base import NotComputable, Scores
from tokbench.metrics.inputs import as_signal
from tokbench.protocol import SCORING_SAMPLE_RATE

HOP_MS = 5.0
F0_FLOOR = 40.0
F0_CEIL = 800.0
GROSS_ERROR = 0.2  # relative deviation that makes a pitch error "gross"
PITCH_METRICS = ("gpe", "vde", "ffe", "f0_corr")


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
    f0, _ = pyworld.harvest(x, SCORING_SAMPLE_RATE, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL,
                            frame_period=HOP_MS)
    return np.asarray(f0, dtype=np.float64)


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
