"""``tokbench score``: score audio made elsewhere against references, with the recon metrics.

:func:`score_folders` is the library entry point and :func:`score_command` the command; both run
the ``score`` task (:mod:`tokbench.tasks.score.task`) through the runner. Results go to the same
store as every run, so ``load_results(out)`` reads them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tokbench.console import Device, console, fail, print_summary

if TYPE_CHECKING:
    import pandas as pd

# The rest (torch, pandas, the store, the runner) is imported by score_folders after it has
# started the metric workers' fork server, so that the two start-ups overlap; the CLI imports
# this module for every command.


@dataclass
class ScoreResult:
    path: Path
    summary: pd.DataFrame
    missing_hyp: list[str]  # references without an output
    unmatched_hyp: list[str]  # outputs without a reference


def score_folders(
    ref: str | Path,
    hyp: str | Path,
    *,
    text: str | Path | None = None,
    out: str | Path = "results",
    name: str | None = None,
    asr: bool = True,
    asr_model: str = "large-v3",
    asr_checkpoint: str | None = None,
    device: str = "cpu",
    workers: int | None = None,
    batch_size: int = 16,
    cache_dir: str | Path | None = None,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
    metrics: str | None = None,
    asr_backend: str = "whisper",
) -> ScoreResult:
    """Score the outputs in ``hyp`` against the references in ``ref`` (see the module docstring).

    ``metrics``: a selection (``tokbench.metrics.selection``; None: the default set). It is
    recorded in run.json but is not part of the run's identity: scoring the same folders again
    with more metrics adds only those the records lack. The run goes through the runner
    (``tokbench.run.runner.run_external``) like every task's."""
    from tokbench.metrics.selection import resolve_metrics
    from tokbench.run.scoring import start_workers_early

    selected = resolve_metrics(metrics)
    start_workers_early(selected, workers)  # first: it imports while this process does below

    from tokbench.data import read_folder
    from tokbench.metrics.asr_backends import check_backend
    from tokbench.run.runner import ExternalOutputs, RunSettings, run_external
    from tokbench.tasks.score.task import ScoreFiles, ScoreOptions, match_outputs

    check_backend(asr_backend)
    refs = read_folder(ref, transcript=text)
    matching = match_outputs(refs, hyp)
    missing, unmatched = matching.missing, matching.unmatched
    if missing:
        log(f"{_count(len(missing), 'reference has', 'references have')} no output in {hyp}: "
            f"{', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    if unmatched:
        log(f"{_count(len(unmatched), 'output has', 'outputs have')} no reference in {ref}: "
            f"{', '.join(unmatched[:5])}" + (" ..." if len(unmatched) > 5 else ""))
    options = ScoreOptions(ref=str(ref), hyp=str(hyp), asr=asr, asr_model=asr_model,
                           asr_checkpoint=asr_checkpoint, asr_batch_size=batch_size, asr_backend=asr_backend, metrics=metrics)
    task = ScoreFiles(options, matching)
    outputs = ExternalOutputs(variant=name or Path(hyp).resolve().name, revision=matching.revision,
                              options={"hyp_revision": matching.revision})
    settings = RunSettings(out=Path(out), device=device, batch_size=batch_size, workers=workers,
                           cache_dir=cache_dir, log=log)
    result = run_external(task, refs, outputs, settings)
    return ScoreResult(result.path, result.summary, missing, unmatched)


def score_command(
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
    metrics: str | None = typer.Option(None, "--metrics", help="metrics to compute: names and/or groups signal, pitch, speaker, asr, mos, all (default: the standard set; a larger set resumes the run and adds only what it lacks)"),
    asr_backend: str = typer.Option("whisper", "--asr-backend", help="whisper, whisper-beam5 or hubert-ctc"),
) -> None:
    """Score audio made elsewhere against references, with the recon metrics."""
    from tokbench.data import DatasetError
    from tokbench.metrics.asr_backends import UnknownBackendError
    from tokbench.metrics.selection import MetricSelectionError
    from tokbench.options import OptionError
    from tokbench.results.lock import RunLockedError
    from tokbench.results.validate import RecordError
    from tokbench.runtime import default_device

    try:
        result = score_folders(ref, hyp, text=text, out=out, name=name, asr=asr, asr_model=asr_model,
                               asr_checkpoint=asr_checkpoint,
                               device=device.value if device else default_device(), workers=workers,
                               metrics=metrics, asr_backend=asr_backend)
    except (DatasetError, MetricSelectionError, UnknownBackendError, OptionError,
            RunLockedError, RecordError) as exc:
        fail(str(exc))
        return
    print_summary(result.summary, title=f"{hyp} vs {ref}")
    if result.missing_hyp:
        n = len(result.missing_hyp)
        console.print(f"[yellow]{n} reference{'' if n == 1 else 's'} without an output[/]")
    if result.unmatched_hyp:
        n = len(result.unmatched_hyp)
        console.print(f"[yellow]{n} output{'' if n == 1 else 's'} without a reference[/]")
    console.print(f"results: {result.path}")


def _count(n: int, one: str, many: str) -> str:
    """``1 output has`` / ``3 outputs have``."""
    return f"{n} {one if n == 1 else many}"
