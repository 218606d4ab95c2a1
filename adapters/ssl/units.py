"""Semantic tokens: k-means units of self-supervised speech models (HuBERT, WavLM).

A frame's token is the index of the nearest k-means centroid (squared Euclidean distance) to
the hidden state of layer L of the model, at 50 Hz (16 kHz input, conv stack stride 320).

**Layer convention.** "Layer L" (1 <= L <= number of transformer blocks) is the *output of
transformer block L*, counting blocks from 1. It is what fairseq's
``extract_features(output_layer=L)`` returns (the reference used by GSLM and HuBERT's own
k-means), and transformers' ``hidden_states[L]``. (For the pre-layer-norm "large" models,
transformers applies the encoder's final layer norm to ``hidden_states[N]`` of the last block
only; layer N here is the block's output without it.) Layer 0, the input to block 1, is not
offered. Blocks after L are not run.

**Input normalisation.** Option ``normalize``: ``None`` means what the checkpoint's
``preprocessor_config.json`` says (``do_normalize``), or, where the checkpoint has no such file,
the model's pre-training setting (:data:`MODELS`: HuBERT-base False, HuBERT-large and
WavLM-large True). Published preprocessor configs can disagree with pre-training; pass
``--set normalize=true|false`` to choose. The resolved value is recorded in ``meta.options``;
centroids record the value they were fitted with and refuse to be used with the other.
Normalisation is zero mean and unit variance over each item's own valid samples (as
transformers' ``Wav2Vec2FeatureExtractor``, eps 1e-7).

**Padding.** Batches are zero-padded; the transformer gets an attention mask, so padded frames
never reach valid ones. HuBERT-base (and other ``feat_extract_norm="group"`` checkpoints)
normalise the first convolution's output over time, so padding would change valid frames: their
conv feature extractor runs per item on its own samples. Layer-norm checkpoints (the "large"
models) run it batched (its valid frames only see valid samples). Batched codes equal
one-at-a-time codes up to float rounding; the declared tolerance is :data:`BATCH_TOLERANCE`.
``frame_lengths`` follow the conv stack: ``floor((len - 400) / 320) + 1`` for the standard
stack (0 for inputs shorter than 400 samples).

**Centroids** come from ``--set centroids=PATH`` or the cache file
``$TOKBENCH_CACHE/kmeans/<model>-l<layer>-km<K>.npz`` (what ``tokbench fit-kmeans`` writes and
``tokbench convert-gslm`` makes from the published GSLM k-means models).

**Decoding** needs a unit vocoder (option ``vocoder``). ``vocoder=knn-vc``
(:mod:`tokbench.adapters.ssl.knn_vc`) decodes with a speaker prompt: capabilities ``decode`` and
``speaker_prompt``; ``decode(tokens, prompt)`` requires the prompt. Its options:
``vocoder_checkpoint`` (the released HiFi-GAN file; default: downloaded into the cache) and
``vocoder_features`` (a local WavLM-Large folder for its layer-6 features; default: this
tokenizer's own checkpoint when the model is ``wavlm-large``, else the Hub). Without a vocoder
the capability is ``embed`` only.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import random
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from tokbench.adapters.ssl.kmeans import (
    Centroids,
    CentroidsError,
    CentroidsNotFoundError,
    assign,
    centroids_cache_path,
    fit_kmeans,
    load_centroids,
    save_centroids,
)
from tokbench.io.hub import hub_cache_dir, hub_offline, load_hf_model
from tokbench.types import Audio, ModelSource, TokenizerBase, TokenizerMeta, Tokens

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


# --- features --------------------------------------------------------------------------------

def conv_frames(lengths: torch.Tensor, kernels: Iterable[int], strides: Iterable[int]) -> torch.Tensor:
    """Frames the conv stack gives for ``lengths`` samples (0 when the input is too short)."""
    out = lengths.to(torch.long)
    for k, s in zip(kernels, strides, strict=True):
        out = torch.div(out - k, s, rounding_mode="floor") + 1
    return out.clamp_min(0)


class SSLFeatures:
    """Hidden states of layer ``layer`` of a HuBERT/WavLM checkpoint, batched with lengths.

    Shared by the tokenizer and ``fit-kmeans`` so that centroids are fitted on exactly the
    features they later quantise.
    """

    def __init__(self, model: str, layer: int, *, normalize: bool | None = None,
                 revision: str | None = None, device: str = "cpu", checkpoint: str | None = None):
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}; known: {', '.join(MODELS)}")
        spec = MODELS[model]
        from transformers import HubertModel, WavLMModel

        cls = HubertModel if spec.arch == "hubert" else WavLMModel
        revision = revision or spec.revision
        net, source = load_hf_model(cls, spec.repo_id, revision, checkpoint, device)
        cfg = net.config
        n_layers = len(net.encoder.layers)
        if not 1 <= layer <= n_layers:
            raise ValueError(f"layer {layer} does not exist: {spec.repo_id} has transformer blocks "
                             f"1..{n_layers} (layer L = output of block L)")
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
        self.layer = layer
        self.device = device
        self.source = source
        self.dim = int(cfg.hidden_size)
        self.kernels = tuple(int(k) for k in cfg.conv_kernel)
        self.strides = tuple(int(s) for s in cfg.conv_stride)
        self.per_item_conv = cfg.feat_extract_norm == "group"
        # Blocks after `layer` are never needed; the hook reads block `layer`'s own output.
        net.encoder.layers = net.encoder.layers[:layer]
        self._captured: torch.Tensor | None = None
        net.encoder.layers[layer - 1].register_forward_hook(self._capture)
        self.net = net

    def _capture(self, module: Any, args: Any, output: Any) -> None:
        self._captured = output[0] if isinstance(output, tuple) else output

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return conv_frames(lengths, self.kernels, self.strides)

    def describe(self) -> dict[str, Any]:
        return {"model": self.model_name, "repo_id": self.source.repo_id,
                "revision": self.source.revision, "resolved": self.source.resolved,
                "checkpoint": self.source.local_path, "layer": self.layer,
                "layer_definition": "output of transformer block L (1-based)",
                "normalize": self.normalize, "normalize_from": self.normalize_from}

    @torch.inference_mode()
    def __call__(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features ``[B, F, D]`` (float32, zero past each item's frames) and ``frame_lengths [B]``."""
        wav = wav.to(self.device, torch.float32)
        lengths = lengths.to(self.device, torch.long)
        frames = self.frame_lengths(lengths)
        n_frames = int(frames.max()) if len(frames) else 0
        batch = wav.shape[0]
        if n_frames == 0:
            return wav.new_zeros(batch, 0, self.dim), frames
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
        hidden = self.net.feature_projection(feats.transpose(1, 2))
        if isinstance(hidden, tuple):  # WavLM also returns the normalised conv features
            hidden = hidden[0]
        mask = torch.arange(n_frames, device=self.device)[None, :] < frames[:, None]
        self._captured = None
        with warnings.catch_warnings():
            # WavLM passes a bool padding mask beside a float position bias to torch's attention.
            warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")
            self.net.encoder(hidden, attention_mask=mask)
        out, self._captured = self._captured, None
        if out is None:
            raise RuntimeError(f"block {self.layer} of {self.spec.repo_id} did not run")
        return torch.where(mask[..., None], out.to(torch.float32), 0.0), frames


