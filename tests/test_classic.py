"""Classic codecs (Opus, Codec2): real encode/decode of the bundled sample set."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from tokbench.data import sample
from tokbench.io.audio import resample
from tokbench.metrics.signal import pesq_score, stoi_score
from tokbench.registry import tokenizers
from tokbench.resolve import load_tokenizer, resolve_tokenizer
from tokbench.testing import check_tokenizer
from tokbench.types import Audio, TokenizerSetupError


def _require_bindings() -> None:
    """Skip where the `classic` extra (or libopus) is missing, except in CI, which installs it."""
    from tokbench.adapters.classic.opus import _opus
    from tokbench.adapters.framed import require

    try:
        _opus()
        require("pycodec2", "classic", needed_by="tests/test_classic.py")
        require("av", "classic", needed_by="tests/test_classic.py")
    except TokenizerSetupError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc), allow_module_level=True)


_require_bindings()


def _speech(rate: int) -> list[np.ndarray]:
    ds = sample()
    return [resample(ds.load(u).wav, ds.load(u).sample_rate, rate) for u in ds]


@pytest.fixture(scope="module")
def speech16() -> list[np.ndarray]:
    return _speech(16_000)


def _round_trip(name: str, items: list[np.ndarray]):
    tok = load_tokenizer(name)
    batch = Audio.from_list([torch.from_numpy(x) for x in items], tok.meta.sample_rate)
    tokens = tok.encode(batch.wav, batch.lengths)
    return tok, tokens, tok.decode(tokens)


def _quality(name: str, speech16: list[np.ndarray]) -> tuple[float, float]:
    """Mean PESQ-WB and STOI over the sample set, scored at 16 kHz as the protocol does."""
    tok = load_tokenizer(name)
    rate = tok.meta.sample_rate
    items = [resample(x, 16_000, rate) for x in speech16]
    _tok, _tokens, out = _round_trip(name, items)
    pesq, stoi = [], []
    for i, ref in enumerate(speech16):
        hyp = resample(out.item(i).numpy(), rate, 16_000)[: len(ref)]
        hyp = np.pad(hyp, (0, len(ref) - len(hyp)))
        pesq.append(pesq_score(ref, hyp, 16_000, "wb"))
        stoi.append(stoi_score(ref, hyp))
    return float(np.mean(pesq)), float(np.mean(stoi))


@pytest.mark.slow
@pytest.mark.parametrize("codec,ladder", [("opus", ("opus-6kbps", "opus-12kbps", "opus-24kbps")),
                                          ("codec2", ("codec2-700c", "codec2-1600", "codec2-3200")),
                                          ("amrnb", ("amrnb-4.75kbps", "amrnb-7.95kbps", "amrnb-12.2kbps"))])
def test_quality_rises_with_bitrate(codec, ladder, speech16):
    scores = [_quality(name, speech16) for name in ladder]
    pesq, stoi = [s[0] for s in scores], [s[1] for s in scores]
    assert pesq == sorted(pesq) and len(set(pesq)) == len(pesq), (codec, pesq)
    assert stoi == sorted(stoi) and len(set(stoi)) == len(stoi), (codec, stoi)
    if codec == "opus":  # speech-mode Opus is intelligible at every rate, near-transparent at 24k
        assert stoi[0] > 0.6 and pesq[-1] > 3.5 and stoi[-1] > 0.95


@pytest.mark.parametrize("name", ["opus-6kbps", "opus-32kbps", "codec2-700c", "codec2-2400",
                                  "amrnb-5.9kbps"])
def test_lengths_codes_and_actual_bitrate(name, speech16):
    tok = load_tokenizer(name)
    meta, rate = tok.meta, tok.meta.sample_rate
    items = [resample(x, 16_000, rate) for x in speech16[:3]] + [np.zeros(7, np.float32)]
    _tok, tokens, out = _round_trip(name, items)
    for i, x in enumerate(items):
        assert int(out.lengths[i]) == len(x)  # decoded length = input length
        frames = int(tokens.frame_lengths[i])
        hop = rate / meta.frame_rate
        assert frames == max(1, math.ceil((len(x) + tok.delay) / hop))
        codes = tokens.item(i)
        assert codes.shape[0] == meta.n_codebooks
        for q, size in enumerate(meta.codebook_sizes):
            assert 0 <= int(codes[q].min()) and int(codes[q].max()) < size
    # Bitrate from the actual packets (bits sent per second of packets) = the nominal bitrate.
    bits = sum(len(p) * 8 if meta.family == "opus" else tok.bits for p in _packets(tok, tokens))
    seconds = int(tokens.frame_lengths.sum()) / meta.frame_rate
    assert bits / seconds == pytest.approx(meta.bitrate_nominal, rel=1e-9)
    expected = {"opus-6kbps": 6000, "opus-32kbps": 32000, "codec2-700c": 700, "codec2-2400": 2400,
                "amrnb-5.9kbps": 5900}
    assert meta.bitrate_nominal == pytest.approx(expected[name])


def _packets(tok, tokens) -> list[bytes]:
    from tokbench.adapters.classic.packets import codes_to_packet

    return [codes_to_packet(tokens.item(b)[:, f].tolist(), tok.bits)
            for b in range(tokens.batch_size) for f in range(int(tokens.frame_lengths[b]))]


def _best_lag(name: str, items: list[np.ndarray], lags: range) -> int:
    """The extra delay (samples) that maximises mean STOI between input and decoded output."""
    tok = load_tokenizer(name)
    _tok, _tokens, out = _round_trip(name, [np.pad(x, (0, 2 * lags.stop)) for x in items])
    rate = tok.meta.sample_rate
    totals = {}
    for lag in lags:
        s = 0.0
        for i, x in enumerate(items):
            hyp = out.item(i).numpy()
            shifted = hyp[lag: lag + len(x)] if lag >= 0 else np.pad(hyp, (-lag, 0))[: len(x)]
            s += stoi_score(resample(x, rate, 16_000), resample(shifted, rate, 16_000))
        totals[lag] = s
    return max(totals, key=totals.get)


@pytest.mark.slow
# (AMR and Opus are waveform codecs: test_waveform_codecs_are_aligned checks them to the sample)
@pytest.mark.parametrize("name,step", [("codec2-3200", 20), ("codec2-700c", 20), ("opus-24kbps", 4)])
def test_codec_delay_is_compensated(name, step, speech16):
    """After the adapter's delay compensation the best alignment is no further shift."""
    rate = load_tokenizer(name).meta.sample_rate
    items = [resample(x, 16_000, rate) for x in speech16[::3]]
    assert abs(_best_lag(name, items, range(-3 * step, 3 * step + 1, step))) <= step


