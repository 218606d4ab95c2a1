"""CLI sub-commands of the SSL family: ``tokbench fit-kmeans`` and ``tokbench convert-gslm``.

Registered in ``tokbench.adapters`` (``tokbench.registry.commands``); heavy imports happen inside
the commands so that the CLI starts fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from tokbench.console import Device, console, err, fail


def fit_kmeans(
    model: str = typer.Option(..., "--model", help="hubert-base, hubert-large or wavlm-large"),
    layer: str = typer.Option(..., "--layer", help="layer L = output of transformer block L; "
                              "several as 1,3,7,12,18,23 (fitted in one pass over the features)"),
    k: int = typer.Option(..., "--k", min=2, help="number of clusters"),
    dataset: str = typer.Option(..., "--dataset", "-d", help="dataset name, folder or manifest"),
    hours: float | None = typer.Option(None, "--hours", min=0.0, help="cap on the audio used (hours)"),
    seed: int = typer.Option(0, "--seed", help="seeds the data selection, k-means++ and batches"),
    out: Path | None = typer.Option(None, "--out", help="output .npz, or a folder for several layers "
                                    "(default: the cache files the adapters read)"),
    device: Device | None = typer.Option(None, "--device", help="cuda or cpu (default: cuda if available)"),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="utterances per feature batch"),
    kmeans_batch_size: int = typer.Option(10_000, "--kmeans-batch-size", min=1, help="frames per k-means step"),
    epochs: int = typer.Option(20, "--epochs", min=1, help="most passes over the frames"),
    normalize: bool | None = typer.Option(None, "--normalize/--no-normalize",
                                          help="input normalisation (default: the checkpoint's preprocessor config)"),
    revision: str | None = typer.Option(None, "--revision", help="model revision (default: the pinned one)"),
    checkpoint: str | None = typer.Option(None, "--checkpoint", help="local model folder instead of the Hub"),
    text: str | None = typer.Option(None, "--text", help="transcript file for a folder dataset"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Fit k-means centroids on one or several layers of HuBERT/WavLM for the semantic-token adapters.

    The features stay in memory while k-means runs: about 0.55 GB per hour of audio and layer
    for HuBERT-base (768 dimensions at 50 Hz) and 0.74 GB for the large models (1024).
    """
    from tokbench.adapters.ssl.features import MODELS
    from tokbench.adapters.ssl.fitting import fit_layer_centroids
    from tokbench.data import open_dataset
    from tokbench.io.download import DownloadError
    from tokbench.runtime import default_device, progress_display

    if model not in MODELS:
        fail(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    try:
        layers = tuple(int(v) for v in layer.replace(" ", "").split(",") if v)
    except ValueError:
        layers = ()
    if not layers or min(layers) < 1 or len(set(layers)) != len(layers):
        fail(f"--layer {layer!r}: give one layer (6) or distinct layers separated by commas (1,3,7)")
    try:
        data = open_dataset(dataset, transcript=text)
        saved = fit_layer_centroids(
            model, layers, k, data, hours=hours, seed=seed, out=out, normalize=normalize,
            revision=revision, checkpoint=checkpoint,
            device=device.value if device else default_device(), batch_size=batch_size,
            kmeans_batch_size=kmeans_batch_size, max_epochs=epochs,
            progress=progress_display(progress and sys.stderr.isatty()),
            log=lambda msg: err.print(msg, highlight=False))
    except (DownloadError, FileNotFoundError, ValueError, ConnectionError) as exc:
        fail(str(exc))
        return
    for path, prov in saved:
        fit = prov["fit"]
        fps = fit["frames_per_second"]
        console.print(f"K={k} centroids of {model} layer {prov['layer']}: {prov['n_frames']} frames, "
                      f"{prov['data']['hours_used']:.3f} h from {prov['data']['n_utterances']} utterances; "
                      f"inertia/frame {prov['inertia_per_frame']:.4g}; {fit['epochs']} passes "
                      f"({'converged' if fit['converged'] else 'stopped at --epochs'}); "
                      f"k-means {'' if fps is None else f'{fps:,.0f} frames/s '}on {fit['device']}")
        console.print(f"saved {path}")


def convert_gslm(
    k: int = typer.Option(..., "--k", help="50, 100 or 200"),
    input_: Path | None = typer.Option(None, "--input", help="a km.bin downloaded from the official GSLM URL "
                                       "(default: download it)"),
    out: Path | None = typer.Option(None, "--out", help="output .npz (default: the cache file the adapter reads)"),
) -> None:
    """Convert GSLM's published HuBERT-base layer-6 k-means (pickled scikit-learn) to a plain array file.

    Unpickling runs code: use only the files from fairseq's official download site. The reader
    resolves an allow-list of names only and keeps nothing but the cluster centres.
    """
    import tempfile

    from tokbench.adapters.ssl.gslm import (
        GSLM_KMEANS_URLS,
        convert_gslm_kmeans,
        download_gslm_kmeans,
    )
    from tokbench.adapters.ssl.kmeans import CentroidsError

    if k not in GSLM_KMEANS_URLS:
        fail(f"GSLM published HuBERT-base k-means for K in {sorted(GSLM_KMEANS_URLS)}, not {k}")
    try:
        if input_ is None:
            with tempfile.TemporaryDirectory() as tmp:
                src = download_gslm_kmeans(k, Path(tmp) / "km.bin")
                path = convert_gslm_kmeans(src, k, out)
        else:
            err.print(f"reading {input_}: it must be the file from {GSLM_KMEANS_URLS[k]} "
                      "(unpickling runs code)", highlight=False)
            path = convert_gslm_kmeans(input_, k, out)
    except (CentroidsError, FileNotFoundError, ConnectionError) as exc:
        fail(str(exc))
        return
    console.print(f"saved {path}")
