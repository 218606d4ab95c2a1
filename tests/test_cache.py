import numpy as np
import torch

from tokbench.data import Dataset, Utterance
from tokbench.io.cache import Cache, cache_root
from tokbench.run.token_cache import token_cache_key
from tokbench.types import ModelSource, TokenizerMeta


def _meta(name="m", revision="abc", options=None):
    return TokenizerMeta(name=name, family="f", kind="acoustic", sample_rate=16000, frame_rate=50.0,
                         n_codebooks=1, codebook_sizes=(1024,), source=ModelSource("org/m", "main", revision),
                         options=options or {"n_q": 8})


def test_cache_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKBENCH_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    monkeypatch.delenv("TOKBENCH_CACHE")
    assert cache_root().parts[-2:] == (".cache", "tokbench")


def test_round_trips(tmp_path):
    c = Cache(tmp_path)
    k = Cache.key(a=1)
    assert c.load_tensors("tokens", k) is None
    c.save_tensors("tokens", k, {"codes": torch.arange(5)})
    assert torch.equal(c.load_tensors("tokens", k)["codes"], torch.arange(5))
    c.save_array("f0", k, np.array([1.0, 2.0]))
    assert np.array_equal(c.load_array("f0", k), [1.0, 2.0])
    c.save_json("asr", k, {"text": "hi"})
    assert c.load_json("asr", k) == {"text": "hi"}
    c.path("tokens", k, ".pt").write_bytes(b"torn")  # a corrupt entry is a miss, not a crash
    assert c.load_tensors("tokens", k) is None
    assert Cache(tmp_path, enabled=False).load_json("asr", k) is None


def test_token_keys_separate_models_revisions_options_and_data():
    ds = Dataset("d", "rev1", [Utterance("u", "x.wav")])
    base = token_cache_key(_meta(), ds, "u")
    assert base == token_cache_key(_meta(), ds, "u")
    assert base != token_cache_key(_meta(name="other"), ds, "u")
    assert base != token_cache_key(_meta(revision="def"), ds, "u")
    assert base != token_cache_key(_meta(options={"n_q": 4}), ds, "u")
    assert base != token_cache_key(_meta(), Dataset("d", "rev2", ds.utterances), "u")
    assert base != token_cache_key(_meta(), ds, "v")
