"""Speaker similarity with the WavLM-large + ECAPA-TDNN verifier (``spk_sim_ecapa``), the SIM of
Seed-TTS-eval and of many codec and TTS papers.

The model is the speaker-verification recipe of microsoft/UniSpeech
(``downstreams/speaker_verification``: ``ECAPA_TDNN_SMALL(feat_dim=1024, feat_type='wavlm_large')``,
checkpoint ``wavlm_large_finetune.pth``, the README's "WavLM large" row with the pre-trained model
not fixed), exactly as Seed-TTS-eval's ``verification.py`` runs it:

- the 16 kHz waveform, layer-normalised (zero mean, unit variance, eps 1e-5: WavLM-Large's
  ``normalize=True``, which s3prl's WavLM expert applies), into WavLM Large (7-layer CNN with a
  layer norm in every block, 24 pre-LN transformer layers of 1024, 16 heads, FFN 4096, a 128-tap
  positional convolution in 16 groups, gated relative position bias with 320 buckets up to a
  distance of 800, fine-tuned with the verifier);
- all 25 hidden states as s3prl hands them over (the input of each of the 24 layers, i.e. the
  projected CNN features plus the positional convolution first, then the encoder's layer-normed
  output), summed with the softmax of the learnt ``feature_weight``; ``+ 1e-6``; instance norm
  over time (no affine);
- ECAPA-TDNN with 512 channels: a 5-tap conv block, three SE-Res2Net blocks (kernel 3, dilation
  2/3/4, scale 8, SE bottleneck 128), the three concatenated into a 1x1 conv to 1536 + ReLU,
  attentive statistics pooling (128 attention channels, no global context), batch norm, a linear
  layer to the 256-d embedding. Every conv block is conv -> ReLU -> batch norm.

``spk_sim_ecapa`` is the cosine of the embeddings of output and reference (reference side
cached). Neither s3prl, fairseq nor torchaudio is needed: :func:`convert_state_dict` maps the
checkpoint's WavLM (``feature_extract.model.*``, UniSpeech/s3prl names) onto transformers'
``WavLMModel`` (the maintained port of the same code, whose conversion script uses the same
correspondence); the ECAPA head here carries the checkpoint's own parameter names, so the
checkpoint loads with ``strict=True``. Its hidden states are taken layer by layer here, not
from ``output_hidden_states`` (whose last entry is not the layer-normed output in every
transformers version). ``tests/test_metrics_ecapa.py`` checks the whole model against an
independent implementation written in the checkpoint's own layout on tiny random weights;
``benchmarks/ecapa_equivalence.py`` compares it with UniSpeech's own code on the sample set.

The checkpoint lives on Google Drive (no direct download, no published checksum): a user places
it at :func:`checkpoint_cache_path` or passes its path (``checkpoints={"spk_sim_ecapa": path}``).
One utterance at a time, on the run's device, in the calling process; loaded once per process.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tokbench.metrics.base import NotComputable
from tokbench.metrics.inputs import as_signal, require_sound
from tokbench.metrics.kit import MetricSpec, ModelContext, Needs, declare
from tokbench.metrics.lazy_model import CheckpointModel
from tokbench.metrics.reference_features import check_vector, package_version, register_feature
from tokbench.protocol import SCORING_SAMPLE_RATE

# The speaker verifier of Seed-TTS-eval's SIM (UniSpeech downstreams/speaker_verification).
ECAPA_SV: dict[str, Any] = {
    "model": "WavLM-large + ECAPA-TDNN speaker verifier (microsoft/UniSpeech speaker_verification, "
             "ECAPA_TDNN_SMALL feat_dim=1024 feat_type=wavlm_large), as Seed-TTS-eval's SIM",
    "checkpoint": "wavlm_large_finetune.pth",
    # the UniSpeech README's "WavLM large" row with the pre-trained model not fixed (Google Drive
    # file id 18rekjal9NPo0VquVtali-80yy63252RX); no checksum is published
    "source": "https://drive.google.com/file/d/18rekjal9NPo0VquVtali-80yy63252RX/view?usp=sharing",
    "implementation": "tokbench.metrics.ecapa_speaker (transformers WavLMModel + ECAPA-TDNN head)",
    "wavlm": {"normalize_waveform": True, "max_distance": 800},  # WavLM-Large's pre-training config
    "features": "softmax(feature_weight)-weighted sum of all hidden states (the input of each "
                "layer, then the layer-normed output) + 1e-6, instance norm",
    "input": "16 kHz, one utterance at a time", "similarity": "cosine of the 256-d embeddings",
    "min_seconds": 0.5, "max_seconds": 60.0}

METRIC = "spk_sim_ecapa"
CHECKPOINT_FILE: str = ECAPA_SV["checkpoint"]
CHECKPOINT_SOURCE: str = ECAPA_SV["source"]
# No checksum is published with the release; benchmarks/ecapa_equivalence.py prints the SHA-256
# of the file it verified: set it here and every later load is checked against it.
CHECKPOINT_SHA256: str | None = None
MIN_SECONDS: float = ECAPA_SV["min_seconds"]
MAX_SECONDS: float = ECAPA_SV["max_seconds"]
# Not in the fine-tuned checkpoint (it holds tensors only): WavLM-Large's pre-training config,
# from which s3prl builds the model the checkpoint is loaded into.
MAX_DISTANCE: int = ECAPA_SV["wavlm"]["max_distance"]
NORMALIZE_WAVEFORM: bool = ECAPA_SV["wavlm"]["normalize_waveform"]
CONV_LAYERS: tuple[tuple[int, int], ...] = ((10, 5),) + ((3, 2),) * 4 + ((2, 2),) * 2  # (kernel, stride)
RES2_DILATIONS = (2, 3, 4)  # layer2..layer4
_WAVLM = "feature_extract.model."
# Training-time parts of the checkpoint that inference does not use: the AAM-softmax
# projection of the fine-tuning loss, and WavLM's pre-training mask vector.
_UNUSED = (re.compile(r"loss_calculator\..*"), re.compile(re.escape(_WAVLM) + r"mask_emb"))


class EcapaUnavailableError(FileNotFoundError):
    """The checkpoint is neither given nor in the cache; the message says where to put it."""


@dataclass(frozen=True)
class EcapaConfig:
    """The released model's sizes (defaults); tests shrink the widths, never the time structure
    (front-end kernels and strides, head kernels and dilations)."""

    conv_dim: int = 512
    conv_bias: bool = False
    wavlm_dim: int = 1024
    wavlm_layers: int = 24
    wavlm_heads: int = 16
    wavlm_ffn: int = 4096
    pos_conv_kernel: int = 128
    pos_conv_groups: int = 16
    num_buckets: int = 320
    channels: int = 512
    res2_scale: int = 8
    se_bottleneck: int = 128
    attention_channels: int = 128
    pooled_channels: int = 1536
    embedding_dim: int = 256


def wavlm_config(config: EcapaConfig) -> Any:
    """The transformers ``WavLMConfig`` of WavLM Large at ``config``'s sizes (inference only)."""
    from transformers import WavLMConfig

    return WavLMConfig(
        hidden_size=config.wavlm_dim, num_hidden_layers=config.wavlm_layers,
        num_attention_heads=config.wavlm_heads, intermediate_size=config.wavlm_ffn,
        hidden_act="gelu", feat_extract_activation="gelu", feat_extract_norm="layer",
        conv_dim=(config.conv_dim,) * len(CONV_LAYERS),
        conv_kernel=tuple(k for k, _ in CONV_LAYERS), conv_stride=tuple(s for _, s in CONV_LAYERS),
        conv_bias=config.conv_bias, num_conv_pos_embeddings=config.pos_conv_kernel,
        num_conv_pos_embedding_groups=config.pos_conv_groups, do_stable_layer_norm=True,
        num_buckets=config.num_buckets, max_bucket_distance=MAX_DISTANCE, layer_norm_eps=1e-5,
        apply_spec_augment=False, mask_time_prob=0.0, mask_feature_prob=0.0, hidden_dropout=0.0,
        attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0, layerdrop=0.0)


