"""Issue 13: cache entries carry their key and a checksum; foreign or damaged entries are refused,
reported and recomputed, never used."""

import shutil

import numpy as np
import pytest
import torch

from tokbench.data import Dataset, Utterance
from tokbench.io.cache import Cache
from tokbench.metrics import pitch, speaker
from tokbench.metrics.base import NotComputable
from tokbench.metrics.reference_features import cached_embedding, cached_f0, reference_key
from tokbench.run.token_cache import load_tokens, save_tokens, token_cache_key
from tokbench.types import ModelSource, TokenizerMeta

from .synth import harmonic


def _counting(monkeypatch, name, fn):
    """Count the calls of a feature's function in the metric module that owns it (the cache
    helpers import it from there at call time)."""
    calls = []
    owner = pitch if name == "f0_contour" else speaker
    monkeypatch.setattr(owner, name, lambda wav, **kw: calls.append(1) or fn(wav, **kw))
    return calls


def test_an_f0_file_of_another_utterance_is_refused(tmp_path, monkeypatch, capsys):
    calls = _counting(monkeypatch, "f0_contour", pitch.f0_contour)
    cache = Cache(tmp_path)
    k1, k2 = reference_key("d", "r", "u1", "f0"), reference_key("d", "r", "u2", "f0")
    f1 = cached_f0(cache, k1, harmonic(120.0, 0.5))
    f2 = cached_f0(cache, k2, harmonic(240.0, 0.5))
    shutil.copy(cache.path("reference-f0", k1, ".npz"), cache.path("reference-f0", k2, ".npz"))
    again = cached_f0(cache, k2, harmonic(240.0, 0.5))
    np.testing.assert_array_equal(again, f2)
    assert not np.array_equal(again, f1) and len(calls) == 3  # recomputed
    assert "stored under another key" in capsys.readouterr().err
    assert len(cache.rejected) == 1
    # the refused file was moved aside, not deleted
    assert list((tmp_path / "reference-f0" / "rejected").iterdir())


def test_a_random_embedding_and_a_bad_shape_are_refused(tmp_path, monkeypatch):
    vec = np.ones(256, np.float32) / 16.0  # unit norm
    calls = _counting(monkeypatch, "speaker_embedding", lambda wav, **kw: vec)
    cache = Cache(tmp_path)
    key = reference_key("d", "r", "u", "speaker")
    cached_embedding(cache, key, np.ones(10))
    path = cache.path("reference-speaker", key, ".npz")
    # an array written in the old layout (no key, no checksum), as one would plant it
    np.savez(path, value=np.random.default_rng(0).standard_normal(256).astype(np.float32))
    np.testing.assert_array_equal(cached_embedding(cache, key, np.ones(10)), vec)
    # a correctly keyed entry of the wrong shape fails the value check
    cache.save_array("reference-speaker", key, np.ones(7, np.float32))
    np.testing.assert_array_equal(cached_embedding(cache, key, np.ones(10)), vec)
    path.write_bytes(b"")  # a zero-byte file
    np.testing.assert_array_equal(cached_embedding(cache, key, np.ones(10)), vec)
    assert len(calls) == 4 and len(cache.rejected) == 3


def test_a_planted_not_computable_entry_is_refused(tmp_path, monkeypatch):
    vec = np.ones(256, np.float32) / 16.0
    calls = _counting(monkeypatch, "speaker_embedding", lambda wav, **kw: vec)
    cache = Cache(tmp_path)
    key = reference_key("d", "r", "u", "speaker")
    p = cache.path("reference-speaker", key, ".json")
    p.parent.mkdir(parents=True)
    p.write_text('{"not_computable": "planted"}')
    np.testing.assert_array_equal(cached_embedding(cache, key, np.ones(10)), vec)
    assert len(calls) == 1 and "not a tokbench cache entry" in cache.rejected[0][1]


def test_a_genuine_not_computable_entry_is_still_used(tmp_path, monkeypatch):
    def fail(wav, **kw):
        raise NotComputable("no speech")

    calls = _counting(monkeypatch, "speaker_embedding", fail)
    cache = Cache(tmp_path)
    key = reference_key("d", "r", "u", "speaker")
    for _ in range(2):
        with pytest.raises(NotComputable, match="no speech"):
            cached_embedding(cache, key, np.ones(10))
    assert len(calls) == 1 and cache.rejected == []


def _meta(sizes=(256,)):
    return TokenizerMeta(name="m", family="f", kind="acoustic", sample_rate=16000, frame_rate=50.0,
                         n_codebooks=len(sizes), codebook_sizes=sizes, source=ModelSource())


def test_foreign_cached_tokens_are_refused(tmp_path):
    cache = Cache(tmp_path, adapter_code="v1")
    ds = Dataset("d", "r", [Utterance("a", "a.wav"), Utterance("b", "b.wav")])
    meta = _meta()
    save_tokens(cache, meta, ds, "a", torch.tensor([[1, 2, 3]]), 0.06)
    save_tokens(cache, meta, ds, "b", torch.tensor([[7, 8, 9, 10]]), 0.08)
    pa = cache.path("tokens", token_cache_key(meta, ds, "a", "v1"), ".pt")
    pb = cache.path("tokens", token_cache_key(meta, ds, "b", "v1"), ".pt")
    shutil.copy(pa, pb)  # utterance a's tokens planted as b's
    assert load_tokens(cache, meta, ds, "b") is None
    codes, _ = load_tokens(cache, meta, ds, "a")
    assert codes.tolist() == [[1, 2, 3]]
    # another adapter code version never sees these tokens
    assert load_tokens(Cache(tmp_path, adapter_code="v2"), meta, ds, "a") is None
    # tokens out of the codebook (a keyed entry with bad values) fail the check
    save_tokens(cache, meta, ds, "a", torch.tensor([[1, 999]]), 0.04)
    assert load_tokens(cache, meta, ds, "a") is None
    # an edited entry fails the checksum
    save_tokens(cache, meta, ds, "a", torch.tensor([[1, 2]]), 0.04)
    entry = torch.load(pa, weights_only=True)
    entry["tensors"]["codes"][0, 0] = 5
    torch.save(entry, pa)
    assert load_tokens(cache, meta, ds, "a") is None
    assert [why for _, why in cache.rejected] == [
        "it was stored under another key (" + token_cache_key(meta, ds, "a", "v1")[:12] + ")",
        "its value fails the check: token values outside [0, 256)",
        "its checksum does not match its contents"]
