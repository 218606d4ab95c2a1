"""The command line: a thin layer over the library (``tokbench --help``)."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="tokbench: score discrete audio tokenizers the same way.")
# Wide enough for the tables when output goes to a file or a pipe (rich defaults to 80 there).
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)


class Listable(str, Enum):
    tokenizers = "tokenizers"
    tasks = "tasks"
    metrics = "metrics"
    datasets = "datasets"


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _fmt(x: float | None, digits: int = 2) -> str:
    return "" if x is None else f"{x:,.{digits}f}"


@app.command("list")
def list_cmd(what: Listable = typer.Argument(..., help="what to list")) -> None:
    """List the registered tokenizers (presets), tasks, metrics or datasets."""
    from tokbench import registry

    if what is Listable.metrics:
        from tokbench.metrics import all_metrics

        table = Table("metric", "better", "range", "unit", "level", "aggregation", "description")
        for spec in all_metrics():
            rng = "" if spec.lo is None else f"[{spec.lo:g}, {spec.hi:g}]"
            table.add_row(spec.name, f"{spec.direction} {spec.arrow}", rng, spec.unit, spec.level,
                          spec.aggregation, spec.description)
    elif what is Listable.tokenizers:
        from tokbench.resolve import resolve_tokenizer

        table = Table("tokenizer", "kind", "sample rate", "frame rate", "codebooks", "kbps",
                      "tokens/s", "options", "description")
        for name, entry in registry.tokenizers.items():
            try:
                meta = resolve_tokenizer(name).meta
            except Exception as exc:  # one broken adapter must not hide the others
                table.add_row(name, "?", "", "", "", "", "", "", f"[red]unavailable: {exc}[/]")
                continue
            options = ", ".join(f"{k}={v}" for k, v in meta.options.items())
            table.add_row(name, meta.kind, f"{meta.sample_rate}", f"{meta.frame_rate:g} Hz",
                          f"{meta.n_codebooks} x {max(meta.codebook_sizes)}",
                          _fmt(meta.bitrate_nominal / 1000), f"{meta.token_rate:g}", options,
                          entry.summary)
    elif what is Listable.tasks:
        table = Table("task", "version", "needs", "options", "description")
        for name, entry in registry.tasks.items():
            cls = entry.load()
            from dataclasses import fields

            opts = ", ".join(f"{f.name}={f.default!r}" for f in fields(cls.Options))
            table.add_row(name, cls.version, ", ".join(sorted(cls.requires)) or "-", opts,
                          entry.summary)
    else:
        table = Table("dataset", "description")
        for name, entry in registry.datasets.items():
            table.add_row(name, entry.summary)
    console.print(table)


class Device(str, Enum):
    cuda = "cuda"
    cpu = "cpu"


@app.command("run")
def run_cmd(
    tokenizer: str | None = typer.Option(None, "--tokenizer", "-t", help="tokenizer preset (tokbench list tokenizers)"),
    task: str = typer.Option(..., "--task", help="task (tokbench list tasks)"),
    dataset: str = typer.Option("sample", "--dataset", "-d", help="dataset name, folder or manifest"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="only the first N utterances"),
    device: Device | None = typer.Option(None, "--device", help="cuda or cpu (default: cuda if available)"),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    workers: int | None = typer.Option(None, "--workers", min=0, help="CPU metric worker processes"),
    out: Path = typer.Option(Path("results"), "--out", help="results root"),
    set_: list[str] = typer.Option([], "--set", help="override an option: key=value (repeatable)"),
    checkpoint: str | None = typer.Option(None, "--checkpoint", help="local model folder instead of the Hub"),
    adapter: str | None = typer.Option(None, "--adapter", help="plug-in adapter: path/to/file.py:Class"),
    text: str | None = typer.Option(None, "--text", help="transcript file for a folder dataset"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Run a task for one tokenizer preset and store the results."""
    from tokbench.adapters.ssl.kmeans import CentroidsError
    from tokbench.data import DatasetError
    from tokbench.options import OptionError
    from tokbench.registry import UnknownNameError
    from tokbench.results.validate import RecordError
    from tokbench.run.runner import run

    if not tokenizer and not adapter:
        fail("pass --tokenizer NAME (see `tokbench list tokenizers`) or --adapter file.py:Class")
    try:
        result = run(tokenizer or "", task, dataset, limit=limit, device=device.value if device else None,
                     batch_size=batch_size, workers=workers, out=out, overrides=set_,
                     checkpoint=checkpoint, adapter=adapter, transcript=text,
                     progress=progress and sys.stderr.isatty())
    except (UnknownNameError, OptionError, DatasetError, FileNotFoundError, CentroidsError,
            RecordError) as exc:
        fail(str(exc))
        return
    if result.status == "unsupported":
        console.print(f"[yellow]not supported:[/] {result.reason}")
        console.print(f"recorded in {result.path}")
        return
    print_summary(result.summary, title=f"{result.run_id}")
    console.print(f"results: {result.path}")


