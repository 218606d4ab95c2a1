"""Does a reference hold speech? (Silero VAD, the ONNX model shipped in the ``silero-vad`` wheel.)

A reference with no speech (silence, DC, noise, a tone) makes every metric that compares the
output with the reference audio meaningless: an identity "reconstruction" of noise would score
near-perfect PESQ, STOI and mel distance. Such an utterance's reference-based metrics are null
with the reason (``tokbench.run.scoring``), and the result is cached with the other reference
features, so the check costs one VAD pass per reference and dataset (about 10 ms per 4 s).

Rule: the reference holds speech when Silero VAD (threshold 0.5, speech segments of at least
250 ms, the package's defaults) finds at least :data:`MIN_SPEECH_SECONDS` of speech in it.
"""

from __future__ import annotations

import functools
import importlib.metadata
from typing import Any

import numpy as np

from tokbench.io.cache import CacheEntryError
from tokbench.metrics.base import NotComputable
from tokbench.metrics.inputs import as_signal
from tokbench.metrics.reference_features import package_version as _version
from tokbench.metrics.reference_features import register_feature
from tokbench.protocol import SCORING_SAMPLE_RATE, VAD_SETTINGS

MIN_SPEECH_SECONDS: float = VAD_SETTINGS["min_speech_seconds"]
THRESHOLD: float = VAD_SETTINGS["threshold"]
MIN_SEGMENT_MS: int = VAD_SETTINGS["min_segment_ms"]


def package_version() -> str:
    try:
        return importlib.metadata.version("silero-vad")
    except importlib.metadata.PackageNotFoundError:
        return "missing"


@functools.lru_cache(maxsize=1)
def _model() -> Any:
    # The ONNX model runs on the CPU with one thread (the package's OnnxWrapper settings).
    from silero_vad import load_silero_vad

    return load_silero_vad(onnx=True)


def speech_seconds(wav16: np.ndarray) -> float:
    """Seconds of speech Silero VAD finds in a 16 kHz signal (0.0 for digital silence)."""
    import torch
    from silero_vad import get_speech_timestamps

    x = as_signal(wav16, "reference", np.float32)
    if not np.any(x):
        return 0.0
    model = _model()
    model.reset_states()
    stamps = get_speech_timestamps(torch.from_numpy(x), model, threshold=THRESHOLD,
                                   sampling_rate=SCORING_SAMPLE_RATE,
                                   min_speech_duration_ms=MIN_SEGMENT_MS)
    return float(sum(s["end"] - s["start"] for s in stamps)) / SCORING_SAMPLE_RATE


def require_speech(seconds: float) -> None:
    """NotComputable (naming the rule) when ``seconds`` of detected speech is below the minimum."""
    if seconds < MIN_SPEECH_SECONDS:
        raise NotComputable(
            f"the reference holds no speech (Silero VAD found {seconds:.2f} s, fewer than "
            f"{MIN_SPEECH_SECONDS} s): metrics against it would score noise or silence")


def _check_speech(value: np.ndarray) -> None:
    if value.shape != (1,) or not np.isfinite(value).all() or float(value[0]) < 0:
        raise CacheEntryError(f"speech seconds are one non-negative number, got shape {value.shape}")


# seconds of speech found in the reference (the scorer's gate for metrics that need speech)
register_feature("speech", lambda: {**VAD_SETTINGS, "silero_vad": _version("silero-vad")},
                 _check_speech)
