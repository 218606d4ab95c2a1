import numpy as np
import pytest
import torch

from tokbench.resolve import load_tokenizer


def test_identity_round_trip_is_16_bit_exact():
    tok = load_tokenizer("identity")
    x = torch.tensor([[-1.0, -0.5, 0.0, 0.25, 0.999, 1.0]])
    t = tok.encode(x, torch.tensor([6]))
    assert t.codes.shape == (1, 1, 6) and int(t.codes.min()) >= 0 and int(t.codes.max()) <= 65535
    y = tok.decode(t)
    assert torch.max(torch.abs(y.wav - x)) <= 1 / 32768 + 1e-7
    assert tok.meta.bitrate_nominal == 256_000 and tok.meta.kind == "reference"


def test_mulaw_codes_and_error_bound():
    tok = load_tokenizer("mulaw")
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(-1, 1, (3, 4000)).astype(np.float32))
    t = tok.encode(x, torch.tensor([4000, 3000, 10]))
    assert int(t.codes.min()) >= 0 and int(t.codes.max()) <= 255
    assert len(torch.unique(t.codes)) > 200  # uses the codebook
    y = tok.decode(t)
    # mu-law error is relative: small near zero, about 3% of full scale at the peaks
    err = torch.abs(y.wav - x)
    assert float(err.max()) < 0.035
    small = x.abs() < 0.01
    assert float(err[small].max()) < 0.0005
    assert tok.meta.bitrate_nominal == 128_000 and tok.meta.token_rate == 16000


@pytest.mark.parametrize("name", ["identity", "mulaw"])
def test_batched_equals_one_at_a_time(name):
    tok = load_tokenizer(name)
    rng = np.random.default_rng(1)
    items = [torch.from_numpy(rng.uniform(-0.9, 0.9, n).astype(np.float32)) for n in (1600, 800, 50)]
    from tokbench.types import Audio

    batch = Audio.from_list(items, 16000)
    tb = tok.encode(batch.wav, batch.lengths)
    yb = tok.decode(tb)
    for i, x in enumerate(items):
        ti = tok.encode(x[None], torch.tensor([len(x)]))
        assert torch.equal(tb.item(i), ti.item(0))
        assert torch.equal(yb.item(i), tok.decode(ti).item(0))


def test_encode_rejects_bad_input():
    tok = load_tokenizer("mulaw")
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        tok.encode(torch.zeros(10), torch.tensor([10]))
    with pytest.raises(TypeError, match="float"):
        tok.encode(torch.zeros(1, 10, dtype=torch.long), torch.tensor([10]))
