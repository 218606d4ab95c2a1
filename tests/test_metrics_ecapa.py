"""spk_sim_ecapa: our transformers-based WavLM-large + ECAPA-TDNN verifier against an independent
implementation written in the released checkpoint's own layout (UniSpeech's ``ecapa_tdnn.py``
names with the s3prl WavLM inside ``feature_extract.model``, weight norm as g/v, the training
head ``loss_calculator``), on tiny random weights; the loader's checks; the scorer path."""

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
from tokbench.metrics import ecapa_speaker as ecapa
from tokbench.metrics.base import NotComputable
from tokbench.run.scoring import ReferenceKeys, ScoreItem, Scorer

# Tiny widths; the released kernels, strides, 128-tap positional conv in 16 groups, 320 buckets,
# Res2Net scale 8 and the 256-d embedding.
TINY = ecapa.EcapaConfig(conv_dim=32, wavlm_dim=64, wavlm_layers=2, wavlm_heads=4, wavlm_ffn=96,
                         pos_conv_kernel=128, pos_conv_groups=16, num_buckets=320, channels=32,
                         res2_scale=8, se_bottleneck=8, attention_channels=8, pooled_channels=48,
                         embedding_dim=256)
MAX_DISTANCE = 800  # WavLM Large's pre-training config
KERNELS = [(10, 5)] + [(3, 2)] * 4 + [(2, 2)] * 2


def _bn(n: int) -> nn.BatchNorm1d:
    bn = nn.BatchNorm1d(n)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 2.0)
    return bn


