"""``tokbench run``: resolve names, open the store, shard the data, run the task, summarise.

Data flows one way: dataset -> runner -> adapter -> metrics -> store -> report.
"""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

import tokbench
from tokbench.data import Dataset, open_dataset
from tokbench.identity import code_token, identity_fields
from tokbench.io.audio import write_audio
from tokbench.io.cache import Cache
from tokbench.io.files import atomic_write_json
from tokbench.options import (
    OptionError,
    build_options,
    options_dict,
    parse_overrides,
    split_overrides,
)
from tokbench.protocol import protocol_settings
from tokbench.registry import tasks
from tokbench.resolve import ResolvedTokenizer, register_adapter_file, resolve_tokenizer
from tokbench.results import load_results, summarize, summary_records
from tokbench.results.lock import RunLock
from tokbench.results.store import RunSpec, RunStore, iter_records, safe_component
from tokbench.run.account import Account, failure_account
from tokbench.run.complete import finished, stored_summary
from tokbench.run.distributed import barrier, rank_and_world, shard
from tokbench.run.task import (
    SUPPLEMENT,
    Artefact,
    AudioExample,
    Output,
    RecordGroup,
    RunContext,
    Task,
    UnsupportedError,
)
from tokbench.runtime import default_device, progress_display, rank_device
from tokbench.types import Tokenizer

PACKAGES = ("torch", "numpy", "soundfile", "soxr", "scipy", "pesq", "pystoi", "pyworld", "jiwer",
            "openai-whisper", "resemblyzer", "transformers", "tokenizers", "pandas", "webrtcvad",
            "pyloudnorm")