@pytest.mark.parametrize("name", ["opus-24kbps", "amrnb-12.2kbps"])
def test_waveform_codecs_are_aligned(name, speech16):
    """Opus and AMR match the waveform: output correlates best with the input at lag 0."""
    rate = load_tokenizer(name).meta.sample_rate
    items = [resample(x, 16_000, rate) for x in speech16[:2]]
    _tok, _tokens, out = _round_trip(name, items)
    for i, x in enumerate(items):
        y = out.item(i).numpy()
        lags = range(-20, 21)
        corr = [float(np.dot(x[40:-40], y[40 + d: len(y) - 40 + d])) for d in lags]
        assert abs(list(lags)[int(np.argmax(corr))]) <= 1


def test_batched_equals_one_at_a_time(speech16):
    for name in ("opus-8kbps", "codec2-1200", "amrnb-7.4kbps"):
        tok = load_tokenizer(name)
        items = [resample(x, 16_000, tok.meta.sample_rate)[: 4000 + 999 * i]
                 for i, x in enumerate(speech16[:3])]
        _tok, batched, out = _round_trip(name, items)
        for i, x in enumerate(items):
            _t, one, one_out = _round_trip(name, [x])
            assert torch.equal(batched.item(i), one.item(0))
            assert torch.equal(out.item(i), one_out.item(0))


@pytest.mark.parametrize("name", [n for n in tokenizers.names() if n.startswith(("opus-", "codec2-"))])
def test_every_classic_preset_meets_the_contract(name):
    tok = load_tokenizer(name)
    report = check_tokenizer(tok)
    lengths = torch.tensor(report.lengths)
    assert list(report.frame_lengths) == tok.frames_for(lengths).tolist()


def test_kind_and_static_metadata():
    meta = resolve_tokenizer("opus-12kbps").meta
    assert (meta.kind, meta.family, meta.frame_rate, meta.n_codebooks) == ("classic", "opus", 50.0, 30)
    meta = resolve_tokenizer("codec2-700c").meta
    assert (meta.sample_rate, meta.frame_rate, meta.codebook_sizes) == (8000, 25.0, (256, 256, 256, 16))


def test_bad_options_name_the_fix():
    from tokbench.options import OptionError

    with pytest.raises((OptionError, ValueError), match="multiple of 8"):
        load_tokenizer("opus-12kbps", {"kbps": 12.1})
    with pytest.raises((OptionError, ValueError), match="mode must be one of"):
        load_tokenizer("codec2-3200", {"mode": "999"})


def test_missing_binding_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pycodec2", None)  # import of it now fails
    with pytest.raises(TokenizerSetupError, match=r"tokbench\[classic\]"):
        load_tokenizer("codec2-3200")


def test_codec2_decodes_the_same_whatever_was_decoded_before(speech16):
    """libcodec2's unvoiced phases come from a process-global generator: the adapter resets it."""
    tok = load_tokenizer("codec2-3200")
    x = torch.from_numpy(resample(speech16[0], 16_000, 8_000))[None]
    tokens = tok.encode(x, torch.tensor([x.shape[1]]))
    first = tok.decode(tokens).wav
    tok.decode(tok.encode(torch.flip(x, [1]), torch.tensor([x.shape[1]])))  # moves the generator
    assert torch.equal(tok.decode(tokens).wav, first)


@pytest.mark.parametrize("name", ["amrnb-4.75kbps", "amrnb-12.2kbps", "codec2-700c", "codec2-1200"])
def test_packets_survive_the_code_layout(name, speech16):
    """Bits past the frame's last bit are zero, so codes -> packet gives the codec's packet back."""
    from tokbench.adapters.classic.packets import codes_to_packet, packet_to_codes

    tok = load_tokenizer(name)
    pcm = (resample(speech16[1], 16_000, tok.meta.sample_rate) * 32767).astype(np.int16)
    frames = [pcm[i * tok.hop:(i + 1) * tok.hop] for i in range(len(pcm) // tok.hop)]
    packets = list(tok.encode_item(iter(frames)))
    assert len(packets) == len(frames) and len(set(packets)) > len(packets) // 2
    for p in packets:
        assert codes_to_packet(packet_to_codes(p, tok.bits), tok.bits) == p
