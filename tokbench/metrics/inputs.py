"""Input checks shared by the signal-level metrics (PESQ, STOI, mel, pitch, speaker).

Every metric takes mono float signals at 16 kHz (``tokbench.protocol.SCORING_SAMPLE_RATE``).
A signal a metric cannot be computed on (empty, NaN, digital silence where that matters)
raises :class:`NotComputable`; a malformed call (2-D array, ref/hyp of different lengths)
raises :class:`~tokbench.metrics.base.CallerError` (a ``ValueError``), because that is a bug
in the caller, not a property of the audio.
"""

from __future__ import annotations

import numpy as np

from tokbench.metrics.base import CallerError, NotComputable


def as_signal(wav: np.ndarray, role: str = "signal", dtype: type = np.float64) -> np.ndarray:
    """``wav`` as a contiguous 1-D array of ``dtype``; NotComputable if empty or not finite."""
    x = np.asarray(wav)
    if x.ndim != 1:
        raise CallerError(f"{role}: expected a 1-D signal, got shape {x.shape}")
    if x.size == 0:
        raise NotComputable(f"{role} is empty")
    x = np.ascontiguousarray(x, dtype=dtype)
    if not np.all(np.isfinite(x)):
        raise NotComputable(f"{role} holds NaN or infinite samples")
    return x


def require_sound(x: np.ndarray, role: str) -> None:
    """NotComputable if ``x`` is digital silence (all samples exactly zero)."""
    if not np.any(x):
        raise NotComputable(f"{role} is digital silence (all samples are zero)")


def as_pair(ref: np.ndarray, hyp: np.ndarray, dtype: type = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Checked (ref, hyp) of equal length (the recon task fits hyp to the reference length)."""
    r = as_signal(ref, "reference", dtype)
    h = as_signal(hyp, "output", dtype)
    if r.shape != h.shape:
        raise CallerError(
            f"reference and output differ in length ({len(r)} vs {len(h)} samples); "
            "fit the output to the reference with tokbench.io.audio.fit_length first"
        )
    return r, h
