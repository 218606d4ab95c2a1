"""Waveform and spectral distances: SI-SDR, SDR, multi-resolution STFT distance, MCD.

All take equal-length 16 kHz signals (the output fitted to the reference) and return floats;
an input they are undefined on raises :class:`NotComputable`.

- ``si_sdr``: scale-invariant SDR (Le Roux et al., "SDR - half-baked or well done?", 2019),
  10 log10(|a r|^2 / |a r - y|^2) with a = <y, r> / |r|^2, no mean removal
  (``fast_bss_eval.si_sdr``, ``zero_mean=False``), in dB.
- ``sdr``: the BSS Eval SDR (Vincent et al. 2006, v4: a 512-tap distortion filter), as
  ``mir_eval.separation.bss_eval_sources`` computes it for one source (``fast_bss_eval.sdr``).
- ``mstft_distance``: the multi-scale STFT distance of the DAC / Codec-SUPERB code
  (audiotools ``MultiScaleSTFTLoss`` defaults): for window lengths 2048 and 512 (hop = window
  / 4, periodic Hann, centred with reflect padding), mean |M_hyp - M_ref| + mean
  |log10(max(M_hyp, 1e-5)^2) - log10(max(M_ref, 1e-5)^2)| over frames and bins, summed over
  the two resolutions (M = STFT magnitude).
- ``mcd``: mel cepstral distortion as VERSA's ``mcd_f0`` computes it (``dtw=False``): each
  signal scaled to the int16 range, 70 Hz low-cut FIR (255 taps), WORLD Harvest F0 (40-800 Hz,
  5 ms) and CheapTrick envelope (FFT 1024), ``pysptk.sp2mc`` order 39 with alpha 0.466;
  MCD = mean over the first min(n_ref, n_hyp) frames of 10 / ln 10 * sqrt(2 * sum_d (c_hyp[d]
  - c_ref[d])^2) over all 40 coefficients c0..c39, in dB. Harvest runs in windows for long
  inputs, as for the pitch metrics (``tokbench.metrics.pitch.harvest_windowed``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from tokbench.io.cache import CacheEntryError
from tokbench.metrics.base import NotComputable, Scores
from tokbench.metrics.inputs import as_pair, as_signal, require_sound
from tokbench.metrics.kit import MetricSpec, Needs, SignalInput, declare
from tokbench.metrics.reference_features import package_version, register_feature
from tokbench.protocol import SCORING_SAMPLE_RATE

SDR_SETTINGS: dict[str, Any] = {
    "package": "fast-bss-eval", "si_sdr": "zero_mean=False (Le Roux et al. 2019)",
    "sdr": "BSS Eval v4 SDR, filter_length 512 (as mir_eval bss_eval_sources)"}
MSTFT_SETTINGS: dict[str, Any] = {
    "window_lengths": [2048, 512], "hop": "window/4", "window": "hann (periodic)",
    "center": "reflect", "mag_weight": 1.0, "log_weight": 1.0, "power": 2.0, "clamp": 1e-5,
    "log": "log10", "definition": "audiotools MultiScaleSTFTLoss"}
MCD_SETTINGS: dict[str, Any] = {
    "definition": "VERSA mcd_f0 (dtw=False)", "scale": "int16", "low_cut_hz": 70,
    "f0": "harvest 40-800 Hz, 5 ms", "envelope": "pyworld cheaptrick, fft 1024",
    "mcep": "pysptk sp2mc, order 39, alpha 0.466", "coefficients": "c0..c39",
    "frames": "first min(len) frames, no alignment"}
MSTFT_WINDOWS: tuple[int, ...] = tuple(MSTFT_SETTINGS["window_lengths"])
MSTFT_CLAMP: float = MSTFT_SETTINGS["clamp"]
MCD_ORDER = 39
MCD_ALPHA = 0.466
MCD_FFT = 1024
MCD_LOW_CUT_HZ = 70
MCD_F0_FLOOR, MCD_F0_CEIL = 40.0, 800.0


def si_sdr(ref16: np.ndarray, hyp16: np.ndarray) -> float:
    """Scale-invariant SDR in dB (see the module docstring)."""
    import fast_bss_eval

    ref, hyp = as_pair(ref16, hyp16)
    require_sound(ref, "reference")
    if not np.any(hyp):
        raise NotComputable("SI-SDR of a silent output is minus infinity (no projection onto the "
                            "reference)")
    _require_difference(ref, hyp, "SI-SDR")
    return float(fast_bss_eval.si_sdr(ref[None], hyp[None])[0])


def _require_difference(ref: np.ndarray, hyp: np.ndarray, what: str) -> None:
    # fast-bss-eval fails on an exact copy ("zero-size array to reduction operation")
    a = np.dot(hyp, ref) / np.dot(ref, ref)
    if not np.any(a * ref - hyp):
        raise NotComputable(f"{what} is +infinity: the output is a scaled copy of the reference")


def sdr(ref16: np.ndarray, hyp16: np.ndarray) -> float:
    """BSS Eval SDR in dB (512-tap distortion filter; see the module docstring)."""
    import fast_bss_eval

    ref, hyp = as_pair(ref16, hyp16)
    require_sound(ref, "reference")
    if not np.any(hyp):
        raise NotComputable("SDR of a silent output is minus infinity")
    if len(ref) < 512:
        raise NotComputable(f"SDR needs at least 512 samples (its distortion filter); got {len(ref)}")
    _require_difference(ref, hyp, "SDR")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fast_bss_eval warns when it regularises
        return float(fast_bss_eval.sdr(ref[None], hyp[None], filter_length=512)[0])


def _magnitudes(x: np.ndarray, window: int) -> np.ndarray:
    hop = window // 4
    if len(x) <= window // 2:
        raise NotComputable(f"the signal ({len(x)} samples) is too short for a {window}-sample "
                            "STFT with reflect padding")
    xp = np.pad(x, window // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(xp, window)[::hop]
    n = np.arange(window)
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / window)
    return np.abs(np.fft.rfft(frames * hann, axis=1))


def mstft_distance(ref16: np.ndarray, hyp16: np.ndarray) -> float:
    """Multi-resolution STFT distance (0 when identical; see the module docstring)."""
    ref, hyp = as_pair(ref16, hyp16)
    total = 0.0
    for window in MSTFT_WINDOWS:
        mr, mh = _magnitudes(ref, window), _magnitudes(hyp, window)
        log_r = np.log10(np.maximum(mr, MSTFT_CLAMP) ** 2)
        log_h = np.log10(np.maximum(mh, MSTFT_CLAMP) ** 2)
        total += float(np.mean(np.abs(mh - mr)) + np.mean(np.abs(log_h - log_r)))
    return total


def mel_cepstrum(wav16: np.ndarray, role: str = "signal") -> np.ndarray:
    """[frames, 40] mel cepstra of a 16 kHz signal as VERSA's ``world_extract`` makes them."""
    import pysptk
    import pyworld
    from scipy.signal import firwin, lfilter

    from tokbench.metrics.pitch import HOP_MS, harvest_windowed

    x = as_signal(wav16, role, np.float64)
    require_sound(x, role)
    x = x * np.iinfo(np.int16).max
    nyquist = SCORING_SAMPLE_RATE // 2
    x = lfilter(firwin(255, MCD_LOW_CUT_HZ / nyquist, pass_zero=False), 1, x)
    f0 = harvest_windowed(x, SCORING_SAMPLE_RATE, MCD_F0_FLOOR, MCD_F0_CEIL)
    t = np.arange(len(f0), dtype=np.float64) * HOP_MS / 1000.0
    sp = pyworld.cheaptrick(np.ascontiguousarray(x), f0, t, SCORING_SAMPLE_RATE, fft_size=MCD_FFT)
    return np.asarray(pysptk.sp2mc(sp, MCD_ORDER, MCD_ALPHA), dtype=np.float64)


