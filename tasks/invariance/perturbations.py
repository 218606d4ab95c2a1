"""Meaning-preserving perturbations of a waveform, each named, levelled, seeded and described.

A perturbation is written ``kind=level+unit`` (``gain=+6dB``, ``noise-white=10dB``,
``shift=0.25hop``, ``speed=0.9x``, ``pitch=-2st``, ``reverb=0.6s``) or just ``reencode``:

- ``reencode``: the unchanged audio encoded again through the same path as every perturbed
  copy: the floor of the study (0 for a deterministic tokenizer; anything above is batching or
  nondeterminism, not invariance);
- ``gain=G dB``: multiply by ``10 ** (G / 20)``;
- ``noise-white=S dB``: add seeded Gaussian white noise at signal-to-noise ratio S (powers over
  the whole utterance);
- ``noise-babble=S dB``: add babble at SNR S: the sum of ``babble_talkers`` other utterances of
  the dataset (other speakers where the data has them; each brought to the same RMS, looped or
  cut to the length), chosen by a seeded hash;
- ``shift=F hop``: delay by F x the tokenizer's hop (sample rate / frame rate), a fractional
  delay by a linear phase in the frequency domain (band-limited interpolation; the first samples
  become silence, the length is kept);
- ``speed=R x``: play R times faster by resampling (soxr HQ): length / R, pitch x R;
- ``pitch=N st``: shift the pitch by N semitones keeping the duration:
  ``librosa.effects.pitch_shift`` (phase-vocoder time stretch by 2 ** (N/12), then soxr HQ
  resampling back to the length);
- ``reverb=T s``: convolve with a synthetic room impulse response of RT60 = T seconds: a direct
  path (unit impulse at 0) plus a seeded Gaussian tail with an exponential energy decay of 60 dB
  over T, the tail's energy equal to the direct path's (direct-to-reverberant ratio 0 dB),
  length T; the output is cut to the input's length and brought back to its RMS.

Every perturbed signal is clipped to [-1, 1] (what a real channel would do); the share of
clipped samples is returned with it. Gain, noise and shift keep the time axis ("aligned"), so
frame-by-frame comparisons make sense for them (and for ``reencode``).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import soxr

UNITS = {"gain": "dB", "noise-white": "dB", "noise-babble": "dB", "shift": "hop", "speed": "x",
         "pitch": "st", "reverb": "s", "reencode": ""}
ALIGNED = frozenset({"reencode", "gain", "noise-white", "noise-babble", "shift"})
SIGNED = frozenset({"gain", "pitch"})  # levels written with their sign
DEFAULT_PERTURBATIONS = (
    "reencode", "gain=-6dB", "gain=+6dB",
    "noise-white=20dB", "noise-white=10dB", "noise-white=0dB",
    "noise-babble=20dB", "noise-babble=10dB", "noise-babble=0dB",
    "shift=0.25hop", "shift=0.5hop", "speed=0.9x", "speed=1.1x", "pitch=-2st", "pitch=+2st",
    "reverb=0.3s", "reverb=0.6s",
)
_PATTERN = re.compile(r"^(?P<kind>[a-z][a-z-]*)(?:=(?P<level>[+-]?\d+(?:\.\d+)?)(?P<unit>[a-z]*))?$",
                      re.IGNORECASE)


@dataclass(frozen=True)
class Perturbation:
    kind: str
    level: float | None = None

    @property
    def unit(self) -> str:
        return UNITS[self.kind]

    @property
    def name(self) -> str:
        """The canonical text, as parsed: ``gain=+6dB``, ``shift=0.25hop``, ``reencode``."""
        if self.level is None:
            return self.kind
        text = f"{self.level:+g}" if self.kind in SIGNED else f"{self.level:g}"
        return f"{self.kind}={text}{self.unit}"

    @property
    def aligned(self) -> bool:
        return self.kind in ALIGNED

    def describe(self, hop: float, sample_rate: int, babble_talkers: int) -> dict[str, Any]:
        """The recorded parameters of this perturbation for a tokenizer of ``hop`` samples."""
        out: dict[str, Any] = {"perturbation": self.kind, "level": self.level, "unit": self.unit,
                               "aligned": self.aligned, "sample_rate": sample_rate}
        if self.kind == "shift":
            out.update(delay_samples=(self.level or 0.0) * hop, hop_samples=hop,
                       method="fractional delay: linear phase in the FFT domain, zero padded")
        elif self.kind == "speed":
            out.update(method="soxr HQ resampling (length / rate, pitch x rate)")
        elif self.kind == "pitch":
            out.update(method="librosa.effects.pitch_shift (phase vocoder + soxr_hq)")
        elif self.kind == "reverb":
            out.update(rt60_s=self.level, drr_db=0.0, rir_length_s=self.level,
                       method="direct path + seeded exponentially decaying Gaussian tail")
        elif self.kind == "noise-babble":
            out.update(snr_db=self.level, talkers=babble_talkers)
        elif self.kind in ("noise-white",):
            out.update(snr_db=self.level)
        elif self.kind == "gain":
            out.update(gain_db=self.level)
        return out


def parse_perturbation(text: str) -> Perturbation:
    """``"gain=+6dB"`` -> Perturbation("gain", 6.0); the unit must be the kind's own."""
    m = _PATTERN.match(text.strip())
    if not m or m.group("kind").lower() not in UNITS:
        raise ValueError(f"unknown perturbation {text!r}; write KIND=LEVELUNIT with KIND one of "
                         f"{', '.join(sorted(UNITS))} (e.g. gain=+6dB, noise-white=10dB, "
                         "shift=0.5hop, speed=1.1x, pitch=-2st, reverb=0.3s, reencode)")
    kind = m.group("kind").lower()
    if kind == "reencode":
        if m.group("level"):
            raise ValueError("reencode takes no level")
        return Perturbation(kind)
    if m.group("level") is None:
        raise ValueError(f"{kind} needs a level, e.g. {kind}=1{UNITS[kind]}")
    unit = m.group("unit")
    if unit.lower() != UNITS[kind].lower():
        raise ValueError(f"{text!r}: the level of {kind} is in {UNITS[kind]!r}, not {unit!r}")
    level = float(m.group("level"))
    if kind in ("speed",) and level <= 0:
        raise ValueError(f"speed must be positive, got {level}")
    if kind == "reverb" and level <= 0:
        raise ValueError(f"reverb RT60 must be positive, got {level} s")
    if kind == "shift" and level < 0:
        raise ValueError(f"shift is a delay: give a fraction of the hop >= 0, got {level}")
    return Perturbation(kind, level)


