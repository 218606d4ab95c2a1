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

**Several layers** (:class:`SSLMultiLayerTokenizer`, DASB's discrete HuBERT/WavLM): one
codebook per layer, codebook i from layer ``layers[i]``, all from one forward pass; each layer
has its own centroid file (the same files the single-layer tokenizer reads), and ``fit-kmeans
--layer 1,3,7,12,18,23`` fits them all from one pass over the features (every layer's centroids
see the same frames).

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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from tokbench.adapters.ssl.features import (
    FRAME_RATE,
    MODELS,
    SAMPLE_RATE,
    ModelName,
    SSLFeatures,
)
from tokbench.adapters.ssl.kmeans import (
    Centroids,
    CentroidsError,
    CentroidsNotFoundError,
    assign,
    centroids_cache_path,
    load_centroids,
    save_centroids,
)
from tokbench.registry import preset
from tokbench.types import Audio, ModelSource, TokenizerBase, TokenizerMeta, Tokens

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
    # Centroids: --set centroids=PATH or $TOKBENCH_CACHE/kmeans/<model>-l<L>-km<K>.npz
    # (`tokbench fit-kmeans`, or `tokbench convert-gslm` for the published GSLM ones).
    presets = {
        # GSLM's published centroids were fitted on un-normalised input: the preset says so.
        **{f"hubert-base-l6-km{k}": preset(
            f"HuBERT-base layer 6, k-means K={k} (GSLM units; tokbench convert-gslm --k {k})",
            model="hubert-base", layer=6, k=k, normalize=False) for k in (50, 100, 200)},
        "hubert-base-l9-km500": preset(
            "HuBERT-base layer 9, k-means K=500 (centroids from tokbench fit-kmeans)",
            model="hubert-base", layer=9, k=500),
        "hubert-large-l22-km500": preset(
            "HuBERT-large (LL60k) layer 22, k-means K=500 (centroids from tokbench fit-kmeans)",
            model="hubert-large", layer=22, k=500),
        "wavlm-large-l6-km1000": preset(
            "WavLM-large layer 6, k-means K=1000 (centroids from tokbench fit-kmeans)",
            model="wavlm-large", layer=6, k=1000),
    }

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

    @classmethod
    def build_tiny_checkpoint(cls, folder: Path) -> Path:
        return build_tiny_models(folder)

    @classmethod
    def tiny_overrides(cls, folder: Path, options: SSLKMeansOptions) -> dict[str, Any]:
        km = tiny_centroids(folder, options.model, (options.layer,), options.k, options.normalize)
        return {"centroids": str(km / centroids_cache_path(options.model, options.layer, options.k, root=".").name)}

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

    def frames_for(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames of ``lengths`` samples: ``floor((len - 400) / 320) + 1`` (0 below 400)."""
        return self.features.frame_lengths(lengths)

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
        return {**self.vocoder.knn.describe(), "vocoder_query": self.vocoder.query}  # type: ignore[union-attr]

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


# --- several layers, one codebook each (DASB's discrete SSL tokens) --------------------------

# DASB's "Discrete HuBERT / WavLM" (Mousavi et al. 2024, arXiv 2406.14294; the rows "discrete
# WavLM" in DATES's Table 4): k-means with K=1000 on six layers of the large models, one codebook
# per layer. Layers as in the DASB recipes (speechbrain/benchmarks, e.g.
# benchmarks/DASB/IEMOCAP/emotion_recognition/linear/hparams/train_discrete_ssl.yaml at commit
# 80dd3a4f9e4e548bcfc0f536573cc9f9b24c126d: ``ssl_layer_num: [1, 3, 7, 12, 18, 23]``,
# ``num_clusters: 1000``), indexed into SpeechBrain's stack of transformers hidden states, i.e.
# layer L = output of block L as here. DASB's centroids were fitted on LibriSpeech 960 h.
DASB_LAYERS: tuple[int, ...] = (1, 3, 7, 12, 18, 23)
DASB_K = 1000
DASB_CITATION = ("Mousavi et al., DASB - Discrete Audio and Speech Benchmark, arXiv:2406.14294, "
                 "2024; Mousavi et al., How Should We Extract Discrete Audio Tokens from "
                 "Self-Supervised Models?, Interspeech 2024")


def layers_label(layers: Sequence[int]) -> str:
    """``dasb`` for DASB's six layers (the preset names say so too), else ``l1-3-7``."""
    if tuple(layers) == DASB_LAYERS:
        return "dasb"
    return "l" + "-".join(str(layer) for layer in layers)


@dataclass(frozen=True)
class SSLMultiLayerOptions:
    model: ModelName = "wavlm-large"
    layers: tuple[int, ...] = DASB_LAYERS  # outputs of these transformer blocks (1-based), in order
    k: int = DASB_K  # clusters per layer
    centroids: str | None = None  # folder of <model>-l<L>-km<k>.npz files; None: $TOKBENCH_CACHE/kmeans
    normalize: bool | None = None  # None: the checkpoint's preprocessor config, else pre-training setting
    revision: str | None = None  # None: the pinned revision of the model

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {list(MODELS)}, got {self.model!r}")
        n = MODELS[self.model].num_layers
        if not self.layers:
            raise ValueError("layers must name at least one layer, e.g. layers=1,3,7,12,18,23")
        bad = [layer for layer in self.layers if not 1 <= layer <= n]
        if bad:
            raise ValueError(f"layers must lie in [1, {n}] for {self.model} (layer L = output of "
                             f"transformer block L), got {bad}")
        if len(set(self.layers)) != len(self.layers):
            raise ValueError(f"layers must be distinct, got {list(self.layers)}")
        if self.k < 2:
            raise ValueError(f"k must be at least 2, got {self.k}")


def find_layer_centroids(model: str, layers: Sequence[int], k: int, folder: str | None) -> list[Path]:
    """One centroid file per layer, from ``folder`` or the cache; one error naming all missing."""
    root = Path(folder).expanduser() if folder else None
    if root is not None and not root.is_dir():
        raise CentroidsNotFoundError(f"centroid folder {root} (--set centroids=...) does not exist")
    paths = [root / centroids_cache_path(model, layer, k, root=".").name if root is not None
             else centroids_cache_path(model, layer, k) for layer in layers]
    missing = [layer for layer, p in zip(layers, paths, strict=True) if not p.is_file()]
    if missing:
        where = root if root is not None else centroids_cache_path(model, layers[0], k).parent
        raise CentroidsNotFoundError(
            f"no k-means centroids for {model} layers {missing} with K={k} in {where}. Fit all "
            f"layers in one pass with `tokbench fit-kmeans --model {model} --layer "
            f"{','.join(str(layer) for layer in layers)} --k {k} --dataset DATA [--hours H]`, or "
            f"pass --set centroids=FOLDER holding {model}-l<L>-km{k}.npz for each layer")
    return paths


class SSLMultiLayerTokenizer(TokenizerBase):
    """k-means units of several layers of one HuBERT/WavLM model: one codebook of K per layer,
    all at 50 Hz, codebook i = ``layers[i]``. Encode-only (capability ``embed``): no published
    unit vocoder for these token sets is wired in."""

    Options = SSLMultiLayerOptions
    # DASB's discrete HuBERT/WavLM. Centroids: one cache file per layer, fitted in one pass with
    # `tokbench fit-kmeans --model M --layer 1,3,7,12,18,23 --k 1000`, or --set centroids=FOLDER.
    presets = {
        f"{model}-dasb-km1000": preset(
            f"{label} layers 1,3,7,12,18,23, k-means K=1000 each (DASB discrete SSL, 6 codebooks)",
            model=model, layers=DASB_LAYERS, k=DASB_K)
        for model, label in (("wavlm-large", "WavLM-large"), ("hubert-large", "HuBERT-large (LL60k)"))
    }

    @classmethod
    def describe(cls, options: SSLMultiLayerOptions) -> TokenizerMeta:
        spec = MODELS[options.model]
        n = len(options.layers)
        return TokenizerMeta(
            name=f"{options.model}-{layers_label(options.layers)}-km{options.k}", family=spec.arch,
            kind="semantic", sample_rate=SAMPLE_RATE, frame_rate=FRAME_RATE, n_codebooks=n,
            codebook_sizes=(options.k,) * n, streamable=False, capabilities=frozenset({"embed"}),
            source=ModelSource(repo_id=spec.repo_id, revision=options.revision or spec.revision),
            license=spec.license, citation=f"{spec.citation}; {DASB_CITATION}",
            options={"model": options.model, "layers": list(options.layers), "k": options.k,
                     "normalize": options.normalize})

    @classmethod
    def build_tiny_checkpoint(cls, folder: Path) -> Path:
        return build_tiny_models(folder)

    @classmethod
    def tiny_overrides(cls, folder: Path, options: SSLMultiLayerOptions) -> dict[str, Any]:
        return {"centroids": str(tiny_centroids(folder, options.model, options.layers, options.k,
                                                options.normalize))}

    def __init__(self, options: SSLMultiLayerOptions, *, device: str = "cpu", checkpoint: str | None = None):
        super().__init__(options, device=device, checkpoint=checkpoint)
        paths = find_layer_centroids(options.model, options.layers, options.k, options.centroids)
        loaded = [load_centroids(p) for p in paths]  # before the model: a missing file fails fast
        self.features = SSLFeatures(options.model, options.layers, normalize=options.normalize,
                                    revision=options.revision, device=device, checkpoint=checkpoint)
        for layer, c, p in zip(options.layers, loaded, paths, strict=True):
            check_centroids(c, options.model, layer, options.k, self.features.dim,
                            self.features.normalize, p)
        # [n_layers, K, D]: codebook i quantises layer options.layers[i]
        self.centroids = torch.stack([torch.from_numpy(c.array) for c in loaded]).to(device)
        self.meta = dataclasses.replace(
            self.meta, source=self.features.source,
            options={**self.meta.options, "normalize": self.features.normalize,
                     "normalize_from": self.features.normalize_from,
                     "centroids_sha256": [c.checksum() for c in loaded],
                     "centroids_source": [c.provenance.get("source", "fit-kmeans") for c in loaded]})

    def frames_for(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames of ``lengths`` samples: ``floor((len - 400) / 320) + 1`` (0 below 400)."""
        return self.features.frame_lengths(lengths)

    def encode(self, wav: torch.Tensor, lengths: torch.Tensor) -> Tokens:
        self.check_input(wav, lengths)
        feats, frames = self.features.layer_features(wav, lengths)
        n_frames = int(feats[self.options.layers[0]].shape[1])
        valid = torch.arange(n_frames, device=frames.device)[None, :] < frames[:, None]
        codes = []
        for i, layer in enumerate(self.options.layers):
            f = feats[layer]
            labels, _ = assign(f.reshape(-1, f.shape[-1]), self.centroids[i])
            codes.append(torch.where(valid, labels.reshape(f.shape[0], n_frames), 0))
        return Tokens(torch.stack(codes, 1).to(wav.device), frames.to(wav.device))

    def embed(self, tokens: Tokens) -> torch.Tensor:
        """The centroid of each token in its own layer's codebook: ``[B, n_layers, F, D]``, zero
        on padded frames."""
        codes = tokens.codes
        n = len(self.options.layers)
        if codes.shape[1] != n:
            raise ValueError(f"{self.meta.name} has {n} codebooks; got codes with {codes.shape[1]}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.options.k):
            raise ValueError(f"codes must lie in [0, {self.options.k}), got "
                             f"[{int(codes.min())}, {int(codes.max())}]")
        c = codes.to(self.centroids.device)
        out = torch.stack([self.centroids[i][c[:, i]] for i in range(n)], 1)
        valid = torch.arange(codes.shape[2], device=out.device)[None, :] < tokens.frame_lengths.to(out.device)[:, None]
        return torch.where(valid[:, None, :, None], out, 0.0).to(codes.device)


# --- tiny checkpoints (tests) -----------------------------------------------------------------

TINY_WIDTH = 32


def build_tiny_model(model: str, folder: Path, seed: int = 0, num_layers: int | None = None) -> Path:
    """A random checkpoint of ``model`` saved in ``folder``: the real conv stack (kernels
    10,3,3,3,3,2,2, strides 5,2,2,2,2,2,2: 16 kHz, 50 Hz), positional convolution (128 taps,
    16 groups), feature norm (group for HuBERT-base, layer + pre-LN blocks for the large
    models) and number of transformer blocks (12 / 24, or ``num_layers``); only widths shrink.
    The tests' tiny HuBERT/WavLM models come from here too."""
    from transformers import HubertConfig, HubertModel, WavLMConfig, WavLMModel

    from tokbench.adapters.tiny import seeded

    spec = MODELS[model]
    base = model == "hubert-base"
    sizes: dict[str, Any] = dict(
        hidden_size=TINY_WIDTH, num_hidden_layers=num_layers or spec.num_layers,
        num_attention_heads=4, intermediate_size=64, conv_dim=(TINY_WIDTH,) * 7,
        num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16,
        feat_extract_norm="group" if base else "layer", do_stable_layer_norm=not base)
    if spec.arch == "hubert":
        net = seeded(HubertModel, HubertConfig(conv_bias=not base, **sizes), seed)
    else:
        net = seeded(WavLMModel, WavLMConfig(conv_bias=False, **sizes), seed)
    net.eval().save_pretrained(folder)
    return Path(folder)


def build_tiny_models(folder: Path, seed: int = 0) -> Path:
    """One random checkpoint per model in ``folder/<model>`` (:func:`build_tiny_model`)."""
    for name in MODELS:
        build_tiny_model(name, Path(folder) / name, seed)
    return Path(folder)


def tiny_centroids(folder: Path, model: str, layers: Sequence[int], k: int,
                   normalize: bool | None, seed: int = 0) -> Path:
    """Seeded random centroids for ``layers`` of the tiny model in ``folder`` (built by
    :func:`build_tiny_models`), spread like that layer's features on seeded noise so that
    frames fall on many units; written to ``folder/km`` (cache naming), which is returned.
    ``normalize`` None: the model's pre-training setting (the tiny checkpoints have no
    preprocessor config)."""
    from tokbench.adapters.tiny import fill_codebook

    norm = MODELS[model].pretrain_normalize if normalize is None else normalize
    out = Path(folder) / "km"
    features = SSLFeatures(model, tuple(layers), normalize=norm, checkpoint=str(folder))
    noise = 0.1 * torch.randn(1, 2 * SAMPLE_RATE, generator=torch.Generator().manual_seed(seed))
    feats, frames = features.layer_features(noise, torch.tensor([noise.shape[1]]))
    for layer in layers:
        table = torch.zeros(k, features.dim)
        fill_codebook(table, feats[layer][0, : int(frames[0])], seed + layer)
        array = table.numpy()
        save_centroids(out / centroids_cache_path(model, layer, k, root=".").name, array,
                       {"model": model, "layer": layer, "normalize": norm, "source": "tiny (tests)"})
    return out

