"""k-means for semantic tokens: fitting (mini-batch, in torch), assignment, and the centroid file.

Centroid file format (``.npz``, read with ``allow_pickle=False``; no pickle anywhere):

- ``centroids``: float32 array ``[K, D]``; token ``k`` is the frame's nearest centroid ``k``
  (squared Euclidean distance, ties to the lowest index);
- ``provenance``: a 0-d string array holding JSON: format tag, model, resolved revision, layer,
  input normalisation, K, D, data, seed, initialisation, inertia, and how the fit ran.

``fit-kmeans`` writes ``$TOKBENCH_CACHE/kmeans/<model>-l<layer>-km<K>.npz`` by default
(:func:`centroids_cache_path`); adapters read a file by path or from that cache location.

Fitting is mini-batch k-means (Sculley, 2010, with per-centre learning rates 1/count as in
scikit-learn's ``MiniBatchKMeans``), initialised by greedy k-means++ (Arthur and Vassilvitskii,
2007; ``2 + floor(ln K)`` candidates per step, as scikit-learn does) on a seeded subsample. All
random choices come from one CPU ``torch.Generator`` seeded with ``seed``, so a fit is
reproducible on a given device; GPU and CPU reductions round differently, so the two devices
may disagree in the last bits.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tokbench.io.cache import cache_root
from tokbench.io.files import atomic_write
from tokbench.types import TokenizerSetupError

FORMAT = "tokbench-kmeans/1"


class CentroidsError(TokenizerSetupError, ValueError):
    """A centroid file is missing, malformed, or does not fit the tokenizer that reads it."""


class CentroidsNotFoundError(CentroidsError, FileNotFoundError):
    """No centroid file where one was looked for; the message says how to make one."""


def centroids_cache_path(model: str, layer: int, k: int, root: str | Path | None = None) -> Path:
    """Where ``fit-kmeans`` writes (and adapters look for) centroids by default."""
    base = Path(root) if root is not None else cache_root()
    return base / "kmeans" / f"{model}-l{layer}-km{k}.npz"


@dataclass(frozen=True)
class Centroids:
    """Cluster centres ``[K, D]`` (float32) and where they came from."""

    array: np.ndarray
    provenance: Mapping[str, Any] = field(default_factory=dict)

    @property
    def k(self) -> int:
        return int(self.array.shape[0])

    @property
    def dim(self) -> int:
        return int(self.array.shape[1])

    def checksum(self) -> str:
        """SHA-256 (first 16 hex digits) of the centroid values: identifies them in cache keys."""
        import hashlib

        data = np.ascontiguousarray(self.array, dtype="<f4")
        return hashlib.sha256(data.tobytes() + str(data.shape).encode()).hexdigest()[:16]


def save_centroids(path: str | Path, centroids: np.ndarray | torch.Tensor, provenance: Mapping[str, Any]) -> Path:
    """Write ``centroids`` ``[K, D]`` and ``provenance`` (JSON-serialisable) atomically to ``path``."""
    if isinstance(centroids, torch.Tensor):
        centroids = centroids.detach().cpu().numpy()
    array = np.ascontiguousarray(centroids, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise CentroidsError(f"centroids must be a [K, D] array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise CentroidsError("centroids contain NaN or infinite values")
    meta = {"format": FORMAT, **dict(provenance), "k": int(array.shape[0]), "dim": int(array.shape[1])}
    text = json.dumps(meta, allow_nan=False, sort_keys=True)
    path = Path(path)
    atomic_write(path, lambda fh: np.savez(fh, centroids=array, provenance=np.array(text)))
    return path


def load_centroids(path: str | Path) -> Centroids:
    """Read a centroid file written by :func:`save_centroids` (never unpickles anything)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CentroidsNotFoundError(f"centroid file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            array = np.asarray(data["centroids"], dtype=np.float32)
            text = str(data["provenance"][()]) if "provenance" in data.files else "{}"
    except (OSError, ValueError, KeyError) as exc:
        raise CentroidsError(f"{path} is not a tokbench centroid file (.npz with 'centroids' "
                             f"and 'provenance'): {exc}") from None
    try:
        provenance = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CentroidsError(f"{path}: provenance is not valid JSON ({exc})") from None
    if array.ndim != 2 or array.shape[0] < 1:
        raise CentroidsError(f"{path}: centroids must be [K, D], got shape {array.shape}")
    if not np.isfinite(array).all():
        raise CentroidsError(f"{path}: centroids contain NaN or infinite values")
    if provenance.get("format") != FORMAT:
        raise CentroidsError(f"{path}: unknown centroid format {provenance.get('format')!r} "
                             f"(expected {FORMAT!r})")
    return Centroids(array, provenance)


def assign(x: torch.Tensor, centroids: torch.Tensor, chunk: int = 16384) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centroid of each row of ``x`` ``[N, D]``: (labels ``[N]``, squared distances ``[N]``).

    Uses ``|c|^2 - 2 x.c`` (one matrix product per chunk); ties go to the lowest index.
    """
    if x.dim() != 2 or centroids.dim() != 2 or x.shape[1] != centroids.shape[1]:
        raise ValueError(f"assign expects x [N, D] and centroids [K, D], got {tuple(x.shape)} "
                         f"and {tuple(centroids.shape)}")
    c = centroids.to(device=x.device, dtype=torch.float32)
    c_sq = (c * c).sum(1)
    labels = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    dist = torch.empty(x.shape[0], dtype=torch.float32, device=x.device)
    for start in range(0, x.shape[0], chunk):
        xb = x[start : start + chunk].to(torch.float32)
        best, idx = torch.addmm(c_sq[None, :], xb, c.T, alpha=-2.0).min(dim=1)
        labels[start : start + chunk] = idx
        dist[start : start + chunk] = (best + (xb * xb).sum(1)).clamp_min(0.0)
    return labels, dist


def kmeans_plusplus(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """Greedy k-means++ seeding of ``k`` centres from the rows of ``x`` (on ``x``'s device)."""
    n = x.shape[0]
    if n < k:
        raise ValueError(f"k-means++ needs at least k={k} points, got {n}")
    trials = 2 + int(math.log(k))
    x_sq = (x * x).sum(1)

    def sq_dist(idx: torch.Tensor) -> torch.Tensor:  # [len(idx), n]
        # one fused |x|^2 + |c|^2 - 2 x.c (x @ c.T is the fast layout for few centres)
        return torch.addmm(x_sq[:, None] + x_sq[idx][None, :], x, x[idx].T, alpha=-2.0).clamp_min_(0.0).T

    first = torch.randint(n, (1,), generator=generator).to(x.device)
    chosen = [first]
    closest = sq_dist(first)[0]
    for _ in range(1, k):
        u = torch.rand(trials, generator=generator, dtype=torch.float64)
        cum = torch.cumsum(closest.to(torch.float64), 0)
        total = cum[-1]
        if float(total) > 0:
            cand = torch.searchsorted(cum, u.to(x.device) * total).clamp_max(n - 1)
        else:  # every point coincides with a centre already: pick uniformly
            cand = (u * n).long().clamp_max(n - 1).to(x.device)
        new = torch.minimum(closest[None, :], sq_dist(cand))
        best = torch.argmin(new.sum(1))
        chosen.append(cand[best].reshape(1))
        closest = new[best]
    return x[torch.cat(chosen)].to(torch.float32).clone()


@dataclass
class KMeansResult:
    centroids: torch.Tensor  # [K, D], float32, on the CPU
    inertia: float  # sum over all frames of the squared distance to the nearest centroid
    n_frames: int
    epochs: int
    converged: bool
    seconds: float  # whole fit: seeding, mini-batch passes and the final inertia pass
    update_seconds: float  # mini-batch passes only
    frames_per_second: float | None  # frames visited by mini-batch updates / update_seconds
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def inertia_per_frame(self) -> float:
        return self.inertia / max(self.n_frames, 1)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fit_kmeans(
    x: torch.Tensor,
    k: int,
    *,
    seed: int = 0,
    batch_size: int = 10_000,
    max_epochs: int = 20,
    tol: float = 1e-4,
    patience: int = 2,
    init_size: int | None = None,
    device: str | torch.device | None = None,
    log: Callable[[str], None] | None = None,
) -> KMeansResult:
    """Mini-batch k-means of the rows of ``x`` ``[N, D]`` on ``device`` (default: ``x``'s device).

    ``x`` moves to a GPU ``device`` whole when it takes less than half the free GPU memory,
    else batch by batch.

    Stops after ``max_epochs`` passes, or earlier once the mean squared distance of a pass
    improves by less than ``tol`` (relative) ``patience`` times in a row. A centre that wins no
    frame during a pass is moved to a random frame of the next pass (seeded).
    """
    if x.dim() != 2:
        raise ValueError(f"features must be [N, D], got {tuple(x.shape)}")
    n, dim = int(x.shape[0]), int(x.shape[1])
    if k < 1 or n < k:
        raise ValueError(f"k-means with K={k} needs at least K frames, got {n}")
    dev = torch.device(device) if device is not None else x.device
    gen = torch.Generator().manual_seed(seed)
    init_size = min(n, init_size or max(3 * batch_size, 10 * k))
    t0 = time.perf_counter()

    if dev.type == "cuda" and x.device != dev:
        free, _ = torch.cuda.mem_get_info(dev)
        if x.numel() * 4 < free // 2:  # keep the frames on the GPU when they fit comfortably
            x = x.to(dev, torch.float32)
    sample = torch.randperm(n, generator=gen)[:init_size]
    centres = kmeans_plusplus(x[sample.to(x.device)].to(dev, torch.float32), k, gen)
    counts = torch.zeros(k, dtype=torch.float64, device=dev)

    _sync(dev)
    t_update = time.perf_counter()
    visited = 0
    best = math.inf
    stale = 0
    converged = False
    epochs = 0
    for epoch in range(max_epochs):
        epochs = epoch + 1
        order = torch.randperm(n, generator=gen).to(x.device)
        won = torch.zeros(k, dtype=torch.bool, device=dev)
        pass_inertia = 0.0
        for start in range(0, n, batch_size):
            xb = x[order[start : start + batch_size]].to(dev, torch.float32)
            labels, d2 = assign(xb, centres)
            pass_inertia += float(d2.sum())
            n_c = torch.bincount(labels, minlength=k)
            sums = torch.zeros(k, dim, dtype=torch.float32, device=dev).index_add_(0, labels, xb)
            hit = n_c > 0
            won |= hit
            counts += n_c.to(torch.float64)
            rate = (n_c[hit].to(torch.float64) / counts[hit]).to(torch.float32)[:, None]
            means = sums[hit] / n_c[hit].to(torch.float32)[:, None]
            centres[hit] += rate * (means - centres[hit])
            visited += int(xb.shape[0])
        mean_inertia = pass_inertia / n
        if log:
            log(f"k-means pass {epochs}: mean squared distance {mean_inertia:.6g}")
        dead = (~won).nonzero().flatten()
        if len(dead) and epoch + 1 < max_epochs:
            pick = torch.randint(n, (len(dead),), generator=gen).to(x.device)
            centres[dead] = x[pick].to(dev, torch.float32)
            counts[dead] = 0.0
        if best < math.inf and best - mean_inertia < tol * best:
            stale += 1
            if stale >= patience and not len(dead):
                converged = True
                break
        else:
            stale = 0
        best = min(best, mean_inertia)
    _sync(dev)
    update_seconds = time.perf_counter() - t_update

    inertia = 0.0
    for start in range(0, n, batch_size):
        _, d2 = assign(x[start : start + batch_size].to(dev, torch.float32), centres)
        inertia += float(d2.to(torch.float64).sum())
    _sync(dev)
    seconds = time.perf_counter() - t0
    settings = {"algorithm": "mini-batch k-means (Sculley 2010; per-centre rate 1/count)",
                "init": "greedy k-means++", "init_size": init_size, "batch_size": batch_size,
                "max_epochs": max_epochs, "tol": tol, "patience": patience, "seed": seed,
                "device": str(dev)}
    return KMeansResult(
        centroids=centres.cpu(), inertia=inertia, n_frames=n, epochs=epochs, converged=converged,
        seconds=seconds, update_seconds=update_seconds,
        frames_per_second=visited / update_seconds if update_seconds > 0 else None,
        settings=settings,
    )
