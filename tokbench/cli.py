"""The command line: a thin layer over the library (``tokbench --help``)."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import typer
from rich.table import Table

from tokbench.console import Device, console, err, fail, print_summary

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="tokbench: score discrete audio tokenizers the same way.")


class Listable(str, Enum):
    tokenizers = "tokenizers"
    tasks = "tasks"
    metrics = "metrics"
    datasets = "datasets"


def _fmt(x: float | None, digits: int = 2) -> str:
    return "" if x is None else f"{x:,.{digits}f}"


@app.command("list")
def list_cmd(
    what: Listable = typer.Argument(..., help="what to list"),
    describe: str | None = typer.Option(None, "--describe", help="metrics: everything one metric's declaration says"),
    metric_module: list[str] = typer.Option([], "--metric-module", help="also a metric module of your own: path/to/file.py or a module name (repeatable)"),
    details: bool = typer.Option(False, "--details", help="tokenizers: every column (rates, codebooks, options, description)"),
) -> None:
    """List the registered tokenizers (presets), tasks, metrics or datasets."""
    from tokbench import registry

    if describe is not None and what is not Listable.metrics:
        fail("--describe NAME works with `tokbench list metrics`")
    if what is Listable.metrics:
        _use_metric_modules(metric_module)
        from tokbench.metrics.listing import broken_modules, metric_rows
        from tokbench.metrics.listing import describe as describe_metric
        from tokbench.registry import UnknownNameError

        if describe is not None:
            try:
                rows = describe_metric(describe)
            except UnknownNameError as exc:
                fail(str(exc))
                return
            table = Table(show_header=False, box=None)
            table.add_column(style="bold", no_wrap=True)
            table.add_column(overflow="fold")
            for key, value in rows:
                table.add_row(key, value)
            console.print(table)
            return
        listed = metric_rows()
        table = Table(*listed[0].keys()) if listed else Table("metric")
        for row in listed:
            table.add_row(*row.values())
        console.print(table)
        for module, why in broken_modules().items():
            err.print(f"[yellow]metric module {module} failed to import:[/] {why}", highlight=False)
        return
    elif what is Listable.tokenizers:
        from tokbench.listing import print_tokenizers

        print_tokenizers(console, details=details)  # names whole, whatever the width
        return
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
    data_dir: Path | None = typer.Option(None, "--data-dir", help="an extracted copy of the registered dataset "
                                         "(also $TOKBENCH_DATA_DIR)"),
    wait: bool = typer.Option(False, "--wait", help="if another process runs this configuration, wait for it"),
    rerun_failed: bool = typer.Option(False, "--rerun-failed", help="run the failed utterances of a finished run again"),
    strict: bool = typer.Option(False, "--strict", help="exit 1 if any utterance failed or any metric was not computed"),
    metrics: str | None = typer.Option(None, "--metrics", help="metrics to compute: names and/or groups signal, pitch, speaker, asr, mos, all (default: the standard set; a larger set resumes a run and adds only what it lacks)"),
    metric_module: list[str] = typer.Option([], "--metric-module", help="a metric module of your own: path/to/file.py or a module name (repeatable); its metrics can then be selected with --metrics"),
) -> None:
    """Run a task for one tokenizer preset and store the results (comma lists: every pair)."""
    _use_metric_modules(metric_module)
    from tokbench.io.download import DownloadError
    from tokbench.options import OptionError
    from tokbench.registry import UnknownNameError
    from tokbench.results.lock import RunLockedError
    from tokbench.results.validate import RecordError
    from tokbench.run.runner import run
    from tokbench.types import TokenizerSetupError

    if not tokenizer and not adapter:
        fail("pass --tokenizer NAME (see `tokbench list tokenizers`) or --adapter file.py:Class")
    if not adapter and ("," in (tokenizer or "") or "," in task):  # a matrix (tokbench.suites)
        from tokbench.suites.cli import run_many

        run_many([t for t in (tokenizer or "").split(",") if t], [t for t in task.split(",") if t],
                 dataset, out=out, limit=limit, device=device.value if device else None,
                 batch_size=batch_size, workers=workers, set_=set_, data_dir=data_dir,
                 progress=progress, transcript=text, checkpoint=checkpoint)
        return
    try:
        from tokbench.data.local_copies import open_dataset_at

        data = open_dataset_at(dataset, data_dir, transcript=text)
        result = run(tokenizer or "", task, data, limit=limit, device=device.value if device else None,
                     batch_size=batch_size, workers=workers, out=out,
                     overrides=[*set_, f"metrics={metrics}"] if metrics else set_,
                     checkpoint=checkpoint, adapter=adapter, transcript=text,
                     progress=progress and sys.stderr.isatty(), wait=wait,
                     rerun_failed=rerun_failed)
    except (UnknownNameError, OptionError, DownloadError, FileNotFoundError, TokenizerSetupError,
            RunLockedError, RecordError) as exc:
        fail(str(exc))
        return
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if result.status == "unsupported":
        console.print(f"[yellow]not supported:[/] {result.reason}")
        console.print(f"recorded in {result.path}")
        return
    print_summary(result.summary, title=f"{result.run_id}")
    console.print(f"results: {result.path}")
    account = result.account
    if account is not None:
        for line in account.lines():
            err.print(f"[yellow]{line}[/]", highlight=False, soft_wrap=True)
        if strict and not account.clean:
            fail("--strict: the run has failures (listed above)", code=1)


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
    charts: Path | None = typer.Option(None, "--charts", help="also write radar, bitrate and Pareto charts (PNG, SVG, PDF) here"),
    output: Path | None = typer.Option(None, "--output", "-o", help="write the table to this file instead of stdout"),
) -> None:
    """Tables (and charts) of stored results: mean, 95% CI and n per metric, best marked."""
    from tokbench.report import render, write_charts
    from tokbench.report.render import print_tables
    from tokbench.report.tables import build_tables
    from tokbench.results import filter_results, load_results, runs_table

    if not results.exists():
        fail(f"results folder {results} does not exist; run `tokbench run ...` first or pass --results DIR")
    if charts is not None and charts.exists() and not charts.is_dir():
        fail(f"--charts {charts} is a file; pass a folder for the charts")
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
        from tokbench.report.swap import write_public

        text = render(tables, fmt.value).encode("utf-8")
        write_public(output, lambda fh: fh.write(text))  # atomic: a kill never leaves half a file
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
    charts: bool = typer.Option(True, "--charts/--no-charts", help="draw the radar, bitrate and Pareto charts"),
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


def _use_metric_modules(modules: list[str]) -> None:
    """Metric modules of the user's (``--metric-module``): declared in this process and in every
    metric worker it starts."""
    from tokbench.metrics.kit import registry

    missing = [m for m in modules if m.endswith(".py") and not Path(m).is_file()]
    if missing:
        fail(f"--metric-module: {', '.join(missing)} does not exist")
    try:
        registry.use_modules([str(Path(m).resolve()) if m.endswith(".py") else m for m in modules])
    except ImportError as exc:
        fail(f"--metric-module: {exc}")


def attach_commands(target: typer.Typer) -> None:
    """Sub-commands registered by adapter families and tasks (``tokbench.registry.commands``,
    or the ``tokbench.commands`` entry-point group), attached without naming any of them here."""
    from tokbench.registry import commands

    for name, entry in commands.items():
        try:
            target.command(name)(entry.load())
        except Exception as exc:  # a broken plug-in must not take the CLI down
            err.print(f"[yellow]warning:[/] command {name} is unavailable: {exc}", highlight=False)


attach_commands(app)


# Suites, sweeps and prefetch (issue 19): `tokbench suite list|run|report`, `tokbench prefetch`.
from tokbench.suites.cli import attach as _attach_suites  # noqa: E402

_attach_suites(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
