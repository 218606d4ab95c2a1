"""UTMOS22 strong (``utmos``): a non-intrusive naturalness MOS predictor, as VERSA and DATES report it.

The model (Saeki et al., "UTMOS: UTokyo-SaruLab System for VoiceMOS Challenge 2022", the strong
learner without its phoneme encoder, which the released inference model does not use):

- a wav2vec 2.0 BASE front end (fairseq ``wav2vec_small``: 7 convolutions, the first with group
  norm, no conv bias, 320x downsampling at 16 kHz; 12 post-LN transformer layers of 768, 12
  heads, FFN 3072; a 128-tap weight-normed positional convolution in 16 groups), fed the raw
  16 kHz waveform without normalisation;
- per frame, its last-layer features joined with two learnt constant vectors (the data-domain
  embedding and the judge embedding, 128 each, as fixed at inference);
- a 1-layer bidirectional LSTM (512 per direction), a projection 1024 -> 2048 -> ReLU -> 1;
- the utterance score = 2 x (mean over frames) + 3.

The weights are the official checkpoint as SpeechMOS releases it (``utmos22_strong_step7459_
v1.pt``, tag v1.0.0: the sarulab-speech/UTMOS22 "epoch=3-step=7459" strong learner, MIT, moved
out of fairseq/Lightning by SpeechMOS's author), which is what VERSA loads through
``torch.hub.load("…/SpeechMOS", "utmos22_strong")``. Neither fairseq nor torch.hub code is
needed: :func:`convert_state_dict` maps that state dict's names (the fairseq module layout)
onto transformers' ``Wav2Vec2Model`` (the maintained port of the same fairseq model, whose
conversion uses the same correspondence) plus the small head here. fairseq pads the frame
sequence to an even length and masks the pad as a key; that changes no unpadded frame, so it is
not reproduced. ``tests/test_metrics_utmos.py`` checks the whole model against an independent
implementation written in the checkpoint's own layout; ``benchmarks/utmos_equivalence.py``
compares it with the torch.hub model on the sample set where the network is reachable.

One utterance at a time (a padded batch would change the LSTM and the frame mean), on the run's
device, in the calling process; the model loads once per process and device.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tokbench.metrics.base import NotComputable
from tokbench.metrics.inputs import as_signal, require_sound
from tokbench.metrics.kit import MetricSpec, ModelContext, Needs, declare
from tokbench.metrics.lazy_model import CheckpointModel
from tokbench.protocol import SCORING_SAMPLE_RATE

UTMOS_SETTINGS: dict[str, Any] = {
    "model": "UTMOS22 strong learner (sarulab-speech/UTMOS22, epoch=3-step=7459), no phoneme encoder",
    "checkpoint": "https://github.com/tarepan/SpeechMOS/releases/download/v1.0.0/utmos22_strong_step7459_v1.pt",
    "implementation": "tokbench.metrics.utmos (transformers Wav2Vec2Model + BLSTM head)",
    "input": "16 kHz, raw waveform (no normalisation), one utterance at a time",
    "score": "2 x mean over frames + 3", "max_seconds": 60.0, "silent_output": "not computable"}

METRIC = "utmos"
CHECKPOINT_URL: str = UTMOS_SETTINGS["checkpoint"]
# No checksum is published with the release; set from benchmarks/utmos_equivalence.py's output
# (it prints the SHA-256 of the file it verified) and every later load is checked against it.
CHECKPOINT_SHA256: str | None = None
MAX_SECONDS: float = UTMOS_SETTINGS["max_seconds"]
MIN_SAMPLES = 400  # one frame of the convolutional front end (25 ms)
CONV_LAYERS: tuple[tuple[int, int], ...] = ((10, 5),) + ((3, 2),) * 4 + ((2, 2),) * 2  # (kernel, stride)


class UTMOSUnavailableError(FileNotFoundError):
    """The checkpoint is neither given, cached nor downloadable; the message says what to do."""


@dataclass(frozen=True)
class UTMOSConfig:
    """The released model's sizes (defaults); tests shrink the widths, never the time structure."""

    conv_dim: int = 512
    ssl_dim: int = 768
    ssl_layers: int = 12
    ssl_heads: int = 12
    ssl_ffn: int = 3072
    pos_conv_kernel: int = 128
    pos_conv_groups: int = 16
    domain_dim: int = 128
    judge_dim: int = 128
    lstm_hidden: int = 512
    projection_hidden: int = 2048