def mcd_from_cepstra(mc_ref: np.ndarray, mc_hyp: np.ndarray) -> float:
    """MCD in dB of two mel-cepstrum sequences over their first min(len) frames."""
    n = min(len(mc_ref), len(mc_hyp))
    if n == 0:
        raise NotComputable("a mel-cepstrum sequence has no frames")
    diff2 = np.sum((mc_hyp[:n] - mc_ref[:n]) ** 2, axis=1)
    return float(np.mean(10.0 / np.log(10.0) * np.sqrt(2.0 * diff2)))


def mcd(ref16: np.ndarray, hyp16: np.ndarray) -> float:
    """Mel cepstral distortion in dB (see the module docstring)."""
    ref, hyp = as_pair(ref16, hyp16)
    return mcd_from_cepstra(mel_cepstrum(ref, "reference"), mel_cepstrum(hyp, "output"))


# --- declarations -------------------------------------------------------------------------
_REFERENCE = Needs(reference=True, sample_rate=SCORING_SAMPLE_RATE)


def _sdr_of(x: SignalInput) -> Scores:
    scores = Scores()
    if x.wants("si_sdr"):
        scores.compute("si_sdr", lambda: si_sdr(x.reference, x.output))
    if x.wants("sdr"):
        scores.compute("sdr", lambda: sdr(x.reference, x.output))
    return scores