def _conv_bn(n_in: int, n_out: int, k: int = 1, dilation: int = 1) -> nn.Module:
    m = nn.Module()
    m.conv = nn.Conv1d(n_in, n_out, k, padding=(k // 2) * dilation, dilation=dilation)
    m.bn = _bn(n_out)
    return m


class OfficialLayout(nn.Module):
    """The verifier as its checkpoint lays it out (``state_dict['model']``), written from the
    recipe with plain torch operations: no transformers, no tokbench code."""

    def __init__(self, c: ecapa.EcapaConfig):
        super().__init__()
        self.c = c
        wavlm = nn.Module()
        fe = nn.Module()
        fe.conv_layers = nn.ModuleList()
        n_in = 1
        for k, s in KERNELS:
            block = nn.Sequential(nn.Conv1d(n_in, c.conv_dim, k, stride=s, bias=False), nn.Dropout(0.0),
                                  nn.Sequential(nn.Identity(), nn.LayerNorm(c.conv_dim), nn.Identity()),
                                  nn.GELU())
            fe.conv_layers.append(block)
            n_in = c.conv_dim
        wavlm.feature_extractor = fe
        wavlm.layer_norm = nn.LayerNorm(c.conv_dim)
        wavlm.post_extract_proj = nn.Linear(c.conv_dim, c.wavlm_dim)
        wavlm.mask_emb = nn.Parameter(torch.rand(c.wavlm_dim))
        enc = nn.Module()
        pos = nn.Module()
        pos.weight_v = nn.Parameter(torch.randn(c.wavlm_dim, c.wavlm_dim // c.pos_conv_groups,
                                                c.pos_conv_kernel) * 0.05)
        pos.weight_g = nn.Parameter(torch.rand(1, 1, c.pos_conv_kernel) + 0.5)
        pos.bias = nn.Parameter(torch.randn(c.wavlm_dim) * 0.1)
        enc.pos_conv = nn.ModuleList([pos])
        enc.layers = nn.ModuleList()
        hd = c.wavlm_dim // c.wavlm_heads
        for i in range(c.wavlm_layers):
            layer = nn.Module()
            att = nn.Module()
            for p in ("k", "v", "q", "out"):
                setattr(att, f"{p}_proj", nn.Linear(c.wavlm_dim, c.wavlm_dim))
            if i == 0:
                att.relative_attention_bias = nn.Embedding(c.num_buckets, c.wavlm_heads)
            att.grep_linear = nn.Linear(hd, 8)
            att.grep_a = nn.Parameter(torch.rand(1, c.wavlm_heads, 1, 1) + 0.5)
            layer.self_attn = att
            layer.self_attn_layer_norm = nn.LayerNorm(c.wavlm_dim)
            layer.fc1 = nn.Linear(c.wavlm_dim, c.wavlm_ffn)
            layer.fc2 = nn.Linear(c.wavlm_ffn, c.wavlm_dim)
            layer.final_layer_norm = nn.LayerNorm(c.wavlm_dim)
            enc.layers.append(layer)
        enc.layer_norm = nn.LayerNorm(c.wavlm_dim)
        wavlm.encoder = enc
        self.feature_extract = nn.Module()
        self.feature_extract.model = wavlm
        self.feature_weight = nn.Parameter(torch.randn(c.wavlm_layers + 1))
        self.layer1 = _conv_bn(c.wavlm_dim, c.channels, 5)
        for name, dilation in zip(("layer2", "layer3", "layer4"), (2, 3, 4), strict=True):
            block = nn.Module()
            block.Conv1dReluBn1 = _conv_bn(c.channels, c.channels)
            res2 = nn.Module()
            width = c.channels // c.res2_scale
            res2.convs = nn.ModuleList(nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
                                       for _ in range(c.res2_scale - 1))
            res2.bns = nn.ModuleList(_bn(width) for _ in range(c.res2_scale - 1))
            block.Res2Conv1dReluBn = res2
            block.Conv1dReluBn2 = _conv_bn(c.channels, c.channels)
            se = nn.Module()
            se.linear1 = nn.Linear(c.channels, c.se_bottleneck)
            se.linear2 = nn.Linear(c.se_bottleneck, c.channels)
            block.SE_Connect = se
            setattr(self, name, block)
        self.conv = nn.Conv1d(3 * c.channels, c.pooled_channels, 1)
        self.pooling = nn.Module()
        self.pooling.linear1 = nn.Conv1d(c.pooled_channels, c.attention_channels, 1)
        self.pooling.linear2 = nn.Conv1d(c.attention_channels, c.pooled_channels, 1)
        self.bn = _bn(2 * c.pooled_channels)
        self.linear = nn.Linear(2 * c.pooled_channels, c.embedding_dim)
        self.loss_calculator = nn.Module()  # AAM-softmax of the fine-tuning: not used at inference
        self.loss_calculator.projection = nn.Linear(c.embedding_dim, 7, bias=False)
        with torch.no_grad():  # layer norm affine parameters away from 1/0
            for m in self.modules():
                if isinstance(m, nn.LayerNorm):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
            self.linear.bias.mul_(0.01)  # so the embedding follows the input, not the bias

    # --- WavLM (UniSpeech / s3prl WavLM.py, layer_norm_first=True) --------------------------
    @staticmethod
    def _bucket(rel: np.ndarray, num_buckets: int) -> np.ndarray:
        half = num_buckets // 2
        out = (rel > 0).astype(np.int64) * half
        n = np.abs(rel)
        exact = half // 2
        safe = np.maximum(n, 1).astype(np.float64)
        large = exact + np.floor(np.log(safe / exact) / math.log(MAX_DISTANCE / exact)
                                 * (half - exact)).astype(np.int64)
        return out + np.where(n < exact, n, np.minimum(large, half - 1))

    def _attention(self, i: int, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        a = self.feature_extract.model.encoder.layers[i].self_attn
        t, d = x.shape
        h = self.c.wavlm_heads
        hd = d // h
        heads = x.view(t, h, hd).transpose(0, 1)  # (H, T, hd): the gate reads the layer's input
        g = torch.sigmoid(a.grep_linear(heads).view(h, t, 2, 4).sum(-1))
        gate = g[..., 0:1] * (g[..., 1:2] * a.grep_a[0] - 1.0) + 2.0  # (H, T, 1)
        q = a.q_proj(x).view(t, h, hd).transpose(0, 1) * hd ** -0.5
        k = a.k_proj(x).view(t, h, hd).transpose(0, 1)
        v = a.v_proj(x).view(t, h, hd).transpose(0, 1)
        logits = q @ k.transpose(1, 2) + gate * bias
        return a.out_proj((logits.softmax(-1) @ v).transpose(0, 1).reshape(t, d))

    def hidden_states(self, wave: torch.Tensor) -> list[torch.Tensor]:
        w = self.feature_extract.model
        x = wave[None, None]
        for block in w.feature_extractor.conv_layers:
            x = block[0](x)
            x = block[2][1](x.transpose(1, 2)).transpose(1, 2)
            x = F.gelu(x)
        x = w.post_extract_proj(w.layer_norm(x[0].T))  # (frames, dim)
        pos = w.encoder.pos_conv[0]
        weight = pos.weight_g * pos.weight_v / pos.weight_v.norm(dim=(0, 1), keepdim=True)
        k = self.c.pos_conv_kernel
        conv = F.conv1d(x.T[None], weight, pos.bias, padding=k // 2, groups=self.c.pos_conv_groups)
        x = x + F.gelu(conv[0, :, :-1]).T  # SamePad drops the last frame of an even kernel
        t = x.shape[0]
        pos_ids = np.arange(t)
        buckets = torch.from_numpy(self._bucket(pos_ids[None, :] - pos_ids[:, None], self.c.num_buckets))
        bias = w.encoder.layers[0].self_attn.relative_attention_bias(buckets).permute(2, 0, 1)  # (H, T, T)
        states = []
        for i, layer in enumerate(w.encoder.layers):
            states.append(x)  # s3prl hooks the input of every layer
            x = x + self._attention(i, layer.self_attn_layer_norm(x), bias)
            x = x + layer.fc2(F.gelu(layer.fc1(layer.final_layer_norm(x))))
        states.append(w.encoder.layer_norm(x))  # ... and the encoder's output
        return states

    # --- ECAPA-TDNN (UniSpeech ecapa_tdnn.py) -----------------------------------------------
    @staticmethod
    def _batch_norm(bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
        shape = (-1, 1) if x.dim() == 2 else (-1,)
        return ((x - bn.running_mean.view(*shape)) / torch.sqrt(bn.running_var.view(*shape) + 1e-5)
                * bn.weight.view(*shape) + bn.bias.view(*shape))

    def _conv_relu_bn(self, m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return self._batch_norm(m.bn, torch.relu(m.conv(x)))

    def _block(self, b: nn.Module, x: torch.Tensor) -> torch.Tensor:
        y = self._conv_relu_bn(b.Conv1dReluBn1, x)
        width = self.c.channels // self.c.res2_scale
        parts = list(torch.split(y, width, dim=0))
        outs = []
        sp = None
        for i in range(self.c.res2_scale - 1):
            sp = parts[i] if i == 0 else sp + parts[i]
            sp = self._batch_norm(b.Res2Conv1dReluBn.bns[i], torch.relu(b.Res2Conv1dReluBn.convs[i](sp)))
            outs.append(sp)
        y = torch.cat(outs + [parts[-1]], dim=0)
        y = self._conv_relu_bn(b.Conv1dReluBn2, y)
        s = torch.sigmoid(b.SE_Connect.linear2(torch.relu(b.SE_Connect.linear1(y.mean(dim=1)))))
        return x + y * s[:, None]

    def forward(self, wave: torch.Tensor) -> torch.Tensor:  # one utterance [T] -> embedding
        wave = (wave - wave.mean()) / torch.sqrt(wave.var(unbiased=False) + 1e-5)  # normalize=True
        states = self.hidden_states(wave)
        weights = torch.softmax(self.feature_weight, 0)
        x = sum(wt * s for wt, s in zip(weights, states, strict=True)).T + 1e-6  # (dim, frames)
        x = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + 1e-5)
        out1 = self._conv_relu_bn(self.layer1, x)
        out2 = self._block(self.layer2, out1)
        out3 = self._block(self.layer3, out2)
        out4 = self._block(self.layer4, out3)
        y = torch.relu(self.conv(torch.cat([out2, out3, out4], 0)))
        alpha = torch.softmax(self.pooling.linear2(torch.tanh(self.pooling.linear1(y))), dim=1)
        mean = (alpha * y).sum(1)
        std = torch.sqrt(((alpha * y * y).sum(1) - mean ** 2).clamp(min=1e-9))
        return self.linear(self._batch_norm(self.bn, torch.cat([mean, std])))


def _save(model: nn.Module, path, **extra) -> None:
    torch.save({"model": model.state_dict(), **extra}, path)


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    torch.manual_seed(0)
    model = OfficialLayout(TINY).eval()
    path = tmp_path_factory.mktemp("ecapa") / "wavlm_large_finetune.pth"
    _save(model, path, epoch=3)
    return model, path


@pytest.fixture(scope="module")
def speech():
    ds = open_dataset("sample")
    out = []
    for utt in ds.utterances[:2]:
        a = ds.load(utt)
        out.append((utt.id, resample(a.wav, a.sample_rate, 16000).astype(np.float32)))
    return out


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a[None], b[None])[0])


def test_checkpoint_keys_are_the_official_layout(official):
    model, _ = official
    keys = set(model.state_dict())
    # names as UniSpeech's ECAPA_TDNN (with s3prl's WavLM as feature_extract) stores them
    assert {"feature_extract.model.feature_extractor.conv_layers.0.0.weight",
            "feature_extract.model.feature_extractor.conv_layers.6.2.1.bias",
            "feature_extract.model.encoder.pos_conv.0.weight_g",
            "feature_extract.model.encoder.layers.0.self_attn.relative_attention_bias.weight",
            "feature_extract.model.encoder.layers.1.self_attn.grep_a",
            "feature_extract.model.mask_emb", "feature_weight",
            "layer2.Res2Conv1dReluBn.convs.6.weight", "layer4.SE_Connect.linear2.bias",
            "layer3.Conv1dReluBn1.bn.running_var", "pooling.linear2.weight", "bn.num_batches_tracked",
            "linear.weight", "loss_calculator.projection.weight"} <= keys
    assert not any(k.startswith("instance_norm") for k in keys)  # no affine, no running stats


@pytest.mark.parametrize("n_samples", [16000 * 3 + 123, 16000 * 3 + 123 + 320])  # odd/even frames
def test_loaded_model_equals_the_official_layout(official, speech, n_samples):
    ref_model, path = official
    model, info = ecapa.load_model(path)
    assert info["config"] == dataclasses.asdict(TINY) and len(info["sha256"]) == 64
    a = torch.from_numpy(speech[0][1][:n_samples])
    b = torch.from_numpy(speech[1][1][:n_samples])
    with torch.no_grad():
        exp_a, exp_b = ref_model(a), ref_model(b)
        got_a, got_b = model(a[None])[0], model(b[None])[0]
    assert got_a.shape == (256,)
    torch.testing.assert_close(got_a, exp_a, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got_b, exp_b, rtol=1e-4, atol=1e-5)
    assert _cos(got_a, got_b) == pytest.approx(_cos(exp_a, exp_b), abs=1e-5)
    # and the input matters: the two utterances' embeddings differ far beyond the tolerance
    assert float((exp_a - exp_b).abs().max()) > 1e-3


def test_hidden_states_are_the_inputs_of_every_layer_then_the_normed_output(official, speech):
    ref_model, path = official
    model, _ = ecapa.load_model(path)
    wave = torch.from_numpy(speech[0][1][:16000 * 2])
    with torch.no_grad():
        ours = model.hidden_states(wave[None])
        theirs = ref_model.hidden_states(wave)
    assert len(ours) == len(theirs) == TINY.wavlm_layers + 1
    for o, t in zip(ours, theirs, strict=True):
        torch.testing.assert_close(o[0], t, rtol=1e-4, atol=1e-5)


def test_embed_checks_its_input(official):
    _, path = official
    sv = ecapa.EcapaSpeaker(checkpoint=path)
    with pytest.raises(NotComputable, match="digital silence"):
        sv.embed(np.zeros(16000, np.float32))
    with pytest.raises(NotComputable, match="at least 0.5 s"):
        sv.embed(np.full(7999, 0.1, np.float32))
    with pytest.raises(NotComputable, match="up to 60 s"):
        sv.embed(np.full(16000 * 61, 0.1, np.float32))
    emb = sv.embed(np.random.default_rng(0).uniform(-0.5, 0.5, 8000).astype(np.float32))
    assert emb.dtype == np.float32 and emb.shape == (256,)
    assert float(np.linalg.norm(emb)) == pytest.approx(1.0, abs=1e-5)
    assert sv.weights == ecapa.load_model(path)[1]["sha256"]


def test_loader_refuses_a_different_model(tmp_path, official):
    ref_model, _ = official
    good = dict(ref_model.state_dict())
    w = "feature_extract.model."

    def refused(state, match, name):
        torch.save({"model": state}, tmp_path / name)
        with pytest.raises(ValueError, match=match):
            ecapa.load_model(tmp_path / name)

    refused({**good, "feature_weight": torch.zeros(TINY.wavlm_layers)}, "feature_weight has 2 entries", "w.pth")
    refused({k: v for k, v in good.items() if ".2.1." not in k}, "layer norm in every block", "gn.pth")
    refused({k: v for k, v in good.items() if "grep" not in k}, "gated relative position bias", "nogate.pth")
    refused({**good, f"{w}encoder.layers.0.self_attn.bias_k": torch.zeros(1, 1, 64)},
            "not a parameter of WavLM Large", "bias_k.pth")
    refused({k: v for k, v in good.items() if k != "linear.bias"}, "do not fit", "nolinearbias.pth")
    refused({k: v for k, v in good.items() if k != "linear.weight"}, "no 'linear.weight'", "nolinear.pth")
    torch.save(good, tmp_path / "bare.pth")  # a bare state dict is not the release's layout
    with pytest.raises(ValueError, match="no 'model' state dict"):
        ecapa.load_model(tmp_path / "bare.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="weights_only=True"):
        ecapa.load_model(tmp_path / "junk.pth")
    with pytest.raises(ecapa.EcapaUnavailableError, match="does not exist"):
        ecapa.load_model(tmp_path / "absent.pth")


def test_without_the_checkpoint_the_metric_is_null_with_the_fix(monkeypatch, tmp_path, speech):
    monkeypatch.setenv("TOKBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ecapa, "_MODELS", {})
    _, ref = speech[0]
    with Scorer(Cache(tmp_path / "c"), ReferenceKeys("s", "r"), workers=0, metrics="spk_sim_ecapa") as scorer:
        [(_, s)] = list(scorer.score([ScoreItem("u", ref, ref.copy())]))
    assert s.values == {"spk_sim_ecapa": None}
    reason = s.reasons["spk_sim_ecapa"]
    assert str(tmp_path / "cache" / "metrics" / "unispeech_sv" / "wavlm_large_finetune.pth") in reason
    assert ecapa.CHECKPOINT_SOURCE in reason and "pass a checkpoint" in reason
    assert s.extra.get("transient") == ["spk_sim_ecapa"]  # not a result: computed on the next run


def test_the_cached_checkpoint_is_used(monkeypatch, tmp_path, official):
    _, path = official
    monkeypatch.setenv("TOKBENCH_CACHE", str(tmp_path))
    dest = ecapa.checkpoint_cache_path()
    dest.parent.mkdir(parents=True)
    dest.write_bytes(path.read_bytes())
    assert ecapa.find_checkpoint() == dest
    assert ecapa.EcapaSpeaker().available


def test_scorer_scores_the_cosine_with_the_checkpoint(official, speech, tmp_path):
    ref_model, path = official
    (uid, ref), (_, other) = speech
    n = min(len(ref), len(other), 16000 * 4)
    items = [ScoreItem(uid, ref[:n], other[:n]), ScoreItem("same", ref[:n], ref[:n].copy()),
             ScoreItem("none", ref[:n], None, reason="decode failed")]
    cache = Cache(tmp_path)
    with Scorer(cache, ReferenceKeys("s", "r"), workers=0, metrics="spk_sim_ecapa",
                checkpoints={"spk_sim_ecapa": str(path)}) as scorer:
        got = [s for _, s in scorer.score(items)]
    with torch.no_grad():
        expected = _cos(ref_model(torch.from_numpy(ref[:n])), ref_model(torch.from_numpy(other[:n])))
    assert got[0].values["spk_sim_ecapa"] == pytest.approx(expected, abs=1e-5)
    assert got[1].values["spk_sim_ecapa"] == pytest.approx(1.0, abs=1e-5)
    assert got[2].values == {"spk_sim_ecapa": None} and got[2].reasons["spk_sim_ecapa"] == "decode failed"
    assert list((tmp_path / "reference-ecapa_sv").rglob("*.npz")), "the reference embedding is cached"


def test_prefetch_lists_and_verifies_the_checkpoint_it_cannot_download(monkeypatch, tmp_path, official):
    from tokbench.suites.assets import CACHED, CORRUPT, MISSING, needed_assets, prefetch

    monkeypatch.setenv("TOKBENCH_CACHE", str(tmp_path))
    [asset] = needed_assets(None, None, None, None, {}, metrics="spk_sim_ecapa")
    assert asset.source == ecapa.CHECKPOINT_SOURCE and asset.location == ecapa.checkpoint_cache_path()
    [checked] = prefetch([asset], download=True)  # nothing to download from: still missing
    assert checked.state == MISSING and "by hand" in checked.detail
    dest = ecapa.checkpoint_cache_path()
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"truncated download")
    speaker = prefetch(needed_assets(None, None, None, None, {}, metrics="speaker"), download=False)
    [checked] = [a for a in speaker if a.location == dest]
    assert checked.state == CORRUPT and "not loadable" in checked.detail
    dest.write_bytes(official[1].read_bytes())
    [checked] = prefetch(needed_assets(None, None, None, None, {}, metrics="spk_sim_ecapa"), download=False)
    assert checked.state == CACHED and checked.size == dest.stat().st_size