@dataclass
class RunResult:
    path: Path
    run_id: str
    status: str  # "complete" or "unsupported"
    summary: pd.DataFrame
    reason: str | None = None
    account: Account | None = None  # failures by reason (complete runs)


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_revision() -> str | None:
    root = Path(tokbench.__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def resolve_task(name: str, task_overrides: Mapping[str, Any]) -> Task:
    entry = tasks.get(name)
    cls = entry.load()
    return cls(build_options(cls.Options, entry.options, task_overrides))


def run(
    tokenizer: str,
    task: str,
    dataset: str | Dataset = "sample",
    *,
    limit: int | None = None,
    device: str | None = None,
    batch_size: int = 8,
    workers: int | None = None,
    out: str | Path = "results",
    overrides: Sequence[str] | Mapping[str, Any] = (),
    checkpoint: str | None = None,
    adapter: str | None = None,
    transcript: str | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
    wait: bool = False,
    rerun_failed: bool = False,
    model: Tokenizer | None = None,
) -> RunResult:
    """Run one task for one tokenizer preset on one dataset and store the results.

    One process per run and rank: if another live process runs the same configuration into
    the same folder, :class:`~tokbench.results.lock.RunLockedError` (or, with ``wait``, wait
    for it). ``rerun_failed`` forgets the records of failed utterances so they are run again.
    ``model``: the tokenizer already loaded from this preset and overrides (a sweep loads each
    tokenizer once for all its tasks); None loads it here."""
    if adapter:
        registered = register_adapter_file(adapter)
        tokenizer = tokenizer or registered
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OptionError(f"--out {out} is a file; pass a folder for the results (it is created "
                          "if missing)")
    set_values = dict(overrides) if isinstance(overrides, Mapping) else parse_overrides(overrides)
    entry_cls: Any = tasks.get(task).load()
    probe = resolve_tokenizer(tokenizer, {})
    tok_over, task_over = split_overrides(set_values, probe.cls.Options, entry_cls.Options)
    resolved: ResolvedTokenizer = resolve_tokenizer(tokenizer, tok_over)
    task_obj = resolve_task(task, task_over)
    data = dataset if isinstance(dataset, Dataset) else open_dataset(dataset, transcript=transcript)
    data = data.subset(limit)
    rank, world = rank_and_world()
    device = rank_device(device or default_device())
    task_obj.device = device  # protocol settings may depend on it (ASR precision)

    static_meta = resolved.meta
    spec_kwargs: dict[str, Any] = dict(
        dataset=data.name, dataset_revision=data.revision, task=task_obj.name,
        task_version=task_obj.version,
        task_options={k: v for k, v in options_dict(task_obj.options).items()
                      if k not in task_obj.runtime_options},
        tokenizer=static_meta.name, variant=resolved.variant,
        tokenizer_options=resolved.options_dict(), kind=static_meta.kind,
        protocol=protocol_settings(**task_obj.protocol()),
    )
    reason = task_obj.unsupported_reason(static_meta)
    if reason:
        spec = RunSpec(tokenizer_revision=static_meta.source.revision, **spec_kwargs,
                       **run_identity(resolved, data))
        return _unsupported(Path(out), spec, reason, rank)

    if model is None and checkpoint is None and not rerun_failed and world == 1:
        # A finished run with the preset's static identity: answered without loading anything.
        static = RunSpec(tokenizer_revision=static_meta.source.resolved or static_meta.source.revision,
                         **{**spec_kwargs, "tokenizer_options": {**resolved.options_dict(),
                                                                 **dict(static_meta.options)}},
                         **run_identity(resolved, data))
        done = finished(Path(out), static, task_obj, log)
        if done is not None:
            log(f"already complete: {done[0]} (nothing to add; --rerun-failed runs its failed "
                "utterances again)")
            return RunResult(done[0], static.run_id, "complete", stored_summary(done[0]),
                             account=failure_account(done[1]))

    started = time.time()
    if model is None:
        model = resolved.load(device=device, checkpoint=checkpoint)
    elif model.meta.name != static_meta.name:
        raise ValueError(f"the model passed to run() is {model.meta.name!r}, not the preset's "
                         f"{static_meta.name!r}")
    meta = model.meta
    load_seconds = time.time() - started
    # The loaded model's options can say more than the preset (e.g. the hash of the k-means
    # centroids it found): they belong to the run's identity.
    spec_kwargs["tokenizer_options"] = {**resolved.options_dict(), **dict(meta.options)}
    spec = RunSpec(tokenizer_revision=meta.source.resolved or meta.source.revision, **spec_kwargs,
                   **run_identity(resolved, data))
    store = RunStore(Path(out), spec, rank=rank, world_size=world)
    store.path.mkdir(parents=True, exist_ok=True)
    lock = RunLock(store.path, rank).acquire(wait=wait, log=log)
    try:
        return _run_locked(store, lock, task_obj, model, data, spec, limit=limit, device=device,
                           batch_size=batch_size, workers=workers, cache_dir=cache_dir,
                           progress=progress, log=log, load_seconds=load_seconds, rerun_failed=rerun_failed)
    finally:
        lock.release()


def _run_locked(store: RunStore, lock: RunLock, task_obj: Task, model: Any, data: Dataset,
                spec: RunSpec, *, limit: int | None, device: str, batch_size: int,
                workers: int | None, cache_dir: str | Path | None, progress: bool,
                log: Callable[[str], None], load_seconds: float, rerun_failed: bool) -> RunResult:
    rank, world = store.rank, store.world_size
    meta = model.meta
    store.open({
        "tokbench_version": tokbench.__version__,
        "git_revision": git_revision(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "tokenizer_meta": meta.to_dict(),
        "dataset": data.describe(),
        "task": {"name": task_obj.name, "version": task_obj.version,
                 "options": options_dict(task_obj.options)},
        "limit": limit,
        "device": device,
        "batch_size": batch_size,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
    }, utterance_ids=[u.id for u in data.utterances])
    mine = shard(list(data.utterances), rank, world)
    if rerun_failed:
        retried = store.forget_failed()
        if retried:
            log(f"rerunning {retried} failed utterances")
    done = sum(store.is_done(u.id) for u in mine)
    if done:
        log(f"resuming: {done} of {len(mine)} done")
    ctx = RunContext(
        tokenizer=model, dataset=data, utterances=mine,
        cache=Cache(cache_dir, adapter_code=code_token(spec.code)), device=device,
        batch_size=batch_size, workers=workers,
        progress=progress_display(progress), log=log, is_done=store.is_done, rank=rank,
        recorded_metrics=store.recorded_metrics,
        world_size=world,
    )
    t0 = time.time()
    try:
        task_obj.prepare(ctx)
        barrier()
        for output in task_obj.run(ctx):
            write_output(store, output)
    except UnsupportedError as exc:
        lock.release()
        return _unsupported(store.root, spec, str(exc), rank)
    except KeyboardInterrupt:
        saved = sum(store.is_done(u.id) for u in mine)
        message = f"interrupted ({saved} of {len(mine)} saved; rerun to resume)"
        if rank == 0:
            store.set_status("interrupted", status_reason=message)
        log(message)
        raise
    task_seconds = time.time() - t0
    barrier()
    summary = pd.DataFrame()
    account = failure_account(iter_records(store.path))
    if rank == 0:
        records = list(iter_records(store.path))
        store.write_corpus(task_obj.corpus_records(ctx, records))
        summary = finish_run(store, {"timings": {"load_seconds": round(load_seconds, 3),
                                                 "task_seconds": round(task_seconds, 3)}})
    return RunResult(store.path, spec.run_id, "complete", summary, account=account)


def finish_run(store: RunStore, updates: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Summarise a run's records, write summary.json and mark run.json complete (rank 0)."""
    summary = summarize(load_results(store.path))
    store.finish({"run_id": store.spec.run_id, "metrics": summary_records(summary)},
                 {**(updates or {}),
                  "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
    return summary


def write_output(store: RunStore, output: Output) -> None:
    """Write what a task yielded: a record, a shared side file (rank 0) or an audio example."""
    if isinstance(output, Artefact):
        if store.rank == 0:
            atomic_write_json(store.path / safe_component(output.name), output.value)
    elif isinstance(output, RecordGroup):
        store.append_group(output.records)
    elif isinstance(output, AudioExample):
        folder = store.examples_dir(output.utterance_id)
        write_audio(folder / f"{safe_component(output.role)}.wav", output.wav, output.sample_rate)
        if not (folder / "example.json").is_file():
            atomic_write_json(folder / "example.json", {"utterance_id": output.utterance_id})
    elif isinstance(output, dict) and output.pop(SUPPLEMENT, False):
        store.supplement(output)  # metrics added to a recorded utterance (--metrics)
    else:
        store.append(output)


def run_identity(resolved: ResolvedTokenizer, data: Dataset) -> dict[str, Any]:
    """The RunSpec fields of :mod:`tokbench.identity`: adapter code version, library versions
    and the utterance selection."""
    return identity_fields(resolved.cls, [u.id for u in data.utterances])


def _unsupported(out: Path, spec: RunSpec, reason: str, rank: int) -> RunResult:
    store = RunStore(out, spec, rank=rank)
    if rank == 0:
        store.open({"tokbench_version": tokbench.__version__})
        store.finish({"run_id": spec.run_id, "metrics": [], "unsupported": reason},
                     {"status_reason": reason}, status="unsupported")
    return RunResult(store.path, spec.run_id, "unsupported", pd.DataFrame(), reason)
