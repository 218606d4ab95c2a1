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

import numpy as np

from tokbench.metrics.base import NotComputable
from tokbench.metrics.inputs import as_pair, as_signal, require_sound
from tokbench.protocol import MSTFT_SETTINGS, SCORING_SAMPLE_RATE

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
