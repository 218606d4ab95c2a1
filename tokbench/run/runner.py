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
from dataclasses import dataclass, field
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
from tokbench.registry import tasks, tokenizers
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

# The engine's and the tokenizers' libraries; each metric declaration adds its own (packages=).
PACKAGES = ("torch", "numpy", "soundfile", "soxr", "scipy", "transformers", "tokenizers",
            "pandas", "webrtcvad", "pyloudnorm")


@dataclass
class RunResult:
    path: Path
    run_id: str
    status: str  # "complete" or "unsupported"
    summary: pd.DataFrame
    reason: str | None = None
    account: Account | None = None  # failures by reason (complete runs)


def package_versions() -> dict[str, str | None]:
    """Versions of the libraries that compute tokens and metrics (None: not installed)."""
    from tokbench.metrics.kit import declarations

    declared = [p for d in declarations() for p in d.packages]
    out: dict[str, str | None] = {}
    for name in dict.fromkeys([*PACKAGES, *declared]):
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


def resolve_run(tokenizer: str, task: str,
                overrides: Mapping[str, Any]) -> tuple[ResolvedTokenizer, Task]:
    """The preset and the task of a run, each resolved once: every ``--set`` key goes to the
    one whose options declare it (``split_overrides``)."""
    task_entry = tasks.get(task)
    task_cls: Any = task_entry.load()
    tok_cls: Any = tokenizers.get(tokenizer).load()
    tok_over, task_over = split_overrides(overrides, tok_cls.Options, task_cls.Options)
    resolved = resolve_tokenizer(tokenizer, tok_over)
    return resolved, task_cls(build_options(task_cls.Options, task_entry.options, task_over))


@dataclass(frozen=True)
class ExternalOutputs:
    """Outputs made elsewhere, scored by a run without a tokenizer (kind ``external``): their
    label (the run's variant) and their content revision and identity options (what stands for
    a tokenizer's revision and options in the run's identity)."""

    variant: str
    revision: str
    options: Mapping[str, Any]


@dataclass(frozen=True)
class RunSettings:
    """How a run works: where it writes, on what, how fast. None of it is part of the run's
    identity, except the device through the protocol settings it changes (ASR precision)."""

    out: Path = Path("results")
    device: str | None = None
    batch_size: int = 8
    workers: int | None = None
    cache_dir: str | Path | None = None
    progress: bool = False
    log: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr))
    wait: bool = False
    rerun_failed: bool = False


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
    settings = RunSettings(out=Path(out), device=device, batch_size=batch_size,
                           workers=workers, cache_dir=cache_dir, progress=progress, log=log,
                           wait=wait, rerun_failed=rerun_failed)
    set_values = dict(overrides) if isinstance(overrides, Mapping) else parse_overrides(overrides)
    resolved, task_obj = resolve_run(tokenizer, task, set_values)
    data = dataset if isinstance(dataset, Dataset) else open_dataset(dataset, transcript=transcript)
    return run_resolved(resolved, task_obj, data, settings, limit=limit, checkpoint=checkpoint,
                        model=model)


def run_resolved(resolved: ResolvedTokenizer, task_obj: Task, data: Dataset,
                 settings: RunSettings, *, limit: int | None = None,
                 checkpoint: str | None = None, model: Tokenizer | None = None) -> RunResult:
    """:func:`run` with the preset and the task already resolved (:func:`resolve_run`; a sweep
    resolves them to plan its runs and passes them on)."""
    data = data.subset(limit)
    device = _prepare(task_obj, settings)
    static_meta = resolved.meta
    identity = run_identity(resolved, data)
    reason = task_obj.unsupported_reason(static_meta)
    if reason:
        spec = _spec(task_obj, data, identity, tokenizer=static_meta.name, variant=resolved.variant,
                     tokenizer_options=resolved.options_dict(), kind=static_meta.kind,
                     tokenizer_revision=static_meta.source.revision)
        return _unsupported(settings.out, spec, reason, rank_and_world()[0])

    if model is None and checkpoint is None and not settings.rerun_failed \
            and rank_and_world()[1] == 1:
        # A finished run with the preset's static identity: answered without loading anything.
        static = _spec(task_obj, data, identity, tokenizer=static_meta.name,
                       variant=resolved.variant,
                       tokenizer_options={**resolved.options_dict(), **dict(static_meta.options)},
                       kind=static_meta.kind,
                       tokenizer_revision=static_meta.source.resolved or static_meta.source.revision)
        done = finished(settings.out, static, task_obj, settings.log)
        if done is not None:
            settings.log(f"already complete: {done[0]} (nothing to add; --rerun-failed runs its "
                         "failed utterances again)")
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
    spec = _spec(task_obj, data, identity, tokenizer=meta.name, variant=resolved.variant,
                 tokenizer_options={**resolved.options_dict(), **dict(meta.options)},
                 kind=static_meta.kind,
                 tokenizer_revision=meta.source.resolved or meta.source.revision)
    return _run_spec(spec, task_obj, model, data, settings, device=device, limit=limit,
                     load_seconds=load_seconds, provenance={"tokenizer_meta": meta.to_dict()})


