"""``tokbench score``: score audio made elsewhere against references, with the recon metrics.

Files are matched by stem (``ref/abc.wav`` with ``hyp/abc.flac``), at any sample rate; both sides
are resampled to 16 kHz and the output is fitted to the reference length. Results go to the same
store as every run, so ``load_results(out)`` reads them.
"""

from __future__ import annotations

import datetime as _dt
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import tokbench
from tokbench.data import read_folder
from tokbench.data.base import content_revision
from tokbench.io.audio import AudioError, fit_length, load_audio, resample
from tokbench.io.cache import Cache
from tokbench.metrics.asr import asr_protocol, task_scorer
from tokbench.protocol import SCORING_SAMPLE_RATE, protocol_settings
from tokbench.records import make_record
from tokbench.results import load_results, summarize, summary_records
from tokbench.results.store import RunSpec, RunStore
from tokbench.run.scoring import (
    ReferenceKeys,
    ScoreItem,
    Scorer,
    check_output,
)

TASK = "score"
TASK_VERSION = "1"


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
    from tokbench.metrics.asr_backends import check_backend
    from tokbench.metrics.selection import lacking, resolve_metrics

    selected = resolve_metrics(metrics)
    check_backend(asr_backend)
    refs = read_folder(ref, transcript=text)
    hyp_set = read_folder(hyp)
    hyp_by_id = {u.id: u for u in hyp_set.utterances}
    ref_ids = {u.id for u in refs.utterances}
    missing = sorted(ref_ids - set(hyp_by_id))
    unmatched = sorted(set(hyp_by_id) - ref_ids)
    if missing:
        log(f"{len(missing)} references have no output in {hyp}: {', '.join(missing[:5])}"
            + (" ..." if len(missing) > 5 else ""))
    if unmatched:
        log(f"{len(unmatched)} outputs have no reference in {ref}: {', '.join(unmatched[:5])}"
            + (" ..." if len(unmatched) > 5 else ""))
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
    )
    store = RunStore(Path(out), spec).open({
        "tokbench_version": tokbench.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "ref_dir": str(Path(ref).resolve()), "hyp_dir": str(Path(hyp).resolve()),
        "dataset": refs.describe(), "missing_outputs": missing, "unmatched_outputs": unmatched,
        "metrics_selected": list(selected),
    })
    asr_scorer = task_scorer(asr, asr_model, asr_checkpoint, device, batch_size, log,
                             backend=asr_backend)
    # Utterances without a record, and recorded ones lacking selected metrics (supplements).
    extra_for: dict[str, tuple[str, ...]] = {}
    todo = []
    for u in refs.utterances:
        have = store.recorded_metrics(u.id)
        if have is None:
            todo.append(u)
        elif need := lacking({"metrics": dict.fromkeys(have)}, selected):
            extra_for[u.id] = need
            todo.append(u)
    for u in [u for u in todo if u.id not in hyp_by_id]:
        # a missing output is a failure to record, not a gap to average over
        names = extra_for.get(u.id, selected)
        record = make_record(u.id, dict.fromkeys(names),
                             dict.fromkeys(names, f"no output file in {hyp}"))
        (store.supplement if u.id in extra_for else store.append)(record)
    todo = [u for u in todo if u.id in hyp_by_id]
    chunk = 32
    with Scorer(Cache(cache_dir), ReferenceKeys(refs.name, refs.revision), workers, asr_scorer,
                metrics=selected, device=device) as scorer:
        pending = None
        for start in range(0, len(todo), chunk):  # load one chunk while the last is scored
            items = [_load_pair(u.id, u.path, hyp_by_id[u.id].path, u.text)
                     for u in todo[start:start + chunk]]
            for it in items:
                it.metrics = extra_for.get(it.utterance_id)
            new = scorer.start(items)
            if pending is not None:
                _append(store, scorer.finish(pending))
            pending = new
        if pending is not None:
            _append(store, scorer.finish(pending))
    summary = summarize(load_results(store.path))
    store.finish({"run_id": spec.run_id, "metrics": summary_records(summary)})
    return ScoreResult(store.path, summary, missing, unmatched)


def _append(store: RunStore, scored) -> None:
    for item, scores in scored:
        record = make_record(item.utterance_id, scores.values, scores.reasons,
                             extra={**item.extra, **scores.extra})
        # item.metrics is set for a recorded utterance whose record lacks some selected metrics
        (store.append if item.metrics is None else store.supplement)(record)


def _load_pair(utt_id: str, ref_path: str, hyp_path: str, text: str | None) -> ScoreItem:
    try:
        r = load_audio(ref_path)
    except AudioError as exc:
        return _failed(utt_id, f"reference: {exc}")
    ref16 = resample(r.wav, r.sample_rate, SCORING_SAMPLE_RATE)
    try:
        h = load_audio(hyp_path)
    except AudioError as exc:
        return ScoreItem(utt_id, ref16, None, text, f"output: {exc}")
    reason = check_output(h.wav)
    if reason:
        return ScoreItem(utt_id, ref16, None, text, reason)
    hyp16, mismatch = fit_length(resample(h.wav, h.sample_rate, SCORING_SAMPLE_RATE), len(ref16))
    extra = {"length_mismatch_16k": mismatch, "ref_rate": r.sample_rate, "hyp_rate": h.sample_rate}
    return ScoreItem(utt_id, ref16, hyp16, text, None, extra)


def _failed(utt_id: str, reason: str) -> ScoreItem:
    return ScoreItem(utt_id, np.zeros(0, np.float32), None, None, reason)