def wav2vec2_config(config: UTMOSConfig) -> Any:
    """The transformers ``Wav2Vec2Config`` of fairseq's ``wav2vec_small`` at ``config``'s sizes."""
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(
        hidden_size=config.ssl_dim, num_hidden_layers=config.ssl_layers,
        num_attention_heads=config.ssl_heads, intermediate_size=config.ssl_ffn,
        hidden_act="gelu", feat_extract_activation="gelu", feat_extract_norm="group",
        conv_dim=(config.conv_dim,) * len(CONV_LAYERS),
        conv_kernel=tuple(k for k, _ in CONV_LAYERS), conv_stride=tuple(s for _, s in CONV_LAYERS),
        conv_bias=False, num_conv_pos_embeddings=config.pos_conv_kernel,
        num_conv_pos_embedding_groups=config.pos_conv_groups, do_stable_layer_norm=False,
        layer_norm_eps=1e-5, apply_spec_augment=False, mask_time_prob=0.0,
        hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0,
        layerdrop=0.0)


def build_model(config: UTMOSConfig = UTMOSConfig()) -> Any:
    """An (untrained) :class:`UTMOS22Strong` module; torch is imported only here."""
    import torch
    from torch import nn
    from transformers import Wav2Vec2Model

    class UTMOS22Strong(nn.Module):
        """wave ``[B, T]`` (16 kHz) -> MOS ``[B]`` (see the module docstring)."""

        def __init__(self, cfg: UTMOSConfig):
            super().__init__()
            self.config = cfg
            self.ssl = Wav2Vec2Model(wav2vec2_config(cfg))
            self.domain_emb = nn.Parameter(torch.zeros(1, cfg.domain_dim), requires_grad=False)
            self.judge_emb = nn.Parameter(torch.zeros(1, cfg.judge_dim), requires_grad=False)
            self.blstm = nn.LSTM(cfg.ssl_dim + cfg.domain_dim + cfg.judge_dim, cfg.lstm_hidden,
                                 batch_first=True, bidirectional=True)
            self.projection = nn.Sequential(nn.Linear(2 * cfg.lstm_hidden, cfg.projection_hidden),
                                            nn.ReLU(), nn.Linear(cfg.projection_hidden, 1))

        def forward(self, wave: torch.Tensor) -> torch.Tensor:
            frames = self.ssl(wave).last_hidden_state
            b, t, _ = frames.shape
            joined = torch.cat([frames, self.domain_emb.expand(b, t, -1),
                                self.judge_emb.expand(b, t, -1)], dim=2)
            per_frame = self.projection(self.blstm(joined)[0])
            return per_frame.mean(dim=1).squeeze(1) * 2 + 3

    return UTMOS22Strong(config)


