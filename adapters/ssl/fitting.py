"""Fitting k-means centroids on a dataset's HuBERT/WavLM features (``tokbench fit-kmeans``):
one pass over the audio gathers every requested layer, then one k-means per layer, each saved
with its provenance where the adapters look for it."""

from __future__ import annotations

import datetime as _dt
import random
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tokbench.adapters.ssl.features import SAMPLE_RATE, SSLFeatures
from tokbench.adapters.ssl.kmeans import centroids_cache_path, fit_kmeans, save_centroids


def collect_layer_features(
    features: SSLFeatures, dataset: Any, *, hours: float | None = None, seed: int = 0,
    batch_size: int = 8, progress: Callable[..., Iterable] = lambda it, **_: it,
) -> tuple[dict[int, torch.Tensor], dict[str, Any]]:
    """Features ``{layer: [N, D]}`` (CPU float32) of every layer of ``features``, from one pass
    over a seeded random selection of ``dataset`` capped at ``hours`` of audio (the last
    utterance is cut to fit), through the encoder path."""
    from tokbench.data.batches import Item, length_sorted_batches, load_item, to_batch

    utts = list(dataset.utterances)
    random.Random(seed).shuffle(utts)
    budget = None if hours is None else int(round(hours * 3600 * SAMPLE_RATE))
    used = 0
    chunks: dict[int, list[torch.Tensor]] = {layer: [] for layer in features.layers}
    failed: dict[str, str] = {}
    n_used = 0
    t0 = time.perf_counter()
    pending: list[Item] = []

    def flush() -> None:
        for batch in length_sorted_batches(pending, batch_size):
            audio = to_batch(batch, SAMPLE_RATE, features.device)
            feats, frames = features.layer_features(audio.wav, audio.lengths)
            for layer, f in feats.items():
                for i in range(len(batch)):
                    chunks[layer].append(f[i, : int(frames[i])].cpu())
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
    x = {layer: torch.cat(c) if c else torch.zeros(0, features.dim) for layer, c in chunks.items()}
    n_frames = int(next(iter(x.values())).shape[0])
    info = {"dataset": dataset.name, "dataset_revision": dataset.revision,
            "selection": f"utterances shuffled with seed {seed}; the last one cut to the cap",
            "hours_requested": hours, "hours_used": used / SAMPLE_RATE / 3600,
            "n_utterances": n_used, "n_failed": len(failed), "n_frames": n_frames,
            "feature_seconds": time.perf_counter() - t0}
    return x, info


def collect_features(
    features: SSLFeatures, dataset: Any, *, hours: float | None = None, seed: int = 0,
    batch_size: int = 8, progress: Callable[..., Iterable] = lambda it, **_: it,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Features ``[N, D]`` of the one layer of ``features`` (see :func:`collect_layer_features`)."""
    x, info = collect_layer_features(features, dataset, hours=hours, seed=seed,
                                     batch_size=batch_size, progress=progress)
    return x[features.layer], info


def fit_layer_centroids(
    model: str, layers: Sequence[int], k: int, dataset: Any, *, hours: float | None = None,
    seed: int = 0, out: str | Path | None = None, normalize: bool | None = None,
    revision: str | None = None, checkpoint: str | None = None, device: str = "cpu",
    batch_size: int = 8, kmeans_batch_size: int = 10_000, max_epochs: int = 20,
    progress: Callable[..., Iterable] = lambda it, **_: it,
    log: Callable[[str], None] | None = None,
) -> list[tuple[Path, dict[str, Any]]]:
    """Fit K centroids for each of ``layers`` on features of ``dataset`` gathered in one pass
    (every layer sees the same frames), and save one file per layer. ``out``: the file for a
    single layer, or the folder for several (files named as in the cache); None: the cache
    paths the adapters look in. Returns [(path, provenance)] in the order of ``layers``."""
    layers = tuple(layers)
    feats = SSLFeatures(model, layers, normalize=normalize, revision=revision, device=device,
                        checkpoint=checkpoint)
    x, data = collect_layer_features(feats, dataset, hours=hours, seed=seed,
                                     batch_size=batch_size, progress=progress)
    n = data["n_frames"]
    if n < k:
        raise ValueError(f"only {n} frames of features ({data['hours_used']:.3f} h of "
                         f"audio) for K={k}: use more data (--hours, --dataset)")
    import tokbench

    described = feats.describe()
    described.pop("layers", None)
    saved = []
    for layer in layers:
        if log:
            log(f"layer {layer}: {n} frames from {data['n_utterances']} utterances "
                f"({data['hours_used']:.3f} h); fitting K={k} on {device}")
        result = fit_kmeans(x.pop(layer), k, seed=seed, batch_size=kmeans_batch_size,
                            max_epochs=max_epochs, device=device, log=log)
        provenance = {
            **described, "layer": layer, "k": k, "seed": seed, "init": result.settings["init"],
            "inertia": result.inertia, "inertia_per_frame": result.inertia_per_frame,
            "n_frames": result.n_frames, "data": data, "source": "fit-kmeans",
            "fitted_with_layers": list(layers),
            "fit": {**result.settings, "epochs": result.epochs, "converged": result.converged,
                    "seconds": result.seconds, "update_seconds": result.update_seconds,
                    "frames_per_second": result.frames_per_second},
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "tokbench_version": tokbench.__version__,
        }
        if out is None:
            path = centroids_cache_path(model, layer, k)
        elif len(layers) == 1:
            path = Path(out)
        else:
            path = Path(out) / centroids_cache_path(model, layer, k, root=".").name
        save_centroids(path, result.centroids.numpy().astype(np.float32), provenance)
        saved.append((path, provenance))
    return saved


def fit_centroids(
    model: str, layer: int, k: int, dataset: Any, **kwargs: Any,
) -> tuple[Path, dict[str, Any]]:
    """Fit K centroids on layer ``layer`` features of ``dataset`` and save them (with provenance)
    to ``out`` or the cache path the adapter looks in (see :func:`fit_layer_centroids`).
    Returns (path, provenance)."""
    return fit_layer_centroids(model, (layer,), k, dataset, **kwargs)[0]
