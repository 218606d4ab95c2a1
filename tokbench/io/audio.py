"""Audio I/O and the one resampler every rate change goes through (soxr, high quality)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

RESAMPLER = "soxr-HQ"  # recorded in protocol settings and cache keys
_SOXR_QUALITY = "HQ"


class AudioError(Exception):
    """An audio file could not be used; the message names the file and the cause."""


@dataclass(frozen=True)
class LoadedAudio:
    wav: np.ndarray  # float32, mono, [T]
    sample_rate: int
    channels: int  # channels in the file; > 1 means it was downmixed (averaged)
    path: str

    @property
    def downmixed(self) -> bool:
        return self.channels > 1

    @property
    def duration(self) -> float:
        return len(self.wav) / self.sample_rate


def load_audio(path: str | Path) -> LoadedAudio:
    """Read wav/flac/ogg (anything libsndfile reads) as mono float32; stereo is averaged."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AudioError(f"{path}: unreadable audio ({exc}); convert it to wav or flac") from None
    channels = int(data.shape[1])
    if data.shape[0] == 0:
        raise AudioError(f"{path}: the file holds no samples")
    wav = data.mean(axis=1, dtype=np.float32) if channels > 1 else data[:, 0]
    if not np.all(np.isfinite(wav)):
        raise AudioError(f"{path}: the file holds NaN or infinite samples")
    return LoadedAudio(np.ascontiguousarray(wav, dtype=np.float32), int(sr), channels, str(path))


def resample(wav: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample a 1-D float signal with soxr HQ; identity when the rates match."""
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"resample expects a 1-D signal, got shape {wav.shape}")
    if sr_in == sr_out:
        return wav
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    if len(wav) == 0:
        return wav
    return soxr.resample(wav, sr_in, sr_out, quality=_SOXR_QUALITY).astype(np.float32, copy=False)


def fit_length(wav: np.ndarray, target: int) -> tuple[np.ndarray, int]:
    """Trim or zero-pad ``wav`` to ``target`` samples; returns (signal, len(wav) - target)."""
    mismatch = len(wav) - target
    if mismatch > 0:
        return wav[:target], mismatch
    if mismatch < 0:
        return np.concatenate([wav, np.zeros(-mismatch, dtype=wav.dtype)]), mismatch
    return wav, 0


def write_audio(path: str | Path, wav: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit PCM wav or flac (by suffix), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0), sample_rate, subtype="PCM_16")