@app.command("score")
def score_cmd(
    ref: Path = typer.Option(..., "--ref", help="folder of reference audio"),
    hyp: Path = typer.Option(..., "--hyp", help="folder of outputs (matched to references by file stem)"),
    text: Path | None = typer.Option(None, "--text", help="transcripts: lines 'ID TEXT'"),
    out: Path = typer.Option(Path("results"), "--out", help="results root"),
    name: str | None = typer.Option(None, "--name", help="label of the outputs (default: the folder name)"),
    asr: bool = typer.Option(True, "--asr/--no-asr", help="compute WER/CER with Whisper"),
    asr_model: str = typer.Option("large-v3", "--asr-model"),
    asr_checkpoint: str | None = typer.Option(None, "--asr-checkpoint", help="local Whisper checkpoint file"),
    device: Device | None = typer.Option(None, "--device"),
    workers: int | None = typer.Option(None, "--workers", min=0),
) -> None:
    """Score audio made elsewhere against references, with the recon metrics."""
    from tokbench.data import DatasetError
    from tokbench.run.runner import default_device
    from tokbench.tasks.score import score_folders

    try:
        result = score_folders(ref, hyp, text=text, out=out, name=name, asr=asr, asr_model=asr_model,
                               asr_checkpoint=asr_checkpoint,
                               device=device.value if device else default_device(), workers=workers)
    except DatasetError as exc:
        fail(str(exc))
        return
    print_summary(result.summary, title=f"{hyp} vs {ref}")
    if result.missing_hyp:
        console.print(f"[yellow]{len(result.missing_hyp)} references without an output[/]")
    if result.unmatched_hyp:
        console.print(f"[yellow]{len(result.unmatched_hyp)} outputs without a reference[/]")
    console.print(f"results: {result.path}")


def print_summary(summary, title: str = "") -> None:
    """A one-screen table: metric, mean [95% CI], n scored / total."""
    from tokbench.metrics import get_metric
    from tokbench.registry import UnknownNameError

    table = Table("metric", "", "mean", "95% CI", "n", title=title)
    for row in summary.to_dict(orient="records"):
        try:
            arrow = get_metric(row["metric"]).arrow
        except UnknownNameError:
            arrow = ""
        mean = row["mean"]
        ci = "" if row["ci_low"] != row["ci_low"] else f"[{row['ci_low']:.3g}, {row['ci_high']:.3g}]"
        label = row["metric"] if row.get("param") is None else f"{row['metric']} @ {row['param']}"
        table.add_row(label, arrow, "n/a" if mean != mean else f"{mean:.4g}", ci,
                      f"{row['n']}/{row['n_total']}")
    console.print(table)


class ReportFormat(str, Enum):
    table = "table"
    md = "md"
    csv = "csv"
    latex = "latex"


def _available(df, column: str) -> str:
    values = sorted({str(v) for v in df[column].dropna().unique()})
    return ", ".join(values) or "none"


@app.command("report")
def report_cmd(
    results: Path = typer.Option(Path("results"), "--results", "-r", help="results root or one run folder"),
    fmt: ReportFormat = typer.Option(ReportFormat.table, "--format", "-f", help="table (terminal), md, csv or latex"),
    task: str | None = typer.Option(None, "--task", help="only this task"),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="only this dataset"),
    tokenizer: list[str] = typer.Option([], "--tokenizer", "-t", help="only this tokenizer or preset (repeatable)"),
    metric: list[str] = typer.Option([], "--metric", "-m", help="only this metric, in this order (repeatable)"),
    charts: Path | None = typer.Option(None, "--charts", help="also write radar and bitrate charts (PNG, SVG) here"),
    output: Path | None = typer.Option(None, "--output", "-o", help="write the table to this file instead of stdout"),
) -> None:
    """Tables (and charts) of stored results: mean, 95% CI and n per metric, best marked."""
    from tokbench.report import render, write_charts
    from tokbench.report.render import print_tables
    from tokbench.report.tables import build_tables
    from tokbench.results import filter_results, load_results, runs_table

    if not results.exists():
        fail(f"results folder {results} does not exist; run `tokbench run ...` first or pass --results DIR")
    df_all, runs_all = load_results(results), runs_table(results)
    if runs_all.empty:
        fail(f"no runs under {results}; run `tokbench run --tokenizer NAME --task recon` first")
    df = filter_results(df_all, task, dataset, tokenizer, metric)
    runs = filter_results(runs_all, task, dataset, tokenizer)
    if runs.empty:
        fail(f"no run matches the filters under {results}; tasks: {_available(runs_all, 'task')}; "
             f"datasets: {_available(runs_all, 'dataset')}; tokenizers: {_available(runs_all, 'variant')}")
    if metric:
        unknown = sorted(set(metric) - set(df_all["metric"].unique()))
        if unknown:
            fail(f"no results for metric(s) {', '.join(unknown)}; recorded: {_available(df_all, 'metric')}")
    tables = build_tables(df, runs, metrics=metric or None)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(render(tables, fmt.value), encoding="utf-8")
        err.print(f"wrote {output}")
    elif fmt is ReportFormat.table:
        print_tables(tables, console)
    else:
        sys.stdout.write(render(tables, fmt.value))
    if charts is not None:
        for outcome in write_charts(tables, charts):
            if outcome.ok:
                err.print(f"{outcome.chart} chart: " + ", ".join(str(p) for p in outcome.files.values()),
                          highlight=False)
            else:
                err.print(f"[yellow]{outcome.chart} chart not drawn:[/] {outcome.message}", highlight=False)


