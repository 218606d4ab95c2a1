
import pytest
import torch

from tokbench.types import Audio, ModelSource, TokenizerMeta, Tokens


def meta(**kw):
    base = dict(name="x", family="f", kind="acoustic", sample_rate=24000, frame_rate=12.5,
                n_codebooks=8, codebook_sizes=(2048,) * 8)
    base.update(kw)
    return TokenizerMeta(**base)


def test_meta_bitrate_and_token_rate():
    m = meta()
    assert m.bitrate_nominal == pytest.approx(12.5 * 8 * 11)  # Mimi: 1.1 kbps
    assert m.token_rate == 100.0
    dac44 = meta(sample_rate=44100, frame_rate=44100 / 512, n_codebooks=9, codebook_sizes=(1024,) * 9)
    assert dac44.frame_rate == pytest.approx(86.1328125)
    assert dac44.bitrate_nominal == pytest.approx(44100 / 512 * 90)


def test_meta_is_frozen_and_validated():
    m = meta(options={"n_q": 8})
    with pytest.raises(AttributeError):
        m.name = "y"
    with pytest.raises(TypeError):
        m.options["n_q"] = 4  # read-only view
    with pytest.raises(ValueError, match="codebooks"):
        meta(n_codebooks=2, codebook_sizes=(1024,))
    with pytest.raises(ValueError, match="kind"):
        meta(kind="magic")
    with pytest.raises(ValueError, match="capabilit"):
        meta(capabilities=frozenset({"fly"}))
    d = meta(source=ModelSource("kyutai/mimi", "main", "abc")).to_dict()
    assert d["source"]["resolved"] == "abc" and d["codebook_sizes"] == [2048] * 8


def test_tokens_batch_and_unbatch():
    a, b = torch.arange(6).view(2, 3), torch.arange(4).view(2, 2) + 10
    t = Tokens.from_list([a, b])
    assert t.codes.shape == (2, 2, 3) and t.frame_lengths.tolist() == [3, 2]
    assert torch.equal(t.item(0), a) and torch.equal(t.item(1), b)
    with pytest.raises(ValueError):
        Tokens(torch.zeros(2, 3, dtype=torch.long), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="lengths"):
        Tokens(torch.zeros(1, 1, 3, dtype=torch.long), torch.tensor([4]))
    with pytest.raises(ValueError, match="codebooks"):
        Tokens.from_list([a, torch.zeros(3, 2, dtype=torch.long)])


def test_audio_batch_pads_with_zeros():
    x = Audio.from_list([torch.ones(5), torch.ones(3)], 16000)
    assert x.wav.shape == (2, 5) and x.lengths.tolist() == [5, 3]
    assert x.wav[1, 3:].abs().sum() == 0
    assert torch.equal(x.item(1), torch.ones(3))
    with pytest.raises(ValueError, match="mono"):
        Audio.from_list([torch.ones(2, 5)], 16000)
    assert float(x.wav.sum()) == 8.0  # 5 + 3 ones, zero padding