def run_external(task_obj: Task, data: Dataset, outputs: ExternalOutputs,
                 settings: RunSettings) -> RunResult:
    """Run a task that scores outputs made elsewhere (no tokenizer; ``tokbench score``): the
    same identity rules, store, lock, resume and summary as every run."""
    device = _prepare(task_obj, settings)
    spec = _spec(task_obj, data, identity_fields(None, [u.id for u in data.utterances]),
                 tokenizer="external", variant=outputs.variant,
                 tokenizer_options=dict(outputs.options), kind="external",
                 tokenizer_revision=outputs.revision)
    return _run_spec(spec, task_obj, None, data, settings, device=device, limit=None,
                     load_seconds=0.0, provenance={})


def _results_root(out: str | Path) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OptionError(f"--out {out} is a file; pass a folder for the results (it is created "
                          "if missing)")
    return out


def _prepare(task_obj: Task, settings: RunSettings) -> str:
    """The rank's device, given to the task before its protocol is read (ASR precision)."""
    _results_root(settings.out)
    device = rank_device(settings.device or default_device())
    task_obj.device = device
    return device


def _spec(task_obj: Task, data: Dataset, identity: Mapping[str, Any], **tokenizer: Any) -> RunSpec:
    return RunSpec(dataset=data.name, dataset_revision=data.revision, task=task_obj.name,
                   task_version=task_obj.version, task_options=task_obj.identity_options(),
                   protocol=protocol_settings(**task_obj.protocol()), **tokenizer, **identity)


def _run_spec(spec: RunSpec, task_obj: Task, model: Tokenizer | None, data: Dataset,
              settings: RunSettings, *, device: str, limit: int | None, load_seconds: float,
              provenance: Mapping[str, Any]) -> RunResult:
    rank, world = rank_and_world()
    store = RunStore(settings.out, spec, rank=rank, world_size=world)
    store.path.mkdir(parents=True, exist_ok=True)
    lock = RunLock(store.path, rank).acquire(wait=settings.wait, log=settings.log)
    try:
        return _run_locked(store, lock, task_obj, model, data, spec, settings, limit=limit,
                           device=device, load_seconds=load_seconds, provenance=provenance)
    finally:
        lock.release()


def _run_locked(store: RunStore, lock: RunLock, task_obj: Task, model: Tokenizer | None,
                data: Dataset, spec: RunSpec, settings: RunSettings, *, limit: int | None,
                device: str, load_seconds: float, provenance: Mapping[str, Any]) -> RunResult:
    rank, world = store.rank, store.world_size
    log = settings.log
    store.open({
        "tokbench_version": tokbench.__version__,
        "git_revision": git_revision(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **provenance,
        "dataset": data.describe(),
        "task": {"name": task_obj.name, "version": task_obj.version,
                 "options": options_dict(task_obj.options)},
        "limit": limit,
        "device": device,
        "batch_size": settings.batch_size,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        **task_obj.provenance(data),
    }, utterance_ids=[u.id for u in data.utterances])
    mine = shard(list(data.utterances), rank, world)
    if settings.rerun_failed:
        retried = store.forget_failed()
        if retried:
            log(f"rerunning {retried} failed utterances")
    done = sum(store.is_done(u.id) for u in mine)
    if done:
        log(f"resuming: {done} of {len(mine)} done")
    ctx = RunContext(
        tokenizer=model, dataset=data, utterances=mine,
        cache=Cache(settings.cache_dir, adapter_code=code_token(spec.code)), device=device,
        batch_size=settings.batch_size, workers=settings.workers,
        progress=progress_display(settings.progress), log=log, is_done=store.is_done, rank=rank,
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