# --- the tokenizer ---------------------------------------------------------------------------

def gslm_hint(model: str, layer: int, k: int) -> str:
    from tokbench.adapters.ssl.gslm import GSLM_KMEANS_URLS, GSLM_LAYER, GSLM_MODEL

    if model == GSLM_MODEL and layer == GSLM_LAYER and k in GSLM_KMEANS_URLS:
        return (f"; or use the published GSLM centroids: `tokbench convert-gslm --k {k}` "
                f"(downloads {GSLM_KMEANS_URLS[k]}), or download that file yourself and run "
                f"`tokbench convert-gslm --k {k} --input km.bin`")
    return ""


def find_centroids(model: str, layer: int, k: int, path: str | None) -> Path:
    """The centroid file for a variant: ``path`` if given, else the cache file; clear error if none."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise CentroidsNotFoundError(f"centroid file {p} (--set centroids=...) does not exist")
        return p
    p = centroids_cache_path(model, layer, k)
    if p.is_file():
        return p
    raise CentroidsNotFoundError(
        f"no k-means centroids for {model} layer {layer} with K={k}: looked for {p}. Fit them "
        f"with `tokbench fit-kmeans --model {model} --layer {layer} --k {k} --dataset DATA "
        f"[--hours H]`, or pass --set centroids=PATH{gslm_hint(model, layer, k)}")


def check_centroids(c: Centroids, model: str, layer: int, k: int, dim: int, normalize: bool, where: Path) -> None:
    """Refuse centroids fitted for another model, layer, K, width or input normalisation."""
    p = c.provenance
    problems = []
    if c.k != k:
        problems.append(f"K={c.k}, not {k}")
    if c.dim != dim:
        problems.append(f"dimension {c.dim}, but layer {layer} has {dim}")
    if p.get("model") not in (None, model):
        problems.append(f"fitted on {p.get('model')}, not {model}")
    if p.get("layer") not in (None, layer):
        problems.append(f"fitted on layer {p.get('layer')}, not {layer}")
    if problems:
        raise CentroidsError(f"centroids {where} do not fit {model} layer {layer} K={k}: "
                             + "; ".join(problems))
    if p.get("normalize") is not None and bool(p["normalize"]) != normalize:
        raise CentroidsError(
            f"centroids {where} were fitted on {'normalised' if p['normalize'] else 'raw'} input, "
            f"but this tokenizer resolves normalize={normalize}: pass --set "
            f"normalize={str(bool(p['normalize'])).lower()} (or refit the centroids)")


@dataclass(frozen=True)
class SSLKMeansOptions:
    model: ModelName = "hubert-base"
    layer: int = 6  # output of transformer block `layer` (1-based)
    k: int = 100
    centroids: str | None = None  # centroid file; None: $TOKBENCH_CACHE/kmeans/<model>-l<layer>-km<k>.npz
    normalize: bool | None = None  # None: the checkpoint's preprocessor config, else pre-training setting
    revision: str | None = None  # None: the pinned revision of the model
    vocoder: Literal["knn-vc"] | None = None  # unit vocoder for decode(); None: no decode capability
    vocoder_checkpoint: str | None = None  # kNN-VC generator file; None: the release, cached
    vocoder_features: str | None = None  # local WavLM-Large folder for the vocoder's features

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {list(MODELS)}, got {self.model!r}")
        n = MODELS[self.model].num_layers
        if not 1 <= self.layer <= n:
            raise ValueError(f"layer must lie in [1, {n}] for {self.model} (layer L = output "
                             f"of transformer block L), got {self.layer}")
        if self.k < 2:
            raise ValueError(f"k must be at least 2, got {self.k}")
        if self.vocoder is None and (self.vocoder_checkpoint or self.vocoder_features):
            raise ValueError("vocoder_checkpoint and vocoder_features need a vocoder: add "
                             "--set vocoder=knn-vc")


class SSLKMeansTokenizer(TokenizerBase):
    """k-means units of a HuBERT/WavLM layer: one codebook of K at 50 Hz."""

    Options = SSLKMeansOptions

    @classmethod
    def describe(cls, options: SSLKMeansOptions) -> TokenizerMeta:
        spec = MODELS[options.model]
        caps = {"embed"} | ({"decode", "speaker_prompt"} if options.vocoder else set())
        return TokenizerMeta(
            name=f"{options.model}-l{options.layer}-km{options.k}", family=spec.arch,
            kind="semantic", sample_rate=SAMPLE_RATE, frame_rate=FRAME_RATE, n_codebooks=1,
            codebook_sizes=(options.k,), streamable=False, capabilities=frozenset(caps),
            source=ModelSource(repo_id=spec.repo_id, revision=options.revision or spec.revision),
            license=spec.license, citation=spec.citation,
            options={"model": options.model, "layer": options.layer, "k": options.k,
                     "normalize": options.normalize, "vocoder": options.vocoder})

    def __init__(self, options: SSLKMeansOptions, *, device: str = "cpu", checkpoint: str | None = None):
        super().__init__(options, device=device, checkpoint=checkpoint)
        path = find_centroids(options.model, options.layer, options.k, options.centroids)
        centroids = load_centroids(path)  # before the model: a missing file fails fast
        self.features = SSLFeatures(options.model, options.layer, normalize=options.normalize,
                                    revision=options.revision, device=device, checkpoint=checkpoint)
        check_centroids(centroids, options.model, options.layer, options.k, self.features.dim,
                        self.features.normalize, path)
        self.centroids_info = centroids
        self.centroids = torch.from_numpy(centroids.array).to(device)
        self.vocoder = self._load_vocoder(options, device, checkpoint) if options.vocoder else None
        self.meta = dataclasses.replace(
            self.meta, source=self.features.source,
            options={**self.meta.options, "normalize": self.features.normalize,
                     "normalize_from": self.features.normalize_from,
                     "centroids_sha256": centroids.checksum(),
                     "centroids_source": centroids.provenance.get("source", "fit-kmeans"),
                     **(self._vocoder_info() if self.vocoder else {})})

    def _load_vocoder(self, options: SSLKMeansOptions, device: str, checkpoint: str | None) -> Any:
        from tokbench.adapters.ssl.knn_vc import FEATURE_LAYER, FEATURE_MODEL, KnnVC, UnitDecoder

        same_model = options.model == FEATURE_MODEL
        same_space = same_model and options.layer == FEATURE_LAYER
        # This tokenizer's own extractor serves when it is exactly the vocoder's (raw input).
        shared = same_space and not self.features.normalize and not options.vocoder_features
        knn = KnnVC.load(checkpoint=options.vocoder_checkpoint,
                         features_checkpoint=options.vocoder_features or (checkpoint if same_model else None),
                         revision=options.revision if same_model else None, device=device,
                         features=self.features if shared else None)
        return UnitDecoder(knn, self.centroids, same_space, self.encode)

    def _vocoder_info(self) -> dict[str, Any]:
        return {**self.vocoder.knn.describe(), "vocoder_query": self.vocoder.query}

    def encode(self, wav: torch.Tensor, lengths: torch.Tensor) -> Tokens:
        self.check_input(wav, lengths)
        feats, frames = self.features(wav, lengths)
        batch, n_frames, dim = feats.shape
        labels, _ = assign(feats.reshape(-1, dim), self.centroids)
        codes = labels.reshape(batch, n_frames)
        codes = torch.where(torch.arange(n_frames, device=codes.device)[None, :] < frames[:, None], codes, 0)
        return Tokens(codes[:, None, :].to(wav.device), frames.to(wav.device))

    def embed(self, tokens: Tokens) -> torch.Tensor:
        """The centroid of each token: ``[B, 1, F, D]``, zero on padded frames."""
        codes = tokens.codes
        if codes.shape[1] != 1:
            raise ValueError(f"{self.meta.name} has one codebook; got codes with {codes.shape[1]}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.options.k):
            raise ValueError(f"codes must lie in [0, {self.options.k}), got "
                             f"[{int(codes.min())}, {int(codes.max())}]")
        out = self.centroids[codes.to(self.centroids.device)]
        valid = torch.arange(codes.shape[2], device=out.device)[None, :] < tokens.frame_lengths.to(out.device)[:, None]
        return torch.where(valid[:, None, :, None], out, 0.0).to(codes.device)

    def decode(self, tokens: Tokens, prompt: Audio | None = None) -> Audio:
        if self.vocoder is None:
            raise NotImplementedError(f"{self.meta.name}: semantic tokens need a vocoder to be "
                                      "decoded (--set vocoder=knn-vc); none is configured")
        return self.vocoder.decode(tokens, prompt)


# --- fitting centroids on a dataset ----------------------------------------------------------

def collect_features(
    features: SSLFeatures, dataset: Any, *, hours: float | None = None, seed: int = 0,
    batch_size: int = 8, progress: Callable[..., Iterable] = lambda it, **_: it,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Layer features ``[N, D]`` (CPU float32) of a seeded random selection of ``dataset``,
    capped at ``hours`` of audio (the last utterance is cut to fit), through the encoder path."""
    from tokbench.data.batches import Item, length_sorted_batches, load_item, to_batch

    utts = list(dataset.utterances)
    random.Random(seed).shuffle(utts)
    budget = None if hours is None else int(round(hours * 3600 * SAMPLE_RATE))
    used = 0
    chunks: list[torch.Tensor] = []
    failed: dict[str, str] = {}
    n_used = 0
    t0 = time.perf_counter()
    pending: list[Item] = []

    def flush() -> None:
        for batch in length_sorted_batches(pending, batch_size):
            audio = to_batch(batch, SAMPLE_RATE, features.device)
            feats, frames = features(audio.wav, audio.lengths)
            for i in range(len(batch)):
                chunks.append(feats[i, : int(frames[i])].cpu())
        pending.clear()

    for utt in progress(utts, desc="features"):
        if budget is not None and used >= budget:
            break
        item = load_item(dataset, utt, SAMPLE_RATE, scoring=False)
        if not item.ok:
            failed[utt.id] = item.error or "unreadable"
            continue
        if budget is not None and used + len(item.wav) > budget:
            item.wav = item.wav[: budget - used]
        used += len(item.wav)
        n_used += 1
        pending.append(item)
        if len(pending) >= 4 * batch_size:
            flush()
    flush()
    x = torch.cat(chunks) if chunks else torch.zeros(0, features.dim)
    info = {"dataset": dataset.name, "dataset_revision": dataset.revision,
            "selection": f"utterances shuffled with seed {seed}; the last one cut to the cap",
            "hours_requested": hours, "hours_used": used / SAMPLE_RATE / 3600,
            "n_utterances": n_used, "n_failed": len(failed), "n_frames": int(x.shape[0]),
            "feature_seconds": time.perf_counter() - t0}
    return x, info


