"""``si_snr``: scale-invariant signal-to-noise ratio with mean removal, as the separation and codec
papers (Conv-TasNet, DATES's music and general-audio tables) report it.

Both signals lose their mean; the output ``y`` is projected on the reference ``r``:
``t = <y, r> / |r|^2 r``, ``e = y - t``, and ``si_snr = 10 log10(|t|^2 / |e|^2)`` in dB,
computed in float64. An output that is an exact scaled copy of the reference has an infinite
SI-SNR (not computable, never a large made-up number); a silent or constant output has no
projection. This differs from ``si_sdr`` (Le Roux et al. 2019, no mean removal) only in the
mean removal: a name never changes meaning, so it is its own metric.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tokbench.metrics.base import NotComputable
from tokbench.metrics.inputs import as_pair
from tokbench.metrics.kit import MetricSpec, Needs, SignalInput, declare


def si_snr(ref: np.ndarray, hyp: np.ndarray) -> float:
    """SI-SNR in dB of equal-length signals (see the module docstring)."""
    r, y = as_pair(ref, hyp)
    r = r - r.mean()
    y = y - y.mean()
    energy = float(np.dot(r, r))
    if energy == 0.0:
        raise NotComputable("the reference is constant: SI-SNR has no target to project on")
    if not np.any(y):
        raise NotComputable("the output is constant (silent after mean removal): SI-SNR is "
                            "minus infinity")
    target = float(np.dot(y, r)) / energy * r
    noise = y - target
    noise_energy = float(np.dot(noise, noise))
    if noise_energy <= np.finfo(np.float64).tiny * float(np.dot(target, target)):
        raise NotComputable("SI-SNR is +infinity: the output is a scaled copy of the reference")
    return float(10.0 * np.log10(float(np.dot(target, target)) / noise_energy))


def _direct(ref: np.ndarray, hyp: np.ndarray) -> Mapping[str, float]:
    """fast-bss-eval's SI-SDR with mean removal: the same quantity, another implementation."""
    import fast_bss_eval

    r, y = ref.astype(np.float64)[None], hyp.astype(np.float64)[None]
    return {"si_snr": float(fast_bss_eval.si_sdr(r, y, zero_mean=True)[0])}


def _si_snr_of(x: SignalInput) -> float:
    return si_snr(x.reference, x.output)


declare(
    MetricSpec("si_snr", "scale-invariant SNR with mean removal (Conv-TasNet; DATES music and "
               "audio tables), float64", "higher", "dB", lo=-10.0, hi=30.0,
               valid_lo=-float("inf"), valid_hi=float("inf"), groups=("signal",)),
    # no protocol settings: the definition is fixed (a change would be a new name), and a
    # settings entry would change the protocol id of every run, including those without it
    where="worker", compute=_si_snr_of, needs=Needs(reference=True),
    citation="Luo & Mesgarani, IEEE/ACM TASLP 2019 (Conv-TasNet); Mousavi et al. 2025 (DATES)",
    implementation="numpy, the textbook formula; checked against fast-bss-eval's zero-mean "
                   "SI-SDR",
    agreement=_direct, agreement_tolerance=1e-6,
)