def seed_for(*parts: object) -> int:
    """A 64-bit seed from any parts (stable across machines and Python hash seeds)."""
    text = "\0".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def add_at_snr(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``x`` plus ``noise`` scaled so that 10 log10(P_x / P_noise) = ``snr_db``."""
    px, pn = rms(x) ** 2, rms(noise) ** 2
    if px == 0 or pn == 0:
        return x.copy()
    return x + noise * math.sqrt(px / (pn * 10 ** (snr_db / 10)))


def fractional_delay(x: np.ndarray, delay: float) -> np.ndarray:
    """``x`` delayed by ``delay`` samples (any real >= 0), same length, zeros shifted in."""
    n = len(x)
    if n == 0 or delay == 0:
        return x.copy()
    pad = int(math.ceil(delay)) + 64  # room for the delay and the interpolator's ringing
    size = 1 << int(math.ceil(math.log2(n + pad)))
    spectrum = np.fft.rfft(x.astype(np.float64), size)
    k = np.arange(len(spectrum))
    y = np.fft.irfft(spectrum * np.exp(-2j * np.pi * k * delay / size), size)[:n]
    return y.astype(np.float32)


def change_speed(x: np.ndarray, sample_rate: int, rate: float) -> np.ndarray:
    """``rate`` times faster (and higher) by resampling: the signal read as if it had been
    recorded at ``sample_rate * rate``."""
    return soxr.resample(x.astype(np.float32), sample_rate * rate, sample_rate,
                         quality="HQ").astype(np.float32)


def shift_pitch(x: np.ndarray, sample_rate: int, semitones: float) -> np.ndarray:
    import librosa

    return librosa.effects.pitch_shift(x.astype(np.float32), sr=sample_rate, n_steps=semitones,
                                       bins_per_octave=12, res_type="soxr_hq").astype(np.float32)


def room_impulse_response(rt60: float, sample_rate: int, seed: int) -> np.ndarray:
    """Direct path + exponentially decaying Gaussian tail (energy -60 dB at ``rt60``), DRR 0 dB."""
    n = max(2, int(round(rt60 * sample_rate)))
    t = np.arange(n) / sample_rate
    tail = np.random.default_rng(seed).standard_normal(n) * 10 ** (-3 * t / rt60)
    tail[0] = 0.0
    tail /= np.sqrt(np.sum(tail**2))  # tail energy 1 = the direct path's
    tail[0] = 1.0
    return tail


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    from scipy.signal import fftconvolve

    y = fftconvolve(x.astype(np.float64), rir)[: len(x)]
    level = rms(y)
    return (y * (rms(x) / level) if level > 0 else y).astype(np.float32)


def babble(others: list[np.ndarray], length: int) -> np.ndarray:
    """The sum of ``others`` (each at unit RMS, looped or cut to ``length``)."""
    out = np.zeros(length, dtype=np.float64)
    for o in others:
        level = rms(o)
        if level == 0 or length == 0:
            continue
        reps = int(math.ceil(length / len(o)))
        out += np.tile(o, reps)[:length] / level
    return out


def apply(
    p: Perturbation, x: np.ndarray, sample_rate: int, hop: float, seed: int, utterance_id: str,
    babble_source: Callable[[], list[np.ndarray]] | None = None,
) -> tuple[np.ndarray, float]:
    """The perturbed signal (float32, clipped to [-1, 1]) and the share of samples clipped.

    ``seed`` and ``utterance_id`` fix the noise; the RIR depends on ``seed`` and RT60 only (one
    room for every utterance). ``babble_source`` returns the other talkers' audio at
    ``sample_rate`` (needed for ``noise-babble`` only)."""
    x = np.asarray(x, dtype=np.float32)
    level = p.level if p.level is not None else 0.0  # only reencode has no level
    if p.kind == "reencode":
        y = x.copy()
    elif p.kind == "gain":
        y = x * np.float32(10 ** (level / 20))
    elif p.kind == "noise-white":
        rng = np.random.default_rng(seed_for(seed, utterance_id, p.name))
        y = add_at_snr(x, rng.standard_normal(len(x)), level)
    elif p.kind == "noise-babble":
        if babble_source is None:
            raise ValueError("noise-babble needs other utterances (babble_source)")
        others = babble_source()
        if not others:
            raise ValueError("noise-babble needs at least one other utterance in the dataset")
        y = add_at_snr(x, babble(others, len(x)), level)
    elif p.kind == "shift":
        y = fractional_delay(x, level * hop)
    elif p.kind == "speed":
        y = change_speed(x, sample_rate, level)
    elif p.kind == "pitch":
        y = shift_pitch(x, sample_rate, level)
    elif p.kind == "reverb":
        y = reverberate(x, room_impulse_response(level, sample_rate, seed_for(seed, p.name)))
    else:  # parse_perturbation admits only the kinds above
        raise ValueError(f"unknown perturbation kind {p.kind!r}")
    y = np.asarray(y, dtype=np.float32)
    clipped = float(np.mean(np.abs(y) > 1.0)) if len(y) else 0.0
    return np.clip(y, -1.0, 1.0), clipped
