"""HuBERT/WavLM hidden states for the semantic-token adapters: the models the family knows
(:data:`MODELS`), their loading, and :class:`SSLFeatures` (one or several layers, batched with
lengths). Layer, normalisation and padding conventions: :mod:`tokbench.adapters.ssl.units`.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from tokbench.io.hub import hub_cache_dir, hub_offline, load_hf_model

SAMPLE_RATE = 16_000
HOP = 320  # product of the conv strides (5, 2, 2, 2, 2, 2, 2)
FRAME_RATE = SAMPLE_RATE / HOP  # 50 Hz
NORM_EPS = 1e-7  # transformers' Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm

# Batched codes must equal one-at-a-time codes on at least this share of valid frames (the
# paths differ only by float rounding in matrix products of different shapes).
BATCH_TOLERANCE = 0.99

# Revisions. Full commit hashes are pinned where the commit could be verified (a commit whose
# tree holds the current config and weights); "main" otherwise. The resolved commit of what was
# actually loaded is recorded in every run either way.
HUBERT_BASE_REVISION = "main"  # no full commit hash of this repo could be verified
HUBERT_LARGE_REVISION = "fa4264f8c20e848d45f9b3e5eea32b5cfab209c3"  # last config change; later: README only
WAVLM_LARGE_REVISION = "c1423ed94bb01d80a3f5ce5bc39f6026a0f4828c"  # head of main (README update)

HUBERT_CITATION = ("Hsu et al., HuBERT: Self-Supervised Speech Representation Learning by Masked "
                   "Prediction of Hidden Units, IEEE/ACM TASLP 2021")
WAVLM_CITATION = ("Chen et al., WavLM: Large-Scale Self-Supervised Pre-Training for Full Stack "
                  "Speech Processing, IEEE JSTSP 2022")


@dataclass(frozen=True)
class SSLModel:
    """A self-supervised model the adapter knows: where it lives and its fixed shape."""

    repo_id: str
    revision: str
    arch: Literal["hubert", "wavlm"]
    num_layers: int
    pretrain_normalize: bool  # input normalisation used in pre-training (fairseq/unilm configs)
    license: str
    citation: str


MODELS: dict[str, SSLModel] = {
    "hubert-base": SSLModel("facebook/hubert-base-ls960", HUBERT_BASE_REVISION, "hubert", 12,
                            False, "apache-2.0", HUBERT_CITATION),
    "hubert-large": SSLModel("facebook/hubert-large-ll60k", HUBERT_LARGE_REVISION, "hubert", 24,
                             True, "apache-2.0", HUBERT_CITATION),
    "wavlm-large": SSLModel("microsoft/wavlm-large", WAVLM_LARGE_REVISION, "wavlm", 24, True,
                            "not stated on the model card (see microsoft/unilm)", WAVLM_CITATION),
}

ModelName = Literal["hubert-base", "hubert-large", "wavlm-large"]


# --- loading ---------------------------------------------------------------------------------

def read_preprocessor_config(repo_id: str, revision: str, checkpoint: str | None) -> dict[str, Any] | None:
    """The checkpoint's ``preprocessor_config.json`` (``from_pretrained`` of the model does not
    fetch it): from ``checkpoint``, else the Hub cache (fetched when online). None if absent."""
    if checkpoint is not None:
        path: Path | None = Path(checkpoint).expanduser() / "preprocessor_config.json"
    else:
        from huggingface_hub import hf_hub_download

        try:
            path = Path(hf_hub_download(repo_id, "preprocessor_config.json", revision=revision,
                                        cache_dir=str(hub_cache_dir()),
                                        local_files_only=hub_offline()))
        except OSError:  # not in the repo (or offline and not cached): the documented default
            path = None
    if path is None or not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from None


def model_folder(checkpoint: str | None, model: str) -> str | None:
    """The local folder of ``model``: ``checkpoint`` itself, or its sub-folder named after the
    model (``DIR/wavlm-large``) when ``checkpoint`` holds one folder per model (as the tiny
    checkpoints the tests build do)."""
    if checkpoint is None:
        return None
    root = Path(checkpoint).expanduser()
    sub = root / model
    if not (root / "config.json").is_file() and (sub / "config.json").is_file():
        return str(sub)
    return checkpoint


# --- features --------------------------------------------------------------------------------

def conv_frames(lengths: torch.Tensor, kernels: Iterable[int], strides: Iterable[int]) -> torch.Tensor:
    """Frames the conv stack gives for ``lengths`` samples (0 when the input is too short)."""
    out = lengths.to(torch.long)
    for k, s in zip(kernels, strides, strict=True):
        out = torch.div(out - k, s, rounding_mode="floor") + 1
    return out.clamp_min(0)


class SSLFeatures:
    """Hidden states of one or several layers of a HuBERT/WavLM checkpoint, batched with lengths.

    ``layer`` is one layer or a sequence of layers; every layer comes from the same forward pass
    (blocks after the deepest are not run). Shared by the tokenizers and ``fit-kmeans`` so that
    centroids are fitted on exactly the features they later quantise.
    """

    def __init__(self, model: str, layer: int | Sequence[int], *, normalize: bool | None = None,
                 revision: str | None = None, device: str = "cpu", checkpoint: str | None = None):
        layers = (layer,) if isinstance(layer, int) else tuple(layer)
        if not layers or len(set(layers)) != len(layers):
            raise ValueError(f"layers must be distinct and at least one, got {list(layers)}")
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}; known: {', '.join(MODELS)}")
        spec = MODELS[model]
        from transformers import HubertModel, WavLMModel

        cls = HubertModel if spec.arch == "hubert" else WavLMModel
        revision = revision or spec.revision
        checkpoint = model_folder(checkpoint, model)
        net, source = load_hf_model(cls, spec.repo_id, revision, checkpoint, device)
        cfg = net.config
        n_layers = len(net.encoder.layers)
        for layer_ in layers:
            if not 1 <= layer_ <= n_layers:
                raise ValueError(f"layer {layer_} does not exist: {spec.repo_id} has transformer "
                                 f"blocks 1..{n_layers} (layer L = output of block L)")
        if math.prod(cfg.conv_stride) != HOP:
            raise ValueError(f"{spec.repo_id}: conv strides {list(cfg.conv_stride)} give a hop of "
                             f"{math.prod(cfg.conv_stride)} samples; this adapter needs {HOP} (50 Hz)")
        pre = read_preprocessor_config(spec.repo_id, revision, checkpoint)
        if pre and int(pre.get("sampling_rate", SAMPLE_RATE)) != SAMPLE_RATE:
            raise ValueError(f"{spec.repo_id}: preprocessor sampling_rate {pre['sampling_rate']} "
                             f"!= {SAMPLE_RATE}")
        if normalize is not None:
            self.normalize, self.normalize_from = bool(normalize), "option"
        elif pre is not None and "do_normalize" in pre:
            self.normalize, self.normalize_from = bool(pre["do_normalize"]), "preprocessor_config.json"
        else:
            self.normalize, self.normalize_from = spec.pretrain_normalize, "pre-training default"
        self.model_name = model
        self.spec = spec
        self.layers = layers
        self.layer = layers[0]  # the single-layer users' layer
        self.device = device
        self.source = source
        self.dim = int(cfg.hidden_size)
        self.kernels = tuple(int(k) for k in cfg.conv_kernel)
        self.strides = tuple(int(s) for s in cfg.conv_stride)
        self.per_item_conv = cfg.feat_extract_norm == "group"
        # Blocks after the deepest layer are never needed; hooks read each block's own output.
        net.encoder.layers = net.encoder.layers[: max(layers)]
        self._captured: dict[int, torch.Tensor] = {}
        for layer_ in layers:
            net.encoder.layers[layer_ - 1].register_forward_hook(self._capture_hook(layer_))
        self.net = net

    def _capture_hook(self, layer: int) -> Callable[..., None]:
        def capture(module: Any, args: Any, output: Any) -> None:
            self._captured[layer] = output[0] if isinstance(output, tuple) else output
        return capture

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return conv_frames(lengths, self.kernels, self.strides)

    def describe(self) -> dict[str, Any]:
        return {"model": self.model_name, "repo_id": self.source.repo_id,
                "revision": self.source.revision, "resolved": self.source.resolved,
                "checkpoint": self.source.local_path,
                **({"layer": self.layer} if len(self.layers) == 1 else {"layers": list(self.layers)}),
                "layer_definition": "output of transformer block L (1-based)",
                "normalize": self.normalize, "normalize_from": self.normalize_from}

    def __call__(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features ``[B, F, D]`` of the one layer (float32, zero past each item's frames) and
        ``frame_lengths [B]``."""
        if len(self.layers) != 1:
            raise ValueError(f"these features hold layers {list(self.layers)}: use layer_features()")
        feats, frames = self.layer_features(wav, lengths)
        return feats[self.layer], frames

    @torch.inference_mode()
    def layer_features(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        """Features ``{layer: [B, F, D]}`` (float32, zero past each item's frames) of every layer,
        from one forward pass, and ``frame_lengths [B]``."""
        wav = wav.to(self.device, torch.float32)
        lengths = lengths.to(self.device, torch.long)
        frames = self.frame_lengths(lengths)
        n_frames = int(frames.max()) if len(frames) else 0
        batch = wav.shape[0]
        if n_frames == 0:
            return {layer: wav.new_zeros(batch, 0, self.dim) for layer in self.layers}, frames
        valid = torch.arange(wav.shape[1], device=self.device)[None, :] < lengths[:, None]
        x = torch.where(valid, wav, 0.0)
        if self.normalize:
            n = lengths.clamp_min(1).to(torch.float32)[:, None]
            mean = x.sum(1, keepdim=True) / n
            var = (torch.where(valid, x - mean, 0.0) ** 2).sum(1, keepdim=True) / n
            x = torch.where(valid, (x - mean) / torch.sqrt(var + NORM_EPS), 0.0)
        conv = self.net.feature_extractor
        if self.per_item_conv:  # group norm over time: each item alone, on its own samples
            feats = None
            for i in range(batch):
                f_i = int(frames[i])
                if f_i == 0:
                    continue
                out = conv(x[i : i + 1, : int(lengths[i])])[:, :, :f_i]
                if feats is None:
                    feats = out.new_zeros(batch, out.shape[1], n_frames)
                feats[i, :, :f_i] = out[0]
        else:
            feats = conv(x[:, : int(lengths.max())])[:, :, :n_frames]
        hidden = self.net.feature_projection(feats.transpose(1, 2))  # type: ignore[union-attr]
        if isinstance(hidden, tuple):  # WavLM also returns the normalised conv features
            hidden = hidden[0]
        mask = torch.arange(n_frames, device=self.device)[None, :] < frames[:, None]
        self._captured = {}
        with warnings.catch_warnings():
            # WavLM passes a bool padding mask beside a float position bias to torch's attention.
            warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")
            self.net.encoder(hidden, attention_mask=mask)
        captured, self._captured = self._captured, {}
        missing = [layer for layer in self.layers if layer not in captured]
        if missing:
            raise RuntimeError(f"blocks {missing} of {self.spec.repo_id} did not run")
        return {layer: torch.where(mask[..., None], captured[layer].to(torch.float32), 0.0)
                for layer in self.layers}, frames
