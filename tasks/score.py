"""``tokbench score``: score audio made elsewhere against references, with the recon metrics.

Files are matched by stem (``ref/abc.wav`` with ``hyp/abc.flac``), at any sample rate; both sides
are resampled to 16 kHz; lengths follow :mod:`tokbench.run.decode_score` (20 ms tolerance). Results go to the same
store as every run, so ``load_results(out)`` reads them.
"""

from __future__ import annotations

import datetime as _dt
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tokbench.console import Device, console, fail, print_summary

if TYPE_CHECKING:
    import pandas as pd

    from tokbench.run.decode_score import Produced

# The rest (torch, pandas, the store, the runner) is imported by score_folders after it has
# started the metric workers' fork server, so that the two start-ups overlap; the CLI imports
# this module for every command.

TASK = "score"
TASK_VERSION = "2"  # 2: output lengths follow the decode-and-score rule
SCORE_CHUNK = 32  # pairs loaded at once; scored while the next chunk loads
# Outputs made elsewhere have no known frame: within 20 ms they are trimmed or padded.
SCORE_LENGTH_TOLERANCE_S = 0.02


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
    with more metrics adds only those the records lack."""
    from tokbench.metrics.selection import resolve_metrics
    from tokbench.run.scoring import start_workers_early

    selected = resolve_metrics(metrics)
    start_workers_early(selected, workers)  # first: it imports while this process does below

    import tokbench
    from tokbench.data import read_folder
    from tokbench.data.base import content_revision
    from tokbench.identity import identity_fields
    from tokbench.io.cache import Cache
    from tokbench.metrics.asr import asr_protocol, task_scorer
    from tokbench.metrics.asr_backends import check_backend
    from tokbench.metrics.selection import lacking
    from tokbench.protocol import protocol_settings
    from tokbench.results.store import RunSpec, RunStore
    from tokbench.run.decode_score import Produced, as_supplements, score_stream
    from tokbench.run.runner import finish_run, write_output
    from tokbench.run.scoring import ReferenceKeys, Scorer

    check_backend(asr_backend)
    refs = read_folder(ref, transcript=text)
    hyp_set = read_folder(hyp)
    hyp_by_id = {u.id: u for u in hyp_set.utterances}
    ref_ids = {u.id for u in refs.utterances}
    missing = sorted(ref_ids - set(hyp_by_id))
    unmatched = sorted(set(hyp_by_id) - ref_ids)
    if missing:
        log(f"{_count(len(missing), 'reference has', 'references have')} no output in {hyp}: "
            f"{', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    if unmatched:
        log(f"{_count(len(unmatched), 'output has', 'outputs have')} no reference in {ref}: "
            f"{', '.join(unmatched[:5])}" + (" ..." if len(unmatched) > 5 else ""))
    hyp_paths = [Path(u.path) for u in hyp_set.utterances]
    hyp_revision = content_revision(hyp_paths, Path(hyp))
    asr_settings = asr_protocol(asr, asr_model, asr_checkpoint, asr_backend, device)
    spec = RunSpec(
        dataset=refs.name, dataset_revision=refs.revision, task=TASK, task_version=TASK_VERSION,
        task_options={"asr": asr, "asr_model": asr_settings["model"],
                      **({"asr_backend": asr_backend} if asr_backend != "whisper" else {})},
        tokenizer="external", variant=name or Path(hyp).resolve().name,
        tokenizer_options={"hyp_revision": hyp_revision}, tokenizer_revision=hyp_revision,
        protocol=protocol_settings(asr=asr_settings), kind="external",
        **identity_fields(None, [u.id for u in refs.utterances]),
    )
    store = RunStore(Path(out), spec).open({
        "tokbench_version": tokbench.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "ref_dir": str(Path(ref).resolve()), "hyp_dir": str(Path(hyp).resolve()),
        "dataset": refs.describe(), "missing_outputs": missing, "unmatched_outputs": unmatched,
        "metrics_selected": list(selected),
    }, utterance_ids=[u.id for u in refs.utterances])
    asr_scorer = task_scorer(asr, asr_model, asr_checkpoint, device, batch_size, log,
                             backend=asr_backend)
    # Utterances without a record, and recorded ones lacking selected metrics (supplements).
    lacking_for: dict[str, tuple[str, ...]] = {}
    todo = []
    for u in refs.utterances:
        have = store.recorded_metrics(u.id)
        if have is None:
            todo.append(u)
        elif need := lacking({"metrics": dict.fromkeys(have)}, selected):
            lacking_for[u.id] = need
            todo.append(u)
    # A missing output is a failure to record, not a gap to average over.
    failed = [Produced.failed(u.id, f"no output file in {hyp}", ("length_ratio",))
              for u in todo if u.id not in hyp_by_id]
    todo = [u for u in todo if u.id in hyp_by_id]

    def chunks() -> Iterator[list[Produced]]:
        if failed:
            yield failed
        for start in range(0, len(todo), SCORE_CHUNK):  # load one chunk while the last is scored
            chunk = [_load_pair(u.id, u.path, hyp_by_id[u.id].path, u.text)
                     for u in todo[start:start + SCORE_CHUNK]]
            for p in chunk:
                p.item.metrics = lacking_for.get(p.item.utterance_id)
            yield chunk

    with Scorer(Cache(cache_dir), ReferenceKeys(refs.name, refs.revision), workers, asr_scorer,
                metrics=selected, device=device) as scorer:
        for output in as_supplements(score_stream(scorer, chunks()), lacking_for):
            write_output(store, output)
    summary = finish_run(store)
    return ScoreResult(store.path, summary, missing, unmatched)


def _load_pair(utt_id: str, ref_path: str, hyp_path: str, text: str | None) -> Produced:
    """One reference/output pair ready to score (lengths as in :mod:`tokbench.run.decode_score`,
    with a tolerance of ``SCORE_LENGTH_TOLERANCE_S``)."""
    from tokbench.io.audio import AudioError, load_audio, resample
    from tokbench.protocol import SCORING_SAMPLE_RATE
    from tokbench.run.decode_score import Produced, fit_output, length_fields
    from tokbench.run.scoring import ScoreItem, check_output

    try:
        r = load_audio(ref_path)
    except AudioError as exc:
        return Produced.failed(utt_id, f"reference: {exc}", ("length_ratio",), text=text)
    ref16 = resample(r.wav, r.sample_rate, SCORING_SAMPLE_RATE)
    try:
        h = load_audio(hyp_path)
    except AudioError as exc:
        return Produced(ScoreItem(utt_id, ref16, None, text, f"output: {exc}"), {"length_ratio": None})
    reason = check_output(h.wav)
    if reason:
        return Produced(ScoreItem(utt_id, ref16, None, text, reason), {"length_ratio": None})
    raw16 = resample(h.wav, h.sample_rate, SCORING_SAMPLE_RATE)
    tolerance = round(SCORE_LENGTH_TOLERANCE_S * SCORING_SAMPLE_RATE)
    hyp16, mismatch = fit_output(raw16, len(ref16), tolerance)
    lengths = length_fields(len(raw16), len(ref16), mismatch)
    extra = {"length_mismatch_16k": lengths["length_mismatch_16k"], "ref_rate": r.sample_rate,
             "hyp_rate": h.sample_rate}
    return Produced(ScoreItem(utt_id, ref16, hyp16, text, None, extra),
                    {"length_ratio": lengths["length_ratio"]})


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
    from tokbench.runtime import default_device

    try:
        result = score_folders(ref, hyp, text=text, out=out, name=name, asr=asr, asr_model=asr_model,
                               asr_checkpoint=asr_checkpoint,
                               device=device.value if device else default_device(), workers=workers,
                               metrics=metrics, asr_backend=asr_backend)
    except (DatasetError, MetricSelectionError, UnknownBackendError) as exc:
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