def fit_centroids(
    model: str, layer: int, k: int, dataset: Any, *, hours: float | None = None, seed: int = 0,
    out: str | Path | None = None, normalize: bool | None = None, revision: str | None = None,
    checkpoint: str | None = None, device: str = "cpu", batch_size: int = 8,
    kmeans_batch_size: int = 10_000, max_epochs: int = 20,
    progress: Callable[..., Iterable] = lambda it, **_: it,
    log: Callable[[str], None] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Fit K centroids on layer ``layer`` features of ``dataset`` and save them (with provenance)
    to ``out`` or the cache path the adapter looks in. Returns (path, provenance)."""
    feats = SSLFeatures(model, layer, normalize=normalize, revision=revision, device=device,
                        checkpoint=checkpoint)
    x, data = collect_features(feats, dataset, hours=hours, seed=seed, batch_size=batch_size,
                               progress=progress)
    if x.shape[0] < k:
        raise ValueError(f"only {x.shape[0]} frames of features ({data['hours_used']:.3f} h of "
                         f"audio) for K={k}: use more data (--hours, --dataset)")
    if log:
        log(f"{x.shape[0]} frames from {data['n_utterances']} utterances "
            f"({data['hours_used']:.3f} h); fitting K={k} on {device}")
    result = fit_kmeans(x, k, seed=seed, batch_size=kmeans_batch_size, max_epochs=max_epochs,
                        device=device, log=log)
    import tokbench

    provenance = {
        **feats.describe(), "k": k, "seed": seed, "init": result.settings["init"],
        "inertia": result.inertia, "inertia_per_frame": result.inertia_per_frame,
        "n_frames": result.n_frames, "data": data, "source": "fit-kmeans",
        "fit": {**result.settings, "epochs": result.epochs, "converged": result.converged,
                "seconds": result.seconds, "update_seconds": result.update_seconds,
                "frames_per_second": result.frames_per_second},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "tokbench_version": tokbench.__version__,
    }
    path = Path(out) if out is not None else centroids_cache_path(model, layer, k)
    save_centroids(path, result.centroids.numpy().astype(np.float32), provenance)
    return path, provenance
