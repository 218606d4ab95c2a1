"""Speaker similarity (SECS) with Resemblyzer's ``VoiceEncoder``.

The encoder (weights ship inside the package, so it works offline) is loaded lazily, once per
process, on the CPU: importing this module loads nothing. Embeddings are 256-d and
L2-normalised, so the cosine of two of them is their dot product.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from tokbench.io.cache import CacheEntryError
from tokbench.metrics.base import NotComputable
from tokbench.metrics.inputs import as_signal, require_sound
from tokbench.metrics.kit import MetricSpec, Needs, SignalInput, declare
from tokbench.metrics.reference_features import package_version, register_feature
from tokbench.protocol import SCORING_SAMPLE_RATE

MODEL = "resemblyzer VoiceEncoder"


@functools.lru_cache(maxsize=1)
def voice_encoder() -> Any:
    """This process's ``resemblyzer.VoiceEncoder('cpu')`` (loaded on first use)."""
    from resemblyzer import VoiceEncoder

    return VoiceEncoder("cpu", verbose=False)


def speaker_embedding(wav16: np.ndarray, role: str = "signal") -> np.ndarray:
    """Utterance embedding (float32 [256]) of a 16 kHz signal: ``preprocess_wav`` (volume
    normalisation, VAD trimming of long silences) then ``embed_utterance``. NotComputable for
    digital silence, when the VAD keeps nothing, or if the result is not finite; ``role``
    ("reference", "output", ...) names the signal in those reasons."""
    from resemblyzer import preprocess_wav

    x = as_signal(wav16, role, np.float32)
    # Resemblyzer's volume normalisation divides by the RMS: silence would become NaN.
    require_sound(x, role)
    wav = preprocess_wav(x, source_sr=SCORING_SAMPLE_RATE)
    if len(wav) == 0:
        raise NotComputable(f"voice activity detection found no speech in the {role} "
                            "(Resemblyzer preprocess_wav left no samples)")
    emb = np.asarray(voice_encoder().embed_utterance(wav), dtype=np.float32)
    if not np.all(np.isfinite(emb)):
        raise NotComputable(f"the speaker embedding of the {role} is not finite")
    return emb


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors; NotComputable if either has zero norm or the result is
    not finite."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"cannot compare embeddings of shapes {a.shape} and {b.shape}")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if not (na > 0 and nb > 0 and np.isfinite(na) and np.isfinite(nb)):
        raise NotComputable("an embedding has zero or non-finite norm")
    return float(np.dot(a, b) / (na * nb))


def secs(ref_emb: np.ndarray, hyp16: np.ndarray) -> float:
    """SECS: cosine of the reference embedding (see ``tokbench.metrics.reference_features.cached_embedding``)
    and the embedding of the 16 kHz output. NotComputable as :func:`speaker_embedding`."""
    return cosine(ref_emb, speaker_embedding(hyp16, role="output"))


def _check_embedding(value: np.ndarray) -> None:
    # Resemblyzer's embeddings are L2-normalised 256-d vectors.
    if value.shape != (256,) or not np.isfinite(value).all() \
            or abs(float(np.linalg.norm(value)) - 1.0) > 1e-3:
        norm = float(np.linalg.norm(value)) if value.size else 0.0
        raise CacheEntryError(f"a speaker embedding is a unit-norm 256-d vector, got shape "
                              f"{value.shape} with norm {norm:.4g}")


register_feature("speaker", lambda: {"model": MODEL, "resemblyzer": package_version("resemblyzer"),
                                     "preprocess": "preprocess_wav"}, _check_embedding)


def _secs_of(x: SignalInput) -> float:
    ref_emb = x.cached("speaker", lambda: speaker_embedding(x.reference_raw, role="reference"))
    return secs(ref_emb, x.output)


declare(
    MetricSpec("secs", "speaker embedding cosine similarity (Resemblyzer) of output vs input",
               "higher", "cosine", lo=0.0, hi=1.0, valid_lo=-1.0, groups=("speaker",),
               default=True),
    where="worker", compute=_secs_of,
    needs=Needs(reference=True, speech=True, sample_rate=SCORING_SAMPLE_RATE),
    protocol={"secs": {"model": "resemblyzer VoiceEncoder", "preprocess": "preprocess_wav",
                       "similarity": "cosine"}},
    # Resemblyzer and the librosa submodules its preprocessing loads lazily on first use
    preload=("torch", "torch.utils.serialization", "resemblyzer", "librosa.filters",
             "librosa.core.audio", "librosa.core.spectrum", "librosa.core.constantq",
             "librosa.core.pitch", "librosa.feature", "librosa.feature.spectral",
             "librosa.sequence", "librosa.util.utils"),
    packages=("resemblyzer",),
    citation="Wan et al., ICASSP 2018 (GE2E); the Guo et al. 2025 review's SECS",
    implementation="resemblyzer VoiceEncoder (weights ship with the package), preprocess_wav on "
                   "both sides", license="Apache-2.0 (resemblyzer, its weights)",
)
