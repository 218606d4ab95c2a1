"""Reference-side feature cache: computed once per (dataset, revision, utterance, feature)."""

import pickle

import numpy as np
import pytest

from tokbench.io.cache import Cache
from tokbench.metrics import pitch, speaker
from tokbench.metrics.base import NotComputable
from tokbench.metrics.reference_features import cached_embedding, cached_f0, reference_key

from .synth import harmonic


def _counting(monkeypatch, name, fn):
    """Count the calls of the function that computes a feature, in the metric module that owns
    it (the cache helpers import it from there at call time)."""
    from tokbench.metrics import pitch, speaker

    owner = pitch if name == "f0_contour" else speaker
    calls = []

    def wrapped(wav, **kwargs):
        calls.append(len(wav))
        return fn(wav, **kwargs)

    monkeypatch.setattr(owner, name, wrapped)
    return calls


def test_keys_separate_datasets_revisions_utterances_and_features():
    base = reference_key("sample", "r1", "u1", "f0")
    assert base == reference_key("sample", "r1", "u1", "f0")
    others = {reference_key("other", "r1", "u1", "f0"), reference_key("sample", "r2", "u1", "f0"),
              reference_key("sample", "r1", "u2", "f0"), reference_key("sample", "r1", "u1", "speaker")}
    assert len(others) == 4 and base not in others
    with pytest.raises(ValueError, match="unknown reference feature"):
        reference_key("sample", "r1", "u1", "pitch")


def test_f0_is_computed_once(tmp_path, monkeypatch):
    calls = _counting(monkeypatch, "f0_contour", pitch.f0_contour)
    cache = Cache(tmp_path)
    wav = harmonic(150.0, 0.5)
    key = reference_key("sample", "r1", "u1", "f0")
    first = cached_f0(cache, key, wav)
    second = cached_f0(cache, key, wav)
    assert calls == [len(wav)]
    assert second.dtype == np.float64
    np.testing.assert_array_equal(first, second)
    # Another process gets the same cache from a pickled Cache and still does not recompute.
    np.testing.assert_array_equal(cached_f0(pickle.loads(pickle.dumps(cache)), key, wav), first)
    assert len(calls) == 1
    cached_f0(cache, reference_key("sample", "r2", "u1", "f0"), wav)  # new revision: recomputed
    assert len(calls) == 2


def test_embedding_is_computed_once(tmp_path, monkeypatch):
    vec = np.arange(256, dtype=np.float32)
    vec /= np.linalg.norm(vec)  # resemblyzer's embeddings have unit norm (the cache checks it)
    calls = _counting(monkeypatch, "speaker_embedding", lambda wav, **kw: vec)
    cache = Cache(tmp_path)
    key = reference_key("sample", "r1", "u1", "speaker")
    for _ in range(3):
        np.testing.assert_array_equal(cached_embedding(cache, key, np.ones(10)), vec)
    assert len(calls) == 1


def test_not_computable_reference_is_cached_with_its_reason(tmp_path, monkeypatch):
    calls = _counting(monkeypatch, "speaker_embedding", speaker.speaker_embedding)
    cache = Cache(tmp_path)
    key = reference_key("sample", "r1", "silent", "speaker")
    silence = np.zeros(16000, np.float32)
    for _ in range(2):
        with pytest.raises(NotComputable, match="reference is digital silence"):
            cached_embedding(cache, key, silence)
    assert len(calls) == 1


def test_disabled_cache_always_computes(tmp_path, monkeypatch):
    calls = _counting(monkeypatch, "f0_contour", lambda wav, **kw: np.zeros(3))
    cache = Cache(tmp_path, enabled=False)
    key = reference_key("sample", "r1", "u1", "f0")
    cached_f0(cache, key, np.ones(10))
    cached_f0(cache, key, np.ones(10))
    assert len(calls) == 2
