"""``tokbench suite list|run|report``, ``tokbench prefetch`` and the many-run ``tokbench run``.

Attached to the main app with one call (:func:`attach`); everything heavy is imported inside the
commands so ``tokbench --help`` stays fast.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

suite_app = typer.Typer(add_completion=False, no_args_is_help=True,
                        help="Suites: many runs from one YAML file, with the published table beside ours.")
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)


class Launcher(str, Enum):
    local = "local"
    submitit_local = "submitit-local"
    slurm = "slurm"


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _user_errors() -> tuple[type[BaseException], ...]:
    from tokbench.io.download import DownloadError
    from tokbench.metrics.selection import MetricSelectionError
    from tokbench.options import OptionError
    from tokbench.registry import UnknownNameError
    from tokbench.suites.schema import SuiteError
    from tokbench.types import TokenizerSetupError

    # DatasetError is a DownloadError
    return (SuiteError, DownloadError, OptionError, UnknownNameError, FileNotFoundError,
            TokenizerSetupError, MetricSelectionError)


STATUS_STYLE = {"done": "green", "resumed": "green", "skipped": "cyan", "unsupported": "yellow",
                "not available": "yellow", "failed": "bold red"}


def print_outcomes(outcomes: list, title: str = "sweep") -> None:
    """One screen: a row per run that did not simply finish, then the counts."""
    from tokbench.suites.matrix import counts

    table = Table("tokenizer", "task", "dataset", "status", "records", "why / where", title=title)
    table.columns[-1].overflow = "fold"
    for o in outcomes:
        style = STATUS_STYLE.get(o.status, "")
        detail = o.detail or (o.path or "")
        if len(detail) > 110:
            detail = detail[:107] + "..."
        table.add_row(o.label, o.task, o.dataset, Text(o.status, style=style),
                      o.records_text(), Text(detail))
    console.print(table)
    c = counts(outcomes)
    console.print(f"{len(outcomes)} runs: " + ", ".join(f"{n} {s}" for s, n in c.items() if n),
                  highlight=False)


def _parse_set(set_: list[str]) -> dict[str, Any]:
    from tokbench.options import parse_overrides

    return parse_overrides(set_)


def _sweep_options(out: Path, limit: int | None, device: str | None, batch_size: int,
                   workers: int | None, data_dir: Path | None, progress: bool, rerun: bool,
                   transcript: str | None = None) -> Any:
    from tokbench.suites.matrix import SweepOptions

    return SweepOptions(out=out, limit=limit, device=device, batch_size=batch_size, workers=workers,
                        data_dir=data_dir, transcript=transcript,
                        progress=progress and sys.stderr.isatty(), rerun=rerun,
                        log=lambda msg: err.print(msg, highlight=False, soft_wrap=True))


def run_many(tokenizers: list[str], task_names: list[str], dataset: str, *, out: Path,
             limit: int | None, device: str | None, batch_size: int, workers: int | None,
             set_: list[str], data_dir: Path | None, progress: bool, transcript: str | None,
             checkpoint: str | None = None) -> None:
    """``tokbench run --tokenizer a,b --task recon,bpe``: the matrix, then its summary."""
    from tokbench.run.distributed import rank_and_world
    from tokbench.suites.loading import TokenizerEntry
    from tokbench.suites.matrix import FAILED, run_matrix

    if checkpoint and len(tokenizers) > 1:
        _fail("--checkpoint names one model folder: use it with one --tokenizer")
    entries = [TokenizerEntry(preset=t, label=t, checkpoint=checkpoint) for t in tokenizers]
    opts = _sweep_options(out, limit, device, batch_size, workers, data_dir, progress, False, transcript)
    try:
        outcomes = run_matrix(entries, {t: {} for t in task_names}, [dataset], opts, _parse_set(set_))
    except _user_errors() as exc:
        _fail(str(exc))
        return
    if rank_and_world()[0] == 0:
        print_outcomes(outcomes)
    if any(o.status == FAILED for o in outcomes):
        raise typer.Exit(1)


@suite_app.command("list")
def list_cmd() -> None:
    """The built-in suites: what they run and the published table they reproduce."""
    from tokbench.suites.loading import Selector, list_suites

    table = Table("suite", "dataset", "tasks", "tokenizers", "reproduces", "description")
    for s in list_suites():
        if isinstance(s, Exception):
            table.add_row("?", "", "", "", "", f"[red]{s}[/]")
            continue
        toks = ("registered defaults" + (f" that can {s.tokenizers.capability}" if s.tokenizers.capability else "")
                if isinstance(s.tokenizers, Selector) else str(len(s.tokenizers)))
        if not isinstance(s.tokenizers, Selector) and (absent := unregistered(s.tokenizers)):
            toks += f" ({len(absent)} not registered)"
        table.add_row(s.name, s.dataset or "(--dataset)", ", ".join(s.tasks), toks,
                      s.reference or "", s.description)
    console.print(table)


def unregistered(entries: list) -> list[str]:
    """The presets of suite entries that this install does not register (a suite written for
    presets still being added): their runs are reported as not available."""
    from tokbench.registry import tokenizers

    return [e.preset for e in entries if e.preset not in tokenizers]


def say_unregistered(suite: Any, entries: list) -> None:
    """One line, before the runs, for the presets a suite names that are not registered."""
    absent = unregistered(entries)
    if absent:
        err.print(f"[yellow]suite {suite.name}:[/] {len(absent)} of its presets are not registered "
                  f"in this install ({', '.join(absent)}); their rows are reported as not "
                  "available", highlight=False, soft_wrap=True)


def _entries(suite: Any, only: list[str]) -> list:
    from tokbench.registry import suggest
    from tokbench.suites.loading import Selector
    from tokbench.suites.matrix import default_presets

    entries = default_presets(suite.tokenizers) if isinstance(suite.tokenizers, Selector) else suite.tokenizers
    if only:
        labels = [e.label for e in entries]
        unknown = [x for x in only if x not in labels]
        if unknown:
            _fail(f"--only {unknown[0]!r} is not a tokenizer of suite {suite.name}"
                  f"{suggest(unknown[0], labels)}; its tokenizers: {', '.join(labels)}")
        entries = [e for e in entries if e.label in only]
    return entries


@suite_app.command("run")
def run_cmd(
    suite_ref: str = typer.Argument(..., metavar="NAME|FILE", help="a built-in suite or a YAML file"),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="dataset (default: the suite's)"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="only the first N utterances"),
    device: str | None = typer.Option(None, "--device", help="cuda or cpu (default: cuda if available)"),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    workers: int | None = typer.Option(None, "--workers", min=0, help="CPU metric worker processes"),
    out: Path = typer.Option(Path("results"), "--out", help="results root (shared by all jobs)"),
    set_: list[str] = typer.Option([], "--set", help="override an option of every run that has it"),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="an extracted copy of the registered dataset"),
    only: list[str] = typer.Option([], "--only", help="only this tokenizer entry (repeatable)"),
    rerun: bool = typer.Option(False, "--rerun", help="run complete runs again (nothing is duplicated)"),
    launcher: Launcher = typer.Option(Launcher.local, "--launcher", help="local, submitit-local or slurm"),
    partition: str | None = typer.Option(None, "--partition", help="Slurm partition"),
    account: str | None = typer.Option(None, "--account", help="Slurm account"),
    gpus: int = typer.Option(0, "--gpus", min=0, help="GPUs per job (one process per GPU)"),
    nproc: int | None = typer.Option(None, "--nproc", min=1, help="processes per job (default: --gpus)"),
    cpus: int | None = typer.Option(None, "--cpus", min=1, help="CPUs per job"),
    mem_gb: float | None = typer.Option(None, "--mem-gb", help="memory per job"),
    timeout_min: int = typer.Option(24 * 60, "--timeout-min", min=1, help="time limit per job"),
    jobs_folder: Path | None = typer.Option(None, "--jobs-folder", help="submitit logs (default: OUT/.jobs)"),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="wait for the jobs and summarise"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    outcomes_file: Path | None = typer.Option(None, "--outcomes", hidden=True),
) -> None:
    """Run a suite: every tokenizer x task on its dataset, locally or as one job per tokenizer."""
    from tokbench.run.distributed import rank_and_world
    from tokbench.suites.loading import load_suite
    from tokbench.suites.matrix import FAILED, run_matrix, write_outcomes

    try:
        suite = load_suite(suite_ref)
    except _user_errors() as exc:
        _fail(str(exc))
        return
    ds = dataset or suite.dataset
    if not ds:
        _fail(f"suite {suite.name} names no dataset: pass --dataset NAME|FOLDER")
        return
    entries = _entries(suite, only)
    say_unregistered(suite, entries)
    limit = limit if limit is not None else suite.limit
    if launcher is Launcher.local:
        opts = _sweep_options(out, limit, device, batch_size, workers, data_dir, progress, rerun)
        try:
            outcomes = run_matrix(entries, suite.tasks, [ds], opts, _parse_set(set_))
        except _user_errors() as exc:
            _fail(str(exc))
            return
        if rank_and_world()[0] == 0:
            if outcomes_file is not None:
                write_outcomes(outcomes_file, outcomes)
            print_outcomes(outcomes, title=f"suite {suite.name}")
        if any(o.status == FAILED for o in outcomes):
            raise typer.Exit(1)
        return
    from tokbench.suites.launchers import JobSettings, collect, submit

    run_args = [str(suite.source), "--dataset", ds, "--out", str(out.resolve()),
                "--batch-size", str(batch_size)]
    for flag, value in (("--limit", limit), ("--device", device), ("--workers", workers),
                        ("--data-dir", data_dir.resolve() if data_dir else None)):
        if value is not None:
            run_args += [flag, str(value)]
    for s in set_:
        run_args += ["--set", s]
    if rerun:
        run_args.append("--rerun")
    settings = JobSettings(launcher=launcher.value, folder=(jobs_folder or out / ".jobs").resolve(),
                           partition=partition, account=account, gpus=gpus, nproc=nproc, cpus=cpus,
                           mem_gb=mem_gb, timeout_min=timeout_min, wait=wait)
    labels = [e.label for e in entries]
    try:
        jobs = submit(labels, run_args, settings)
    except RuntimeError as exc:
        _fail(str(exc))
        return
    for label, job in zip(labels, jobs, strict=True):
        err.print(f"job {job.job_id}: {label}", highlight=False)
    if not wait:
        console.print(f"{len(jobs)} jobs submitted; logs in {settings.folder}; run the same command "
                      "again to skip finished runs and resume the rest")
        return
    outcomes = collect(jobs, labels, settings, list(suite.tasks), ds)
    print_outcomes(outcomes, title=f"suite {suite.name} ({launcher.value}, {len(jobs)} jobs)")
    if any(o.status == FAILED for o in outcomes):
        raise typer.Exit(1)


class ReportFormat(str, Enum):
    table = "table"
    md = "md"
    csv = "csv"


@suite_app.command("report")
def report_cmd(
    suite_ref: str = typer.Argument(..., metavar="NAME|FILE"),
    results: Path = typer.Option(Path("results"), "--results", "-r", help="results root"),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="dataset (default: the suite's)"),
    reference: Path | None = typer.Option(None, "--reference", help="published figures folder"),
    fmt: ReportFormat = typer.Option(ReportFormat.table, "--format", "-f"),
) -> None:
    """Reported beside reproduced, the difference, and whether the reported figure is in our 95% CI.

    One column per metric the reference table marks comparable (or a rate); the columns it
    marks not comparable are listed with its reason, and the suite's protocol is checked.
    """
    from tokbench.report.published import ReferenceError
    from tokbench.suites.compare import build_comparison, render_comparison
    from tokbench.suites.loading import load_suite

    errors: tuple[type[BaseException], ...] = (*_user_errors(), ReferenceError)
    try:
        suite = load_suite(suite_ref)
        comparison = build_comparison(suite, results, dataset=dataset, reference_dir=reference)
    except errors as exc:
        _fail(str(exc))
        return
    if fmt is ReportFormat.table:
        render_comparison(comparison, console)
    else:
        sys.stdout.write(comparison.to_text(fmt.value))


def prefetch_cmd(
    suite_ref: str | None = typer.Argument(None, metavar="[SUITE]", help="a suite name or file"),
    tokenizer: str | None = typer.Option(None, "--tokenizer", "-t", help="presets, comma-separated"),
    task: str | None = typer.Option(None, "--task", help="tasks, comma-separated"),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="a registered dataset"),
    set_: list[str] = typer.Option([], "--set", help="option overrides, as for tokbench run"),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="an extracted copy of the dataset"),
    metrics: str | None = typer.Option(None, "--metrics", help="also the weights of these model-based metrics (e.g. utmos, spk_sim_wavlm, mos, all)"),
    download: bool | None = typer.Option(None, "--download/--verify-only",
                                         help="fetch what is missing (default: unless HF_HUB_OFFLINE is set)"),
) -> None:
    """Fetch and verify every weight file and dataset a suite or run needs (on a login node with
    network); offline, verify what is cached and name what is missing, with sizes and sources."""
    from tokbench.suites.assets import needed_assets, prefetch, render_assets

    try:
        assets = needed_assets(suite_ref, tokenizer, task, dataset, _parse_set(set_), data_dir,
                               metrics=metrics)
        if not assets:
            _fail("name a SUITE, or --tokenizer/--task/--dataset/--metrics")
        checked = prefetch(assets, download=download, log=lambda m: err.print(m, highlight=False))
    except _user_errors() as exc:
        _fail(str(exc))
        return
    missing = render_assets(checked, console)
    if missing:
        raise typer.Exit(1)


def attach(app: typer.Typer) -> None:
    """Add ``suite`` and ``prefetch`` to the main command line."""
    app.add_typer(suite_app, name="suite")
    app.command("prefetch")(prefetch_cmd)