# --- the checkpoint's layout (fairseq names) -> ours -----------------------------------------
# (official pattern, our name); \1 is the layer index.
_RENAMES: tuple[tuple[str, str], ...] = (
    (r"wav2vec2\.feature_extractor\.conv_layers\.(\d+)\.0\.weight", r"ssl.feature_extractor.conv_layers.\1.conv.weight"),
    (r"wav2vec2\.feature_extractor\.conv_layers\.0\.2\.(weight|bias)", r"ssl.feature_extractor.conv_layers.0.layer_norm.\1"),
    (r"wav2vec2\.layer_norm\.(weight|bias)", r"ssl.feature_projection.layer_norm.\1"),
    (r"wav2vec2\.post_extract_proj\.(weight|bias)", r"ssl.feature_projection.projection.\1"),
    (r"wav2vec2\.mask_emb", r""),  # the pre-training mask vector: unused at inference
    (r"wav2vec2\.encoder\.pos_conv\.0\.bias", r"ssl.encoder.pos_conv_embed.conv.bias"),
    (r"wav2vec2\.encoder\.pos_conv\.0\.weight_g", r"ssl.encoder.pos_conv_embed.conv.WEIGHT_G"),
    (r"wav2vec2\.encoder\.pos_conv\.0\.weight_v", r"ssl.encoder.pos_conv_embed.conv.WEIGHT_V"),
    (r"wav2vec2\.encoder\.layer_norm\.(weight|bias)", r"ssl.encoder.layer_norm.\1"),
    (r"wav2vec2\.encoder\.layers\.(\d+)\.self_attn\.(q|k|v|out)_proj\.(weight|bias)",
     r"ssl.encoder.layers.\1.attention.\2_proj.\3"),
    (r"wav2vec2\.encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"ssl.encoder.layers.\1.layer_norm.\2"),
    (r"wav2vec2\.encoder\.layers\.(\d+)\.fc1\.(weight|bias)", r"ssl.encoder.layers.\1.feed_forward.intermediate_dense.\2"),
    (r"wav2vec2\.encoder\.layers\.(\d+)\.fc2\.(weight|bias)", r"ssl.encoder.layers.\1.feed_forward.output_dense.\2"),
    (r"wav2vec2\.encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"ssl.encoder.layers.\1.final_layer_norm.\2"),
    (r"(domain_emb|judge_emb)", r"\1"),
    (r"blstm\.((weight|bias)_(ih|hh)_l0(_reverse)?)", r"blstm.\1"),
    (r"projection\.(0|2)\.(weight|bias)", r"projection.\1.\2"),
)
_COMPILED = tuple((re.compile(p + r"$"), r) for p, r in _RENAMES)


def convert_state_dict(official: Mapping[str, Any], weight_names: tuple[str, str]) -> dict[str, Any]:
    """The checkpoint's state dict (fairseq/SpeechMOS names) renamed for :func:`build_model`.

    ``weight_names``: what the positional convolution's weight-norm ``g`` and ``v`` are called
    in the built model (transformers uses torch's parametrizations, whose names differ across
    torch versions). Raises ValueError naming an unknown key: a different model, not this one.
    """
    out: dict[str, Any] = {}
    for key, value in official.items():
        for pattern, target in _COMPILED:
            if pattern.match(key):
                name = pattern.sub(target, key)
                if not name:
                    break
                name = name.replace("WEIGHT_G", weight_names[0]).replace("WEIGHT_V", weight_names[1])
                out[name] = value
                break
        else:
            raise ValueError(f"{key!r} is not a parameter of UTMOS22 strong (SpeechMOS layout)")
    return out


def config_from_state(official: Mapping[str, Any]) -> UTMOSConfig:
    """The sizes of the checkpoint's model, read from its tensor shapes; ValueError when the
    time structure (front-end kernels, one LSTM layer) is not the released model's."""
    try:
        layers = {int(m.group(1)) for k in official
                  if (m := re.match(r"wav2vec2\.encoder\.layers\.(\d+)\.", k))}
        convs = sorted(int(m.group(1)) for k in official
                       if (m := re.match(r"wav2vec2\.feature_extractor\.conv_layers\.(\d+)\.0\.weight$", k)))
        kernels = tuple(int(official[f"wav2vec2.feature_extractor.conv_layers.{i}.0.weight"].shape[-1])
                        for i in convs)
        proj = official["wav2vec2.post_extract_proj.weight"]
        pos_v = official["wav2vec2.encoder.pos_conv.0.weight_v"]
        ssl_dim, conv_dim = int(proj.shape[0]), int(proj.shape[1])
        cfg = UTMOSConfig(
            conv_dim=conv_dim, ssl_dim=ssl_dim, ssl_layers=len(layers),
            ssl_heads=max(1, ssl_dim // 64),  # the released model's head width is 64
            ssl_ffn=int(official["wav2vec2.encoder.layers.0.fc1.weight"].shape[0]),
            pos_conv_kernel=int(pos_v.shape[2]), pos_conv_groups=ssl_dim // int(pos_v.shape[1]),
            domain_dim=int(official["domain_emb"].shape[1]), judge_dim=int(official["judge_emb"].shape[1]),
            lstm_hidden=int(official["blstm.weight_hh_l0"].shape[1]),
            projection_hidden=int(official["projection.0.weight"].shape[0]))
    except KeyError as exc:
        raise ValueError(f"not a UTMOS22 strong checkpoint: no {exc.args[0]!r}") from None
    if kernels != tuple(k for k, _ in CONV_LAYERS):
        raise ValueError(f"front-end kernels {kernels} differ from wav2vec 2.0's "
                         f"{tuple(k for k, _ in CONV_LAYERS)}")
    if any(k.startswith("blstm.") and k.endswith(("_l1", "_l1_reverse")) for k in official):
        raise ValueError("the checkpoint's LSTM has more than one layer; UTMOS22 strong has one")
    return cfg


def _weight_norm_names(model: Any) -> tuple[str, str]:
    names = [k.removeprefix("ssl.encoder.pos_conv_embed.conv.") for k in model.state_dict()
             if k.startswith("ssl.encoder.pos_conv_embed.conv.") and not k.endswith("bias")]
    if set(names) == {"parametrizations.weight.original0", "parametrizations.weight.original1"}:
        return "parametrizations.weight.original0", "parametrizations.weight.original1"
    if set(names) == {"weight_g", "weight_v"}:
        return "weight_g", "weight_v"
    raise RuntimeError(f"unexpected weight-norm parameters of transformers' positional conv: {names}")


def load_model(path: str | Path, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """The model (eval mode, on ``device``) from a checkpoint in the SpeechMOS layout (a plain
    state dict), read with ``weights_only=True``, and its provenance (path, SHA-256, sizes)."""
    import torch

    from tokbench.io.files import file_digest

    path = Path(path).expanduser()
    if not path.is_file():
        raise UTMOSUnavailableError(f"UTMOS checkpoint {path} does not exist")
    digest = file_digest(path)
    if CHECKPOINT_SHA256 is not None and digest != CHECKPOINT_SHA256:
        raise ValueError(f"{path}: SHA-256 {digest[:16]}... is not the release's "
                         f"{CHECKPOINT_SHA256[:16]}...; delete it and fetch it again")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for files that are not checkpoints
        raise ValueError(f"{path} is not a readable torch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a state dict (the SpeechMOS release layout)")
    config = config_from_state(state)
    model = build_model(config)
    try:
        model.load_state_dict(convert_state_dict(state, _weight_norm_names(model)), strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: the weights do not fit UTMOS22 strong ({exc})") from None
    info = {"path": str(path.resolve()), "sha256": digest, "config": asdict(config)}
    return model.eval().to(device), info


def checkpoint_cache_path(url: str = CHECKPOINT_URL) -> Path:
    from tokbench.io.cache import cache_root

    return cache_root() / "metrics" / "utmos22" / url.rsplit("/", 1)[-1]


def fetch_checkpoint(url: str = CHECKPOINT_URL,
                     opener: Callable[..., Any] = urllib.request.urlopen) -> Path:
    """The released checkpoint in the tokbench cache, downloaded on first use (resumable)."""
    from tokbench.io.download import DownloadError, download
    from tokbench.io.hub import hub_offline

    dest = checkpoint_cache_path(url)
    if dest.is_file():
        return dest
    fix = (f"run `tokbench prefetch --metrics utmos` where the network is reachable, or place a "
           f"copy of {url} at {dest}")
    if hub_offline():
        raise UTMOSUnavailableError(f"the UTMOS checkpoint is not cached and HF_HUB_OFFLINE is set: {fix}")
    try:
        return download(url, dest, opener=opener)
    except DownloadError as exc:
        raise UTMOSUnavailableError(f"the UTMOS checkpoint is not cached and could not be "
                                    f"downloaded ({exc}): {fix}") from None


_MODELS: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}


def load(device: str = "cpu", checkpoint: str | Path | None = None) -> tuple[Any, dict[str, Any]]:
    """(model, provenance) of this process for ``device``, loaded on first use: ``checkpoint``
    (a local file) or the cached/downloaded release."""
    key = (str(checkpoint or CHECKPOINT_URL), str(device))
    if key not in _MODELS:
        path = Path(checkpoint) if checkpoint else fetch_checkpoint()
        _MODELS[key] = load_model(path, device)
    return _MODELS[key]


class UTMOSPredictor(CheckpointModel):
    """``utmos`` of 16 kHz signals; degrades to null-with-reason without the checkpoint."""

    label = "UTMOS model"
    unavailable = (UTMOSUnavailableError, ValueError)

    def _fetch(self) -> tuple[Any, dict[str, Any]]:
        return load(self.device, self.checkpoint)

    def predict(self, wav16: np.ndarray, role: str = "output") -> float:
        """The MOS of a 16 kHz signal in [-1, 1]; NotComputable for silence, a signal shorter
        than one front-end frame or longer than ``MAX_SECONDS``, or a non-finite result."""
        import torch

        x = as_signal(wav16, role, np.float32)
        require_sound(x, role)
        if len(x) < MIN_SAMPLES:
            raise NotComputable(f"the {role} has {len(x)} samples; UTMOS needs at least "
                                f"{MIN_SAMPLES} (one 25 ms frame)")
        if len(x) > MAX_SECONDS * SCORING_SAMPLE_RATE:
            raise NotComputable(f"the {role} lasts {len(x) / SCORING_SAMPLE_RATE:.0f} s; UTMOS is "
                                f"scored up to {MAX_SECONDS:.0f} s (its attention grows with the "
                                "square of the length, and it was trained on short clips)")
        if not self.available:
            raise NotComputable(self.reason)
        model = self.loaded[0]
        with torch.inference_mode():
            score = float(model(torch.from_numpy(x)[None].to(next(model.parameters()).device))[0])
        if not np.isfinite(score):
            raise NotComputable(f"UTMOS of the {role} is not finite")
        return score


def _assets(needed_by: str) -> list[Any]:
    """The release checkpoint, for ``tokbench prefetch``: fetched from the release URL."""
    from tokbench.suites.assets import checkpoint_asset

    def fetch(asset: Any, log: Any) -> None:
        log(f"fetching {asset.source}")
        fetch_checkpoint(asset.source)

    return [checkpoint_asset(f"{needed_by} (utmos)", CHECKPOINT_URL, checkpoint_cache_path(),
                             label="UTMOS22 strong", load=load_model, sha256=CHECKPOINT_SHA256,
                             missing="not downloaded yet (size not recorded offline)",
                             fetch=fetch)]


def _scorer(ctx: ModelContext) -> Any:
    from tokbench.metrics.model_scoring import NonIntrusive

    return NonIntrusive(METRIC, UTMOSPredictor(ctx.device, ctx.checkpoint))


declare(
    # 2 x (a mean of an unbounded projection) + 3: no hard limits, but finite
    MetricSpec(METRIC, "UTMOS22 strong naturalness MOS (official checkpoint, SpeechMOS release), "
               "non-intrusive", "higher", "MOS", lo=1.0, hi=5.0, valid_lo=-float("inf"),
               valid_hi=float("inf"), groups=("mos",)),
    where="model", compute=_scorer,
    needs=Needs(speech=True, sample_rate=SCORING_SAMPLE_RATE),
    protocol={"utmos": UTMOS_SETTINGS}, packages=("transformers",), weights=_assets,
    citation="Saeki et al., Interspeech 2022 (UTMOS, VoiceMOS Challenge 2022)",
    implementation="sarulab-speech/UTMOS22 strong learner as the SpeechMOS release ships it, "
                   "loaded onto transformers Wav2Vec2Model + the BLSTM head",
    license="MIT (SpeechMOS release)",
)