def build_model(config: EcapaConfig = EcapaConfig()) -> Any:
    """An (untrained) :class:`WavLMEcapa` module; torch is imported only here. Its head's
    attribute names are the checkpoint's (UniSpeech's ``ecapa_tdnn.py``)."""
    import torch
    import torch.nn.functional as F
    from torch import nn
    from transformers import WavLMModel

    class ConvReluBn(nn.Module):
        def __init__(self, n_in: int, n_out: int, kernel: int = 1, padding: int = 0):
            super().__init__()
            self.conv = nn.Conv1d(n_in, n_out, kernel, padding=padding)
            self.bn = nn.BatchNorm1d(n_out)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bn(F.relu(self.conv(x)))

    class Res2ConvReluBn(nn.Module):
        """Res2Net: ``scale`` channel groups, each but the last convolved after adding the
        previous group's output; the last passes through."""

        def __init__(self, channels: int, dilation: int, scale: int):
            super().__init__()
            self.width = channels // scale
            self.convs = nn.ModuleList(nn.Conv1d(self.width, self.width, 3, padding=dilation,
                                                 dilation=dilation) for _ in range(scale - 1))
            self.bns = nn.ModuleList(nn.BatchNorm1d(self.width) for _ in range(scale - 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            groups = torch.split(x, self.width, 1)
            out: list[torch.Tensor] = []
            sp = groups[0]
            for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
                if i > 0:
                    sp = sp + groups[i]
                sp = bn(F.relu(conv(sp)))
                out.append(sp)
            out.append(groups[-1])
            return torch.cat(out, dim=1)

    class SqueezeExcite(nn.Module):
        def __init__(self, channels: int, bottleneck: int):
            super().__init__()
            self.linear1 = nn.Linear(channels, bottleneck)
            self.linear2 = nn.Linear(bottleneck, channels)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            gate = torch.sigmoid(self.linear2(F.relu(self.linear1(x.mean(dim=2)))))
            return x * gate.unsqueeze(2)

    class SERes2Block(nn.Module):
        def __init__(self, channels: int, dilation: int, cfg: EcapaConfig):
            super().__init__()
            self.Conv1dReluBn1 = ConvReluBn(channels, channels)
            self.Res2Conv1dReluBn = Res2ConvReluBn(channels, dilation, cfg.res2_scale)
            self.Conv1dReluBn2 = ConvReluBn(channels, channels)
            self.SE_Connect = SqueezeExcite(channels, cfg.se_bottleneck)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.Conv1dReluBn2(self.Res2Conv1dReluBn(self.Conv1dReluBn1(x)))
            return x + self.SE_Connect(y)

    class AttentiveStatsPool(nn.Module):
        def __init__(self, channels: int, attention: int):
            super().__init__()
            self.linear1 = nn.Conv1d(channels, attention, 1)
            self.linear2 = nn.Conv1d(attention, channels, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            alpha = torch.softmax(self.linear2(torch.tanh(self.linear1(x))), dim=2)
            mean = (alpha * x).sum(dim=2)
            var = (alpha * x * x).sum(dim=2) - mean * mean
            return torch.cat([mean, var.clamp(min=1e-9).sqrt()], dim=1)

    class WavLMEcapa(nn.Module):
        """wave ``[1, T]`` (16 kHz) -> speaker embedding ``[1, embedding_dim]``."""

        def __init__(self, cfg: EcapaConfig):
            super().__init__()
            self.config = cfg
            self.wavlm = WavLMModel(wavlm_config(cfg))
            self.feature_weight = nn.Parameter(torch.zeros(cfg.wavlm_layers + 1))
            self.layer1 = ConvReluBn(cfg.wavlm_dim, cfg.channels, kernel=5, padding=2)
            self.layer2 = SERes2Block(cfg.channels, RES2_DILATIONS[0], cfg)
            self.layer3 = SERes2Block(cfg.channels, RES2_DILATIONS[1], cfg)
            self.layer4 = SERes2Block(cfg.channels, RES2_DILATIONS[2], cfg)
            self.conv = nn.Conv1d(3 * cfg.channels, cfg.pooled_channels, 1)
            self.pooling = AttentiveStatsPool(cfg.pooled_channels, cfg.attention_channels)
            self.bn = nn.BatchNorm1d(2 * cfg.pooled_channels)
            self.linear = nn.Linear(2 * cfg.pooled_channels, cfg.embedding_dim)

        def hidden_states(self, wave: torch.Tensor) -> list[torch.Tensor]:
            """The input of every transformer layer, then the layer-normed encoder output (what
            s3prl's WavLM expert hooks as ``hidden_states``), each ``[B, frames, dim]``."""
            m = self.wavlm
            h, _ = m.feature_projection(m.feature_extractor(wave).transpose(1, 2))
            h = h + m.encoder.pos_conv_embed(h)
            states = [h]
            bias = None
            for layer in m.encoder.layers:
                out = layer(h, position_bias=bias)
                h, bias = out[0], out[1]
                states.append(h)
            states[-1] = m.encoder.layer_norm(h)
            return states

        def forward(self, wave: torch.Tensor) -> torch.Tensor:
            if NORMALIZE_WAVEFORM:
                wave = F.layer_norm(wave, wave.shape[-1:])
            states = torch.stack(self.hidden_states(wave), dim=0)
            weights = torch.softmax(self.feature_weight, dim=-1)[:, None, None, None]
            x = (weights * states).sum(dim=0).transpose(1, 2) + 1e-6
            x = F.instance_norm(x, eps=1e-5)
            out2 = self.layer2(self.layer1(x))
            out3 = self.layer3(out2)
            out4 = self.layer4(out3)
            out = F.relu(self.conv(torch.cat([out2, out3, out4], dim=1)))
            return self.linear(self.bn(self.pooling(out)))

    return WavLMEcapa(config)


# --- the checkpoint's layout (UniSpeech/s3prl names) -> ours ---------------------------------
# (pattern inside feature_extract.model., our name); \1 is the layer index. WEIGHT_G / WEIGHT_V
# stand for the built model's weight-norm parameter names (they differ across torch versions).
_RENAMES: tuple[tuple[str, str], ...] = (
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)", r"feature_extractor.conv_layers.\1.conv.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.1\.(weight|bias)", r"feature_extractor.conv_layers.\1.layer_norm.\2"),
    (r"layer_norm\.(weight|bias)", r"feature_projection.layer_norm.\1"),
    (r"post_extract_proj\.(weight|bias)", r"feature_projection.projection.\1"),
    (r"encoder\.pos_conv\.0\.bias", r"encoder.pos_conv_embed.conv.bias"),
    (r"encoder\.pos_conv\.0\.(weight_g|parametrizations\.weight\.original0)", r"encoder.pos_conv_embed.conv.WEIGHT_G"),
    (r"encoder\.pos_conv\.0\.(weight_v|parametrizations\.weight\.original1)", r"encoder.pos_conv_embed.conv.WEIGHT_V"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
    (r"encoder\.layers\.(\d+)\.self_attn\.(q|k|v|out)_proj\.(weight|bias)", r"encoder.layers.\1.attention.\2_proj.\3"),
    (r"encoder\.layers\.(\d+)\.self_attn\.grep_linear\.(weight|bias)", r"encoder.layers.\1.attention.gru_rel_pos_linear.\2"),
    (r"encoder\.layers\.(\d+)\.self_attn\.grep_a", r"encoder.layers.\1.attention.gru_rel_pos_const"),
    (r"encoder\.layers\.(\d+)\.self_attn\.relative_attention_bias\.weight", r"encoder.layers.\1.attention.rel_attn_embed.weight"),
    (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"encoder.layers.\1.layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.fc1\.(weight|bias)", r"encoder.layers.\1.feed_forward.intermediate_dense.\2"),
    (r"encoder\.layers\.(\d+)\.fc2\.(weight|bias)", r"encoder.layers.\1.feed_forward.output_dense.\2"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"encoder.layers.\1.final_layer_norm.\2"),
)
_COMPILED = tuple((re.compile(re.escape(_WAVLM) + p + r"$"), "wavlm." + r) for p, r in _RENAMES)


def convert_state_dict(official: Mapping[str, Any], weight_names: tuple[str, str]) -> dict[str, Any]:
    """The checkpoint's state dict (its ``"model"`` entry) renamed for :func:`build_model`: the
    WavLM part onto transformers' names, the head unchanged, the training-only entries dropped.
    Raises ValueError naming a WavLM key that is not WavLM Large's."""
    out: dict[str, Any] = {}
    for key, value in official.items():
        if any(p.fullmatch(key) for p in _UNUSED):
            continue
        if not key.startswith(_WAVLM):
            out[key] = value  # the head: checked by the strict load
            continue
        for pattern, target in _COMPILED:
            if pattern.match(key):
                name = pattern.sub(target, key)
                out[name.replace("WEIGHT_G", weight_names[0]).replace("WEIGHT_V", weight_names[1])] = value
                break
        else:
            raise ValueError(f"{key!r} is not a parameter of WavLM Large (UniSpeech/s3prl layout)")
    return out


def _pos_conv_v(official: Mapping[str, Any]) -> Any:
    for name in ("weight_v", "parametrizations.weight.original1"):
        if f"{_WAVLM}encoder.pos_conv.0.{name}" in official:
            return official[f"{_WAVLM}encoder.pos_conv.0.{name}"]
    raise KeyError(f"{_WAVLM}encoder.pos_conv.0.weight_v")


def config_from_state(official: Mapping[str, Any]) -> EcapaConfig:
    """The sizes of the checkpoint's model, read from its tensor shapes; ValueError when its
    structure is not the recipe's (front-end kernels, layer norm in every CNN block, gated
    relative position bias, one weight per hidden state, no global-context pooling)."""
    w = _WAVLM
    try:
        layers = {int(m.group(1)) for k in official if (m := re.match(re.escape(w) + r"encoder\.layers\.(\d+)\.", k))}
        convs = sorted(int(m.group(1)) for k in official
                       if (m := re.match(re.escape(w) + r"feature_extractor\.conv_layers\.(\d+)\.0\.weight$", k)))
        kernels = tuple(int(official[f"{w}feature_extractor.conv_layers.{i}.0.weight"].shape[-1]) for i in convs)
        proj = official[f"{w}post_extract_proj.weight"]
        pos_v = _pos_conv_v(official)
        rel = official[f"{w}encoder.layers.0.self_attn.relative_attention_bias.weight"]
        wavlm_dim = int(proj.shape[0])
        res2 = {int(m.group(1)) for k in official if (m := re.match(r"layer2\.Res2Conv1dReluBn\.convs\.(\d+)\.weight$", k))}
        cfg = EcapaConfig(
            conv_dim=int(proj.shape[1]),
            conv_bias=f"{w}feature_extractor.conv_layers.0.0.bias" in official,
            wavlm_dim=wavlm_dim, wavlm_layers=len(layers), wavlm_heads=int(rel.shape[1]),
            wavlm_ffn=int(official[f"{w}encoder.layers.0.fc1.weight"].shape[0]),
            pos_conv_kernel=int(pos_v.shape[2]), pos_conv_groups=wavlm_dim // int(pos_v.shape[1]),
            num_buckets=int(rel.shape[0]),
            channels=int(official["layer1.conv.weight"].shape[0]), res2_scale=len(res2) + 1,
            se_bottleneck=int(official["layer2.SE_Connect.linear1.weight"].shape[0]),
            attention_channels=int(official["pooling.linear1.weight"].shape[0]),
            pooled_channels=int(official["conv.weight"].shape[0]),
            embedding_dim=int(official["linear.weight"].shape[0]))
        n_weights = int(official["feature_weight"].shape[0])
        head_in = int(official["layer1.conv.weight"].shape[1])
        head_kernel = int(official["layer1.conv.weight"].shape[2])
        pool_in = int(official["pooling.linear1.weight"].shape[1])
    except KeyError as exc:
        raise ValueError(f"not a WavLM-large + ECAPA-TDNN checkpoint: no {exc.args[0]!r}") from None
    if kernels != tuple(k for k, _ in CONV_LAYERS):
        raise ValueError(f"front-end kernels {kernels} differ from WavLM's {tuple(k for k, _ in CONV_LAYERS)}")
    if not all(f"{w}feature_extractor.conv_layers.{i}.2.1.weight" in official for i in convs):
        raise ValueError("the front end has no layer norm in every block (WavLM Large's "
                         "extractor_mode='layer_norm')")
    if f"{w}encoder.layers.0.self_attn.grep_linear.weight" not in official:
        raise ValueError("the attention has no gated relative position bias (grep_linear)")
    if n_weights != cfg.wavlm_layers + 1:
        raise ValueError(f"feature_weight has {n_weights} entries; the {cfg.wavlm_layers}-layer "
                         f"WavLM hands over {cfg.wavlm_layers + 1} hidden states")
    if head_in != wavlm_dim or head_kernel != 5:
        raise ValueError(f"the head's first conv takes {head_in} channels with {head_kernel} taps; "
                         f"the recipe's takes the {wavlm_dim} WavLM channels with 5")
    if pool_in != cfg.pooled_channels:
        raise ValueError("the pooling uses global context (in_dim x 3); the recipe's does not")
    return cfg


def _weight_norm_names(model: Any) -> tuple[str, str]:
    prefix = "wavlm.encoder.pos_conv_embed.conv."
    names = {k.removeprefix(prefix) for k in model.state_dict() if k.startswith(prefix) and not k.endswith("bias")}
    if names == {"parametrizations.weight.original0", "parametrizations.weight.original1"}:
        return "parametrizations.weight.original0", "parametrizations.weight.original1"
    if names == {"weight_g", "weight_v"}:
        return "weight_g", "weight_v"
    raise RuntimeError(f"unexpected weight-norm parameters of transformers' positional conv: {sorted(names)}")


def load_model(path: str | Path, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """The model (eval mode, on ``device``) from ``wavlm_large_finetune.pth`` (a dict whose
    ``"model"`` entry is the state dict, as UniSpeech saves it), read with ``weights_only=True``,
    and its provenance (path, SHA-256, sizes)."""
    import torch

    from tokbench.io.files import file_digest

    path = Path(path).expanduser()
    if not path.is_file():
        raise EcapaUnavailableError(f"the speaker-verification checkpoint {path} does not exist; "
                                    f"pass the path of {CHECKPOINT_FILE} ({CHECKPOINT_SOURCE})")
    digest = file_digest(path)
    if CHECKPOINT_SHA256 is not None and digest != CHECKPOINT_SHA256:
        raise ValueError(f"{path}: SHA-256 {digest[:16]}... is not the release's "
                         f"{CHECKPOINT_SHA256[:16]}...; fetch {CHECKPOINT_SOURCE} again")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for files that are not checkpoints
        raise ValueError(f"{path} is not a torch checkpoint readable with weights_only=True "
                         f"({type(exc).__name__}: {exc})") from None
    state = saved.get("model") if isinstance(saved, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path} has no 'model' state dict (UniSpeech's speaker-verification layout)")
    config = config_from_state(state)
    model = build_model(config)
    try:
        model.load_state_dict(convert_state_dict(state, _weight_norm_names(model)), strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: the weights do not fit WavLM-large + ECAPA-TDNN ({exc})") from None
    info = {"path": str(path.resolve()), "sha256": digest, "config": asdict(config)}
    return model.eval().to(device), info


def checkpoint_cache_path() -> Path:
    """Where a user places ``wavlm_large_finetune.pth`` (no direct download exists)."""
    from tokbench.io.cache import cache_root

    return cache_root() / "metrics" / "unispeech_sv" / CHECKPOINT_FILE


def find_checkpoint() -> Path:
    """The checkpoint in the tokbench cache; EcapaUnavailableError says where to put it."""
    path = checkpoint_cache_path()
    if path.is_file():
        return path
    raise EcapaUnavailableError(
        f"the WavLM-large + ECAPA-TDNN checkpoint is not in the cache: download {CHECKPOINT_FILE} "
        f"from {CHECKPOINT_SOURCE} (UniSpeech speaker verification, 'WavLM large', fine-tuned) "
        f"and place the file at {path}, or pass a checkpoint (checkpoints={{'{METRIC}': PATH}})")


_MODELS: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}


def load(device: str = "cpu", checkpoint: str | Path | None = None) -> tuple[Any, dict[str, Any]]:
    """(model, provenance) of this process for ``device``, loaded on first use: ``checkpoint``
    (a local file) or the cached one."""
    path = Path(checkpoint) if checkpoint else find_checkpoint()
    key = (str(path), str(device))
    if key not in _MODELS:
        _MODELS[key] = load_model(path, device)
    return _MODELS[key]


class EcapaSpeaker(CheckpointModel):
    """Embeddings for ``spk_sim_ecapa``; degrades to null-with-reason without the checkpoint."""

    label = "WavLM-large + ECAPA-TDNN speaker model"
    unavailable = (EcapaUnavailableError, ValueError)

    def _fetch(self) -> tuple[Any, dict[str, Any]]:
        return load(self.device, self.checkpoint)

    def embed(self, wav16: np.ndarray, role: str = "output") -> np.ndarray:
        """The L2-normalised embedding (float32) of a 16 kHz signal; NotComputable for silence,
        a signal shorter than ``MIN_SECONDS`` or longer than ``MAX_SECONDS``, or a non-finite
        result."""
        import torch

        x = as_signal(wav16, role, np.float32)
        require_sound(x, role)
        seconds = len(x) / SCORING_SAMPLE_RATE
        if seconds < MIN_SECONDS:
            raise NotComputable(f"the {role} lasts {seconds:.2f} s; ECAPA speaker similarity "
                                f"needs at least {MIN_SECONDS} s")
        if seconds > MAX_SECONDS:
            raise NotComputable(f"the {role} lasts {seconds:.0f} s; ECAPA speaker similarity is "
                                f"scored up to {MAX_SECONDS:.0f} s (WavLM's attention and position "
                                "bias grow with the square of the length)")
        if not self.available:
            raise NotComputable(self.reason)
        model = self.loaded[0]
        device = next(model.parameters()).device
        with torch.inference_mode():
            emb = model(torch.from_numpy(x)[None].to(device))[0].float()
        emb = torch.nn.functional.normalize(emb, dim=-1).cpu().numpy()
        if not np.all(np.isfinite(emb)):
            raise NotComputable(f"the ECAPA speaker embedding of the {role} is not finite")
        return emb.astype(np.float32)


# WavLM-large + ECAPA-TDNN embedding of the reference; the checkpoint's SHA-256 is added
register_feature("ecapa_sv", lambda: {**ECAPA_SV, "transformers": package_version("transformers")},
                 check_vector)


def _assets(needed_by: str) -> list[Any]:
    """The checkpoint, for ``tokbench prefetch``: Google Drive only (no direct download), so it
    is verified here and fetched by hand."""
    from tokbench.suites.assets import checkpoint_asset

    path = checkpoint_cache_path()
    return [checkpoint_asset(f"{needed_by} ({METRIC})", CHECKPOINT_SOURCE, path,
                             label="WavLM-large + ECAPA-TDNN", load=load_model,
                             sha256=CHECKPOINT_SHA256,
                             missing=(f"no direct download: fetch {CHECKPOINT_FILE} from "
                                      f"{CHECKPOINT_SOURCE} by hand and place it at {path}"))]


def _scorer(ctx: ModelContext) -> Any:
    from tokbench.metrics.model_scoring import Similarity

    return Similarity(METRIC, "ecapa_sv", EcapaSpeaker(ctx.device, ctx.checkpoint))


declare(
    MetricSpec(METRIC, "cosine of WavLM-large + ECAPA-TDNN speaker embeddings (UniSpeech "
               "wavlm_large_finetune.pth, Seed-TTS-eval's SIM) of output and input", "higher",
               "cosine", lo=0.0, hi=1.0, valid_lo=-1.0, groups=("speaker",)),
    where="model", compute=_scorer,
    needs=Needs(reference=True, speech=True, sample_rate=SCORING_SAMPLE_RATE),
    protocol={"spk_sim_ecapa": ECAPA_SV}, packages=("transformers",), weights=_assets,
    citation="Chen et al., IEEE JSTSP 2022 (WavLM); Desplanques et al., Interspeech 2020 "
             "(ECAPA-TDNN); Anastassiou et al. 2024 (Seed-TTS-eval SIM)",
    implementation="microsoft/UniSpeech downstreams/speaker_verification ECAPA_TDNN_SMALL on "
                   "transformers WavLMModel",
    license="the checkpoint: UniSpeech's licence (MIT)",
)