def _sdr_direct(ref16: np.ndarray, hyp16: np.ndarray) -> Mapping[str, float]:
    import fast_bss_eval

    r, h = ref16.astype(np.float64)[None], hyp16.astype(np.float64)[None]
    return {"si_sdr": float(fast_bss_eval.si_sdr(r, h, zero_mean=False)[0])}


declare(
    MetricSpec("si_sdr", "scale-invariant SDR (Le Roux et al. 2019, no mean removal; "
               "fast-bss-eval)", "higher", "dB", lo=-10.0, hi=30.0, valid_lo=-float("inf"),
               valid_hi=float("inf"), groups=("signal",)),
    MetricSpec("sdr", "BSS Eval SDR, 512-tap distortion filter (fast-bss-eval = mir_eval)",
               "higher", "dB", lo=-10.0, hi=30.0, valid_lo=-float("inf"),
               valid_hi=float("inf"), groups=("signal",)),
    where="worker", compute=_sdr_of, needs=_REFERENCE, protocol={"sdr": SDR_SETTINGS},
    preload=("fast_bss_eval",), packages=("fast-bss-eval",),
    citation="Le Roux et al., ICASSP 2019 (SI-SDR); Vincent et al., IEEE TASLP 2006 (BSS Eval)",
    implementation="fast-bss-eval (equal to mir_eval.separation.bss_eval_sources for one source)",
    agreement=_sdr_direct, agreement_tolerance=1e-6,
)

declare(
    MetricSpec("mstft_distance", "multi-resolution STFT distance: L1 of magnitudes + L1 of "
               "log10 power, windows 2048 and 512 (DAC / Codec-SUPERB)", "lower", "", lo=0.0,
               hi=10.0, valid_hi=float("inf"), groups=("signal",)),
    where="worker", compute=lambda x: mstft_distance(x.reference, x.output), needs=_REFERENCE,
    protocol={"mstft": MSTFT_SETTINGS}, packages=("scipy",),
    citation="Kumar et al., NeurIPS 2023 (DAC); Codec-SUPERB (Wu et al. 2024)",
    implementation="audiotools MultiScaleSTFTLoss defaults, re-implemented with scipy",
)


def _check_mcep(value: np.ndarray) -> None:
    if value.ndim != 2 or value.dtype.kind != "f" or not np.isfinite(value).all():
        raise CacheEntryError(f"mel cepstra are a finite 2-D array, got shape {value.shape} "
                              f"dtype {value.dtype}")


register_feature("mcep", lambda: {**MCD_SETTINGS, "pyworld": package_version("pyworld"),
                                  "pysptk": package_version("pysptk"),
                                  "f0_window_seconds": _pitch_window()}, _check_mcep)


def _pitch_window() -> float:
    from tokbench.metrics.pitch import PITCH_WINDOW_SECONDS

    return PITCH_WINDOW_SECONDS


def _mcd_of(x: SignalInput) -> float:
    if x.reference is x.reference_raw:  # the reference's own cepstra: cached per dataset
        ref_mc = x.cached("mcep", lambda: mel_cepstrum(x.reference_raw, "reference"))
    else:  # the reference zero-padded to a longer output
        ref_mc = mel_cepstrum(x.reference, "reference")
    return mcd_from_cepstra(ref_mc, mel_cepstrum(x.output, "output"))


declare(
    MetricSpec("mcd", "mel cepstral distortion as VERSA mcd_f0 (sp2mc order 39, c0 included, "
               "no DTW)", "lower", "dB", lo=0.0, hi=20.0, valid_hi=float("inf"),
               groups=("signal",)),
    where="worker", compute=_mcd_of, needs=Needs(reference=True, speech=True,
                                                 sample_rate=SCORING_SAMPLE_RATE),
    protocol={"mcd": MCD_SETTINGS}, preload=("pysptk", "pyworld"),
    packages=("pysptk", "pyworld"),
    citation="Kubichek, IEEE PACRIM 1993 (MCD); VERSA (Shi et al., NAACL 2025 demo)",
    implementation="VERSA mcd_f0 with dtw=False (pyworld + pysptk)",
)
