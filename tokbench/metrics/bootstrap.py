"""Small statistics shared by metrics, summaries and reports (seeded, so results reproduce)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 0
CI_LEVEL = 0.95


def _percentile_ci(stats: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.percentile(stats, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def bootstrap_ci(
    values: np.ndarray,
    stat: Callable[[np.ndarray], float] = np.mean,
    n_boot: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = CI_LEVEL,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``stat`` over the items of ``values`` (resampled with replacement)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan")
    if len(values) == 1:
        v = float(stat(values))
        return v, v
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    if stat is np.mean:
        stats = values[idx].mean(axis=1)
    else:
        stats = np.array([stat(values[i]) for i in idx])
    return _percentile_ci(stats, level)


def bootstrap_ratio_ci(
    numerators: np.ndarray,
    denominators: np.ndarray,
    n_boot: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = CI_LEVEL,
) -> tuple[float, float]:
    """CI of sum(num)/sum(den), resampling utterances (e.g. corpus WER = edits / words)."""
    num = np.asarray(numerators, dtype=float)
    den = np.asarray(denominators, dtype=float)
    if len(num) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(num), size=(n_boot, len(num)))
    d = den[idx].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        stats = num[idx].sum(axis=1) / d
    stats = stats[np.isfinite(stats)]
    if len(stats) == 0:
        return float("nan"), float("nan")
    return _percentile_ci(stats, level)


def paired_bootstrap(
    diffs: np.ndarray, n_boot: int = 10000, seed: int = BOOTSTRAP_SEED, level: float = CI_LEVEL
) -> tuple[float, float, float]:
    """CI of the mean paired difference and a two-sided bootstrap p-value for mean == 0."""
    diffs = np.asarray(diffs, dtype=float)
    if len(diffs) < 2:
        raise ValueError("a paired comparison needs at least 2 shared utterances")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(diffs), size=(n_boot, len(diffs)))
    means = diffs[idx].mean(axis=1)
    lo, hi = _percentile_ci(means, level)
    # Shift the bootstrap distribution to the null (mean 0) and count as or more extreme.
    observed = diffs.mean()
    centred = means - observed
    p = (np.sum(np.abs(centred) >= abs(observed)) + 1) / (n_boot + 1)
    return lo, hi, float(min(1.0, p))
