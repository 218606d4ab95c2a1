"""Deterministic synthetic test signals at 16 kHz with known properties (no files, no network)."""

from __future__ import annotations

import numpy as np

SR = 16_000


def harmonic(f0: float | np.ndarray, seconds: float, n_harmonics: int = 10, amp: float = 0.3,
             sr: int = SR) -> np.ndarray:
    """Sum of harmonics with 1/k amplitudes; ``f0`` is a constant or one value per sample (Hz)."""
    n = int(round(seconds * sr))
    f = np.broadcast_to(np.asarray(f0, dtype=np.float64), (n,))
    phase = 2.0 * np.pi * np.cumsum(f) / sr
    x = np.zeros(n)
    for k in range(1, n_harmonics + 1):
        x += np.where(k * f < sr / 2 - 200, np.sin(k * phase) / k, 0.0)  # stay below Nyquist
    return (amp * x / np.max(np.abs(x))).astype(np.float32)


def glide(f_start: float, f_end: float, seconds: float, sr: int = SR) -> np.ndarray:
    """A per-sample F0 track moving geometrically from ``f_start`` to ``f_end``."""
    n = int(round(seconds * sr))
    return f_start * (f_end / f_start) ** (np.arange(n) / max(n - 1, 1))


def speechlike(seconds: float = 4.0, seed: int = 0, sr: int = SR) -> np.ndarray:
    """Syllable-like bursts: voiced harmonic segments with gliding F0 and a smooth envelope,
    unvoiced noise bursts, and short pauses. Enough structure for PESQ/STOI to behave."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(round(seconds * sr)), dtype=np.float64)
    pos = int(0.1 * sr)
    while pos < len(out) - int(0.15 * sr):
        dur = int(rng.uniform(0.12, 0.3) * sr)
        dur = min(dur, len(out) - pos - int(0.05 * sr))
        env = np.sin(np.pi * np.arange(dur) / dur) ** 2
        if rng.random() < 0.75:
            f0 = glide(rng.uniform(100, 140), rng.uniform(110, 180), dur / sr, sr)
            seg = harmonic(f0, dur / sr, n_harmonics=30, amp=1.0, sr=sr).astype(np.float64)
            # a crude formant: emphasise 300-3000 Hz
            spec = np.fft.rfft(seg)
            freqs = np.fft.rfftfreq(len(seg), 1 / sr)
            spec *= np.exp(-(((freqs - rng.uniform(500, 1500)) / 1200.0) ** 2)) + 0.1
            seg = np.fft.irfft(spec, len(seg))
        else:
            seg = rng.standard_normal(dur) * 0.3
        out[pos:pos + dur] += 0.3 * env * seg / (np.max(np.abs(seg)) + 1e-12)
        pos += dur + int(rng.uniform(0.02, 0.12) * sr)
    return out.astype(np.float32)


def add_noise(x: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    """``x`` plus white noise at ``snr_db`` relative to x's mean power."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(len(x))
    p_x = np.mean(np.asarray(x, dtype=np.float64) ** 2)
    noise *= np.sqrt(p_x / 10 ** (snr_db / 10) / np.mean(noise**2))
    return (x + noise).astype(np.float32)
