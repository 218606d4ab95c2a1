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

Metric modules register the features they cache (:func:`register_feature`); a worker
computation reads them through :meth:`tokbench.metrics.kit.SignalInput.cached`.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable

import numpy as np

from tokbench.io.cache import Cache, CacheEntryError
from tokbench.metrics.base import NotComputable


def package_version(package: str) -> str:
    """The installed version of ``package`` ("unknown" if it is not installed): part of the
    settings of a feature computed with it."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# feature -> what determines it besides the audio (part of the cache key), and a check of a
# cached value's shape and values (a foreign entry is recomputed, never used). Each metric
# module registers the features it caches (register_feature).
FEATURES: dict[str, Callable[[], dict]] = {}
CHECKS: dict[str, Callable[[np.ndarray], None]] = {}


def register_feature(name: str, settings: Callable[[], dict],
                     check: Callable[[np.ndarray], None]) -> None:
    """Declare reference feature ``name``: ``settings()`` goes into every key, ``check``
    validates cached values. Called at import by the metric module that computes it."""
    FEATURES[name] = settings
    CHECKS[name] = check


def reference_key(dataset_name: str, dataset_revision: str, utterance_id: str, feature: str,
                  model: str | None = None) -> str:
    """Cache key of reference ``feature`` (one of :data:`FEATURES`) of one utterance;
    ``model`` names the exact weights of a model-based feature (e.g. their resolved commit)."""
    if feature not in FEATURES:  # its module may not be imported yet in this process
        from tokbench.metrics.kit import registry

        registry.names()
    if feature not in FEATURES:
        raise ValueError(f"unknown reference feature {feature!r}; known: {sorted(FEATURES)}")
    extra = {} if model is None else {"model_weights": model}
    return Cache.key(dataset=dataset_name, dataset_revision=dataset_revision,
                     utterance=utterance_id, feature=feature, settings=FEATURES[feature](),
                     **extra)


def check_vector(value: np.ndarray) -> None:
    """A cached model embedding: a finite 1-D vector."""
    if value.ndim != 1 or value.size == 0 or not np.isfinite(value).all():
        raise CacheEntryError(f"an embedding is a finite 1-D vector, got shape {value.shape}")


def _check_failure(value: object) -> None:
    if not (isinstance(value, dict) and set(value) == {"not_computable"}
            and isinstance(value["not_computable"], str)):
        raise CacheEntryError("not a 'not computable' record")


def cached_feature(cache: Cache, feature: str, key: str, compute: Callable[[], np.ndarray],
                   check: Callable[[np.ndarray], None] | None = None) -> np.ndarray:
    """Reference ``feature`` stored under ``key``: from the cache, or ``compute()``d and saved
    on a miss. A NotComputable reference is cached as such and raised again."""
    kind = f"reference-{feature}"
    hit = cache.load_array(kind, key, check=check or CHECKS.get(feature))
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
    """The reference F0 contour (:func:`tokbench.metrics.pitch.f0_contour`) stored under
    ``key``, computed from ``wav16`` and saved on a miss."""
    from tokbench.metrics.pitch import f0_contour

    return cached_feature(cache, "f0", key, lambda: f0_contour(wav16))


def cached_embedding(cache: Cache, key: str, wav16: np.ndarray) -> np.ndarray:
    """The reference speaker embedding (:func:`tokbench.metrics.speaker.speaker_embedding`)
    stored under ``key``; raises NotComputable (also from the cache) when the reference has no
    usable speech."""
    from tokbench.metrics.speaker import speaker_embedding

    return cached_feature(cache, "speaker", key, lambda: speaker_embedding(wav16, role="reference"))


def cached_speech_seconds(cache: Cache, key: str, wav16: np.ndarray) -> float:
    """Seconds of speech the reference VAD finds in the reference (cached under ``key``)."""
    from tokbench.metrics.vad import speech_seconds

    value = cached_feature(cache, "speech", key,
                           lambda: np.asarray([speech_seconds(wav16)], dtype=np.float64))
    return float(np.asarray(value).ravel()[0])


def cached_model_embedding(cache: Cache, feature: str, key: str, wav16: np.ndarray,
                           embed: Callable[[np.ndarray, str], np.ndarray]) -> np.ndarray:
    """The reference's embedding by a model (``embed(wav16, "reference")``) for ``feature`` (a
    model-based feature, e.g. ``wavlm_sv``), cached under ``key``."""
    return cached_feature(cache, feature, key, lambda: embed(wav16, "reference"))
