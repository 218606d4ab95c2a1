"""UTMOS22 strong: our transformers-based model against an independent implementation written in
the released checkpoint's own layout (fairseq module names, weight norm as g/v, fairseq's even-
length padding with a key mask), on tiny random weights; the loader's checks; the scorer path."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tokbench.data import open_dataset
from tokbench.io.audio import resample
from tokbench.io.cache import Cache
from tokbench.metrics import utmos
from tokbench.metrics.base import NotComputable
from tokbench.run.scoring import ReferenceKeys, ScoreItem, Scorer

# Tiny widths; the released kernels, strides, 128-tap positional conv and head width 64.
TINY = utmos.UTMOSConfig(conv_dim=32, ssl_dim=128, ssl_layers=2, ssl_heads=2, ssl_ffn=96,
                         pos_conv_kernel=128, pos_conv_groups=16, domain_dim=8, judge_dim=8,
                         lstm_hidden=16, projection_hidden=24)


class OfficialLayout(nn.Module):
    """The UTMOS22 strong inference model as its checkpoint lays it out, written from the
    architecture (fairseq wav2vec 2.0 base, post-LN) with plain torch operations."""

    def __init__(self, c: utmos.UTMOSConfig):
        super().__init__()
        self.c = c
        w2v = nn.Module()
        fe = nn.Module()
        fe.conv_layers = nn.ModuleList()
        n_in = 1
        for i, (k, s) in enumerate(utmos.CONV_LAYERS):
            parts: list[nn.Module] = [nn.Conv1d(n_in, c.conv_dim, k, stride=s, bias=False), nn.Dropout(0.0)]
            if i == 0:
                parts.append(nn.GroupNorm(c.conv_dim, c.conv_dim, affine=True))
            parts.append(nn.GELU())
            fe.conv_layers.append(nn.Sequential(*parts))
            n_in = c.conv_dim
        w2v.feature_extractor = fe
        w2v.layer_norm = nn.LayerNorm(c.conv_dim)
        w2v.post_extract_proj = nn.Linear(c.conv_dim, c.ssl_dim)
        w2v.mask_emb = nn.Parameter(torch.rand(c.ssl_dim))
        enc = nn.Module()
        pos = nn.Module()
        pos.weight_v = nn.Parameter(torch.randn(c.ssl_dim, c.ssl_dim // c.pos_conv_groups,
                                                c.pos_conv_kernel) * 0.05)
        pos.weight_g = nn.Parameter(torch.rand(1, 1, c.pos_conv_kernel) + 0.5)
        pos.bias = nn.Parameter(torch.randn(c.ssl_dim) * 0.1)
        enc.pos_conv = nn.ModuleList([pos])
        enc.layer_norm = nn.LayerNorm(c.ssl_dim)
        enc.layers = nn.ModuleList()
        for _ in range(c.ssl_layers):
            layer = nn.Module()
            layer.self_attn = nn.Module()
            for p in ("q", "k", "v", "out"):
                setattr(layer.self_attn, f"{p}_proj", nn.Linear(c.ssl_dim, c.ssl_dim))
            layer.self_attn_layer_norm = nn.LayerNorm(c.ssl_dim)
            layer.fc1 = nn.Linear(c.ssl_dim, c.ssl_ffn)
            layer.fc2 = nn.Linear(c.ssl_ffn, c.ssl_dim)
            layer.final_layer_norm = nn.LayerNorm(c.ssl_dim)
            enc.layers.append(layer)
        w2v.encoder = enc
        self.wav2vec2 = w2v
        self.domain_emb = nn.Parameter(torch.randn(1, c.domain_dim))
        self.judge_emb = nn.Parameter(torch.randn(1, c.judge_dim))
        self.blstm = nn.LSTM(c.ssl_dim + c.domain_dim + c.judge_dim, c.lstm_hidden,
                             batch_first=True, bidirectional=True)
        self.projection = nn.Sequential(nn.Linear(2 * c.lstm_hidden, c.projection_hidden), nn.ReLU(),
                                        nn.Linear(c.projection_hidden, 1))
        with torch.no_grad():  # LayerNorm/GroupNorm affine parameters away from 1/0
            for m in self.modules():
                if isinstance(m, (nn.LayerNorm, nn.GroupNorm)):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)

    def _attention(self, layer: nn.Module, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        t, d = x.shape[0], x.shape[1]
        h = self.c.ssl_heads
        a = layer.self_attn

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(t, h, d // h).transpose(0, 1)  # (heads, T, hd)

        q = split(a.q_proj(x)) / math.sqrt(d // h)
        k, v = split(a.k_proj(x)), split(a.v_proj(x))
        logits = q @ k.transpose(1, 2)
        logits = logits.masked_fill(pad[None, None, :], float("-inf"))
        out = (logits.softmax(-1) @ v).transpose(0, 1).reshape(t, d)
        return a.out_proj(out)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:  # one utterance [T] -> scalar
        w = self.wav2vec2
        x = wave[None, None]
        for conv in w.feature_extractor.conv_layers:
            x = conv(x)
        x = w.post_extract_proj(w.layer_norm(x[0].T))  # (frames, dim)
        pos = w.encoder.pos_conv[0]
        # weight norm over every dimension but the kernel axis (fairseq: dim=2)
        weight = pos.weight_g * pos.weight_v / pos.weight_v.norm(dim=(0, 1), keepdim=True)
        k = self.c.pos_conv_kernel
        conv = F.conv1d(x.T[None], weight, pos.bias, padding=k // 2, groups=self.c.pos_conv_groups)
        x = x + F.gelu(conv[0, :, :-1]).T  # SamePad drops the last frame of an even kernel
        x = w.encoder.layer_norm(x)
        frames = x.shape[0]
        extra = frames % 2  # fairseq pads to a multiple of 2 and masks the pad as a key
        x = F.pad(x, (0, 0, 0, extra))
        pad = torch.zeros(x.shape[0], dtype=torch.bool)
        if extra:
            pad[-extra:] = True
        for layer in w.encoder.layers:
            x = layer.self_attn_layer_norm(x + self._attention(layer, x, pad))
            x = layer.final_layer_norm(x + layer.fc2(F.gelu(layer.fc1(x))))
        x = x[:frames]
        joined = torch.cat([x, self.domain_emb.expand(frames, -1), self.judge_emb.expand(frames, -1)], 1)
        per_frame = self.projection(self.blstm(joined[None])[0][0])
        return per_frame.mean() * 2 + 3


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    torch.manual_seed(0)
    model = OfficialLayout(TINY).eval()
    path = tmp_path_factory.mktemp("utmos") / "utmos22_strong_step7459_v1.pt"
    torch.save(model.state_dict(), path)
    return model, path


@pytest.fixture(scope="module")
def speech():
    ds = open_dataset("sample")
    out = []
    for utt in ds.utterances[:2]:
        a = ds.load(utt)
        out.append((utt.id, resample(a.wav, a.sample_rate, 16000).astype(np.float32)))
    return out


def test_checkpoint_keys_are_the_official_layout(official):
    model, _ = official
    keys = set(model.state_dict())
    # names as the SpeechMOS release (and hence VERSA's torch.hub model) stores them
    assert {"wav2vec2.feature_extractor.conv_layers.0.2.weight", "wav2vec2.encoder.pos_conv.0.weight_g",
            "wav2vec2.encoder.layers.1.self_attn_layer_norm.bias", "wav2vec2.mask_emb",
            "blstm.weight_hh_l0_reverse", "projection.2.bias", "judge_emb"} <= keys


@pytest.mark.parametrize("n_samples", [16000 * 2 + 123, 16000 * 2 + 123 + 320])  # odd/even frames
def test_loaded_model_equals_the_official_layout(official, speech, n_samples):
    ref_model, path = official
    model, info = utmos.load_model(path)
    assert info["config"] == dataclasses.asdict(TINY) and len(info["sha256"]) == 64
    wave = speech[0][1][:n_samples]
    with torch.no_grad():
        expected = float(ref_model(torch.from_numpy(wave)))
        got = float(model(torch.from_numpy(wave)[None])[0])
    assert got == pytest.approx(expected, abs=2e-5)
    # and the weights matter: another utterance scores differently
    with torch.no_grad():
        other = float(model(torch.from_numpy(speech[1][1][:n_samples])[None])[0])
    assert abs(other - got) > 1e-4


def test_predictor_checks_its_input(official):
    _, path = official
    p = utmos.UTMOSPredictor(checkpoint=path)
    with pytest.raises(NotComputable, match="digital silence"):
        p.predict(np.zeros(16000, np.float32))
    with pytest.raises(NotComputable, match="at least 400"):
        p.predict(np.full(399, 0.1, np.float32))
    with pytest.raises(NotComputable, match="up to 60 s"):
        p.predict(np.full(16000 * 61, 0.1, np.float32))
    assert np.isfinite(p.predict(np.random.default_rng(0).uniform(-0.5, 0.5, 8000).astype(np.float32)))


def test_loader_refuses_a_different_model(tmp_path, official):
    ref_model, _ = official
    state = dict(ref_model.state_dict())
    state["blstm.weight_ih_l1"] = state["blstm.weight_ih_l0"]
    torch.save(state, tmp_path / "two_layers.pt")
    with pytest.raises(ValueError, match="more than one layer"):
        utmos.load_model(tmp_path / "two_layers.pt")
    state = {k: v for k, v in ref_model.state_dict().items() if k != "judge_emb"}
    torch.save(state, tmp_path / "no_judge.pt")
    with pytest.raises(ValueError, match="judge_emb"):
        utmos.load_model(tmp_path / "no_judge.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable torch checkpoint"):
        utmos.load_model(tmp_path / "junk.pt")


def test_without_the_checkpoint_the_metric_is_null_with_the_fix(monkeypatch, tmp_path, speech):
    monkeypatch.setenv("TOKBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(utmos, "_MODELS", {})
    _, ref = speech[0]
    with Scorer(Cache(tmp_path / "c"), ReferenceKeys("s", "r"), workers=0, metrics="utmos") as scorer:
        [(_, s)] = list(scorer.score([ScoreItem("u", ref, ref.copy())]))
    assert s.values == {"utmos": None}
    assert "tokbench prefetch --metrics utmos" in s.reasons["utmos"]
    assert s.extra.get("transient") == ["utmos"]  # not a result: computed on the next run


def test_download_failure_names_the_url_and_the_place(monkeypatch, tmp_path):
    monkeypatch.setenv("TOKBENCH_CACHE", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)

    def no_network(*_a, **_k):
        raise OSError("network unreachable")

    with pytest.raises(utmos.UTMOSUnavailableError) as err:
        utmos.fetch_checkpoint(opener=no_network)
    assert utmos.CHECKPOINT_URL in str(err.value) and str(utmos.checkpoint_cache_path()) in str(err.value)


def test_scorer_scores_output_only_with_the_checkpoint(official, speech, tmp_path):
    ref_model, path = official
    (uid, ref), (_, other) = speech
    n = min(len(ref), len(other))
    items = [ScoreItem(uid, ref[:n], other[:n]), ScoreItem("same", other[:n], other[:n].copy()),
             ScoreItem("none", ref[:n], None, reason="decode failed")]
    with Scorer(Cache(tmp_path), ReferenceKeys("s", "r"), workers=0, metrics="utmos",
                checkpoints={"utmos": str(path)}) as scorer:
        got = [s for _, s in scorer.score(items)]
    with torch.no_grad():
        expected = float(ref_model(torch.from_numpy(other[:n])))
    # non-intrusive: the output alone decides, whatever the reference
    assert got[0].values["utmos"] == pytest.approx(expected, abs=2e-5)
    assert got[1].values["utmos"] == pytest.approx(got[0].values["utmos"], abs=1e-6)
    assert got[2].values == {"utmos": None} and got[2].reasons["utmos"] == "decode failed"


def test_prefetch_lists_verifies_and_refuses_the_checkpoint(monkeypatch, tmp_path, official):
    from tokbench.suites.assets import CACHED, CORRUPT, MISSING, needed_assets, prefetch

    monkeypatch.setenv("TOKBENCH_CACHE", str(tmp_path))
    [asset] = needed_assets(None, None, None, None, {}, metrics="utmos")
    assert asset.source == utmos.CHECKPOINT_URL and asset.location == utmos.checkpoint_cache_path()
    [checked] = prefetch([asset], download=False)
    assert checked.state == MISSING
    dest = utmos.checkpoint_cache_path()
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"truncated download")
    [checked] = prefetch(needed_assets(None, None, None, None, {}, metrics="mos"), download=False)
    assert checked.state == CORRUPT and "not loadable" in checked.detail
    dest.write_bytes(official[1].read_bytes())
    [checked] = prefetch(needed_assets(None, None, None, None, {}, metrics="utmos"), download=False)
    assert checked.state == CACHED and checked.size == dest.stat().st_size
    # a selection without model metrics needs no metric weights
    assert needed_assets(None, None, None, None, {}, metrics="signal") == []