@app.command("leaderboard")
def leaderboard_cmd(
    results: Path = typer.Option(Path("results"), "--results", "-r", help="results root"),
    out: Path = typer.Option(Path("leaderboard/site"), "--out", help="folder for the static site"),
    reference: Path | None = typer.Option(None, "--reference", help="published figures (default: RESULTS/reference)"),
    charts: bool = typer.Option(True, "--charts/--no-charts", help="draw the radar and bitrate charts"),
) -> None:
    """Write a static, self-contained leaderboard site (open OUT/index.html or serve OUT)."""
    from tokbench.report import ReferenceError, SiteError, build_site

    if not results.exists():
        fail(f"results folder {results} does not exist; run `tokbench run ...` first or pass --results DIR")
    try:
        index = build_site(results, out, reference=reference, charts=charts)
    except (SiteError, ReferenceError) as exc:
        fail(str(exc))
        return
    console.print(f"leaderboard: {index}")


@app.command("fit-kmeans")
def fit_kmeans_cmd(
    model: str = typer.Option(..., "--model", help="hubert-base, hubert-large or wavlm-large"),
    layer: int = typer.Option(..., "--layer", min=1, help="layer L = output of transformer block L"),
    k: int = typer.Option(..., "--k", min=2, help="number of clusters"),
    dataset: str = typer.Option(..., "--dataset", "-d", help="dataset name, folder or manifest"),
    hours: float | None = typer.Option(None, "--hours", min=0.0, help="cap on the audio used (hours)"),
    seed: int = typer.Option(0, "--seed", help="seeds the data selection, k-means++ and batches"),
    out: Path | None = typer.Option(None, "--out", help="output .npz (default: the cache file the adapter reads)"),
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
    """Fit k-means centroids on a layer of HuBERT/WavLM for the semantic-token adapters.

    The features stay in memory while k-means runs: about 0.55 GB per hour of audio for
    HuBERT-base (768 dimensions at 50 Hz) and 0.74 GB for the large models (1024).
    """
    from tokbench.adapters.ssl.units import MODELS, fit_centroids
    from tokbench.data import DatasetError, open_dataset
    from tokbench.run.runner import _tqdm_progress, default_device

    if model not in MODELS:
        fail(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    try:
        data = open_dataset(dataset, transcript=text)
        path, prov = fit_centroids(
            model, layer, k, data, hours=hours, seed=seed, out=out, normalize=normalize,
            revision=revision, checkpoint=checkpoint,
            device=device.value if device else default_device(), batch_size=batch_size,
            kmeans_batch_size=kmeans_batch_size, max_epochs=epochs,
            progress=_tqdm_progress(progress and sys.stderr.isatty()),
            log=lambda msg: err.print(msg, highlight=False))
    except (DatasetError, FileNotFoundError, ValueError, ConnectionError) as exc:
        fail(str(exc))
        return
    fit = prov["fit"]
    fps = fit["frames_per_second"]
    console.print(f"K={k} centroids of {model} layer {layer}: {prov['n_frames']} frames, "
                  f"{prov['data']['hours_used']:.3f} h from {prov['data']['n_utterances']} utterances; "
                  f"inertia/frame {prov['inertia_per_frame']:.4g}; {fit['epochs']} passes "
                  f"({'converged' if fit['converged'] else 'stopped at --epochs'}); "
                  f"k-means {'' if fps is None else f'{fps:,.0f} frames/s '}on {fit['device']}")
    console.print(f"saved {path}")


@app.command("convert-gslm")
def convert_gslm_cmd(
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
