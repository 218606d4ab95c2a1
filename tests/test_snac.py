"""SNAC from its own package: loading errors, the multi-rate layout and seeded decoding on the
tiny checkpoint (the contract itself is checked for every preset by test_conformance)."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from tokbench.resolve import load_tokenizer
from tokbench.types import TokenizerSetupError

pytest.importorskip("snac")


@pytest.fixture(scope="module")
def tiny24(tiny_checkpoint):
    from tokbench.adapters.snac import Snac24kTokenizer

    return tiny_checkpoint(Snac24kTokenizer)[1]  # built once per session (conftest)


def test_codes_follow_the_multi_rate_layout(tiny24):
    tok = load_tokenizer("snac-24k", checkpoint=str(tiny24))
    x = torch.randn(1, 24_000) * 0.1
    tokens = tok.encode(x, torch.tensor([24_000]))
    frames = int(tokens.frame_lengths[0])
    assert frames == -(-24_000 // 512)  # 47 fast frames of 512 samples
    codes = tokens.item(0)
    for q, stride in enumerate((4, 2, 1)):
        slow = codes[q, ::stride]
        assert torch.equal(codes[q], slow.repeat_interleave(stride)[:frames])
    assert len(torch.unique(codes[2])) >= 2  # codes vary with the input (not all padding zeros)
    out = tok.decode(tokens)
    assert out.wav.shape == (1, 24_000) and out.sample_rate == 24_000


def test_decoding_is_seeded_and_leaves_the_global_rng_alone(tiny24):
    tok = load_tokenizer("snac-24k", checkpoint=str(tiny24))
    x = torch.randn(1, 5000) * 0.1
    tokens = tok.encode(x, torch.tensor([5000]))
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = tok.decode(tokens).wav
    assert torch.equal(torch.rand(1), expected_next)  # the noise did not draw from the global RNG
    torch.manual_seed(999)
    assert torch.equal(tok.decode(tokens).wav, first)


def test_a_checkpoint_of_another_snac_is_refused(tiny24, tmp_path):
    cfg = json.loads((tiny24 / "config.json").read_text())
    cfg["sampling_rate"] = 32_000
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "pytorch_model.bin").write_bytes((tiny24 / "pytorch_model.bin").read_bytes())
    with pytest.raises(TokenizerSetupError, match="sampling rate, hop.*expects"):
        load_tokenizer("snac-24k", checkpoint=str(tmp_path))


def test_missing_weights_offline_name_both_fixes(tmp_path, monkeypatch):
    from tokbench.io.hub import ModelNotAvailableError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelNotAvailableError, match="--checkpoint"):
        load_tokenizer("snac-24k")


def test_missing_package_names_the_extra(monkeypatch, tiny24):
    monkeypatch.setitem(sys.modules, "snac", None)
    with pytest.raises(TokenizerSetupError, match=r"tokbench\[snac\]"):
        load_tokenizer("snac-24k", checkpoint=str(tiny24))
