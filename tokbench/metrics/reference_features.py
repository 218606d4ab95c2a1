"""Reference-side features computed once per dataset and reused for every tokenizer.

Reference F0 contours (WORLD Harvest, the costliest metric) and reference speaker
embeddings depend only on the dataset audio and the protocol, so they are cached under keys of
(dataset name, dataset revision, utterance id, feature, the feature's settings and package
version, resampler, protocol version). A reference on which a feature is not computable is
cached as such, with its reason, so it is not recomputed either.

The cache is an explicit argument (``Cache`` only holds a path, so it pickles into workers).
Usage::

    key = reference_key(dataset.name, dataset.revision, utt.id, "f0")
    f0_ref = cached_f0(cache, key, ref16)          # raises NotComputable (cached) on failure
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable

import numpy as np

from tokbench.io.cache import Cache, CacheEntryError
from tokbench.metrics.base import NotComputable
from tokbench.metrics.pitch import F0_CEIL, F0_FLOOR, HOP_MS, f0_contour
from tokbench.metrics.speaker import MODEL, speaker_embedding
from tokbench.protocol import ECAPA_SV, MCD_SETTINGS, PITCH_WINDOW_SECONDS, VAD_SETTINGS, WAVLM_SV


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# What determines each feature besides the audio: part of the cache key.
FEATURES: dict[str, Callable[[], dict]] = {
    "f0": lambda: {"method": "harvest", "hop_ms": HOP_MS, "f0_floor": F0_FLOOR,
                   "f0_ceil": F0_CEIL, "pyworld": _version("pyworld")},
    "speaker": lambda: {"model": MODEL, "resemblyzer": _version("resemblyzer"),
                        "preprocess": "preprocess_wav"},
    # seconds of speech found by the reference VAD (tokbench.metrics.vad)
    "speech": lambda: {**VAD_SETTINGS, "silero_vad": _version("silero-vad")},
    # VERSA-style mel cepstra for mcd (tokbench.metrics.distortion)
    "mcep": lambda: {**MCD_SETTINGS, "pyworld": _version("pyworld"), "pysptk": _version("pysptk"),
                     "f0_window_seconds": PITCH_WINDOW_SECONDS},
    # WavLM x-vector for spk_sim_wavlm; the model revision is added by the caller
    "wavlm_sv": lambda: {**WAVLM_SV, "transformers": _version("transformers")},
    # WavLM-large + ECAPA-TDNN embedding for spk_sim_ecapa; the checkpoint's SHA-256 is added
    "ecapa_sv": lambda: {**ECAPA_SV, "transformers": _version("transformers")},
}


def reference_key(dataset_name: str, dataset_revision: str, utterance_id: str, feature: str,
                  model: str | None = None) -> str:
    """Cache key of reference ``feature`` (one of :data:`FEATURES`) of one utterance;
    ``model`` names the exact weights of a model-based feature (e.g. their resolved commit)."""
    if feature not in FEATURES:
        raise ValueError(f"unknown reference feature {feature!r}; known: {sorted(FEATURES)}")
    extra = {} if model is None else {"model_weights": model}
    return Cache.key(dataset=dataset_name, dataset_revision=dataset_revision,
                     utterance=utterance_id, feature=feature, settings=FEATURES[feature](),
                     **extra)


def _check_f0(value: np.ndarray) -> None:
    if value.ndim != 1 or value.dtype.kind != "f" or not np.isfinite(value).all() \
            or (value < 0).any() or (value > F0_CEIL * 1.01).any():
        raise CacheEntryError(f"an F0 contour is a 1-D array of Hz in [0, {F0_CEIL:g}], got "
                              f"shape {value.shape} dtype {value.dtype}")


def _check_embedding(value: np.ndarray) -> None:
    # Resemblyzer's embeddings are L2-normalised 256-d vectors.
    if value.shape != (256,) or not np.isfinite(value).all() \
            or abs(float(np.linalg.norm(value)) - 1.0) > 1e-3:
        norm = float(np.linalg.norm(value)) if value.size else 0.0
        raise CacheEntryError(f"a speaker embedding is a unit-norm 256-d vector, got shape "
                              f"{value.shape} with norm {norm:.4g}")


def _check_speech(value: np.ndarray) -> None:
    if value.shape != (1,) or not np.isfinite(value).all() or float(value[0]) < 0:
        raise CacheEntryError(f"speech seconds are one non-negative number, got shape {value.shape}")


def _check_vector(value: np.ndarray) -> None:
    if value.ndim != 1 or value.size == 0 or not np.isfinite(value).all():
        raise CacheEntryError(f"an embedding is a finite 1-D vector, got shape {value.shape}")


def _check_mcep(value: np.ndarray) -> None:
    if value.ndim != 2 or value.dtype.kind != "f" or not np.isfinite(value).all():
        raise CacheEntryError(f"mel cepstra are a finite 2-D array, got shape {value.shape} "
                              f"dtype {value.dtype}")


# Every cached reference feature has a check of its shape and values (a foreign entry is
# recomputed, never used).
CHECKS: dict[str, Callable[[np.ndarray], None]] = {
    "f0": _check_f0, "speaker": _check_embedding, "speech": _check_speech, "mcep": _check_mcep,
    "wavlm_sv": _check_vector, "ecapa_sv": _check_vector}


def _check_failure(value: object) -> None:
    if not (isinstance(value, dict) and set(value) == {"not_computable"}
            and isinstance(value["not_computable"], str)):
        raise CacheEntryError("not a 'not computable' record")


def _cached(cache: Cache, feature: str, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    kind = f"reference-{feature}"
    hit = cache.load_array(kind, key, check=CHECKS.get(feature))
    if hit is not None:
        return hit
    failed = cache.load_json(kind, key, check=_check_failure)
    if failed is not None:
        raise NotComputable(str(failed["not_computable"]))
    try:
        value = compute()
    except NotComputable as exc:
        cache.save_json(kind, key, {"not_computable": str(exc)})
        raise
    cache.save_array(kind, key, value)
    return value


def cached_f0(cache: Cache, key: str, wav16: np.ndarray) -> np.ndarray:
    """The reference F0 contour (see :func:`tokbench.metrics.pitch.f0_contour`) stored under
    ``key``, computed from ``wav16`` and saved on a miss."""
    return _cached(cache, "f0", key, lambda: f0_contour(wav16))


def cached_embedding(cache: Cache, key: str, wav16: np.ndarray) -> np.ndarray:
    """The reference speaker embedding (see :func:`tokbench.metrics.speaker.speaker_embedding`)
    stored under ``key``, computed from ``wav16`` and saved on a miss; raises NotComputable
    (also from the cache) when the reference has no usable speech."""
    return _cached(cache, "speaker", key, lambda: speaker_embedding(wav16, role="reference"))


def cached_speech_seconds(cache: Cache, key: str, wav16: np.ndarray) -> float:
    """Seconds of speech the reference VAD finds in the reference (cached under ``key``)."""
    from tokbench.metrics.vad import speech_seconds

    value = _cached(cache, "speech", key,
                    lambda: np.asarray([speech_seconds(wav16)], dtype=np.float64))
    return float(np.asarray(value).ravel()[0])


def cached_mcep(cache: Cache, key: str, wav16: np.ndarray) -> np.ndarray:
    """The reference's mel cepstra for ``mcd`` (cached under ``key``)."""
    from tokbench.metrics.distortion import mel_cepstrum

    return _cached(cache, "mcep", key, lambda: mel_cepstrum(wav16, "reference"))


def cached_model_embedding(cache: Cache, feature: str, key: str, wav16: np.ndarray,
                           embed: Callable[[np.ndarray, str], np.ndarray]) -> np.ndarray:
    """The reference's embedding by a model (``embed(wav16, "reference")``) for ``feature`` (a
    model-based entry of :data:`FEATURES`, e.g. ``wavlm_sv``), cached under ``key``."""
    return _cached(cache, feature, key, lambda: embed(wav16, "reference"))

