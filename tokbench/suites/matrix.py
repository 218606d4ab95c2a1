"""A sweep: every tokenizer x task x dataset of a matrix, each run through
:func:`runner.run_resolved` (the preset and the task resolved once, here).

Each dataset is opened once and each tokenizer loaded once for all its tasks; reference-side
features (reference F0, speaker embeddings, ground-truth transcripts) are cached per dataset by
the tasks, so with one cache they are computed once for the whole sweep. A run already complete
in the results folder is skipped without loading anything; a partial one resumes (the store
skips recorded utterances). One run failing never stops the others: every run ends as one
:class:`Outcome` (done, resumed, skipped, unsupported, not available, failed) with the reason.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tokbench.data import Dataset, DatasetError
from tokbench.options import OptionError, option_fields
from tokbench.protocol import protocol_id, protocol_settings
from tokbench.registry import UnknownNameError, tasks, tokenizers
from tokbench.results.store import find_runs, iter_records, read_run_json, safe_component
from tokbench.suites.loading import Selector, TokenizerEntry

# Statuses, in the order the summary lists them.
DONE, RESUMED, SKIPPED = "done", "resumed", "skipped"
UNSUPPORTED, NOT_AVAILABLE, FAILED = "unsupported", "not available", "failed"
STATUSES = (DONE, RESUMED, SKIPPED, UNSUPPORTED, NOT_AVAILABLE, FAILED)
NOT_AVAILABLE_TEXT = "not available in this install"


@dataclass
class Outcome:
    """How one run of a sweep ended."""

    label: str  # the tokenizer entry's label
    preset: str
    task: str
    dataset: str
    status: str
    detail: str = ""
    path: str | None = None
    n_records: int | None = None  # utterance records in the run folder
    n_corpus: int | None = None  # corpus-level records

    def records_text(self) -> str:
        if self.n_records is None:
            return ""
        return f"{self.n_records}" + (f" + {self.n_corpus} corpus" if self.n_corpus else "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Outcome:
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]


@dataclass
class SweepOptions:
    """Settings shared by every run of a sweep (what ``tokbench run`` takes besides names)."""

    out: Path = Path("results")
    limit: int | None = None
    device: str | None = None
    batch_size: int = 8
    workers: int | None = None
    cache_dir: Path | None = None
    data_dir: Path | None = None
    transcript: str | None = None
    progress: bool = False
    rerun: bool = False  # run complete runs again (they resume: nothing is duplicated)
    log: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr))


def default_presets(selector: Selector) -> list[TokenizerEntry]:
    """The first registered preset of each adapter class (its default), filtered by capability.

    A preset whose adapter cannot even describe itself here (a missing optional package) is kept:
    the sweep reports it as not available, rather than silently leaving it out.
    """
    seen: set[str] = set()
    entries = []
    for name, entry in tokenizers.items():
        if entry.target in seen or name in selector.exclude:
            continue
        seen.add(entry.target)
        if selector.capability:
            try:
                from tokbench.resolve import resolve_tokenizer

                if not resolve_tokenizer(name).meta.can(selector.capability):
                    continue
            except Exception:  # noqa: BLE001 - reported when the sweep runs it
                pass
        entries.append(TokenizerEntry(preset=name, label=name))
    return entries


def entries_of(tokenizer_names: Iterable[str]) -> list[TokenizerEntry]:
    return [TokenizerEntry(preset=n, label=n) for n in tokenizer_names]


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str, sort_keys=True))


@dataclass(frozen=True)
class PlannedRun:
    """What can be known about a run before its model loads (to find it in the store)."""

    task_obj: Any
    variant: str
    tokenizer_options: dict[str, Any]
    task_options: dict[str, Any]
    protocol_id: str


def plan_run(resolved: Any, task: str, task_overrides: Mapping[str, Any]) -> PlannedRun:
    """The task resolved once: the plan's task object is the one the run then uses."""
    from tokbench.run.runner import resolve_task

    task_obj = resolve_task(task, task_overrides)
    pid = protocol_id(protocol_settings(**task_obj.protocol()))
    return PlannedRun(task_obj, resolved.variant, resolved.options_dict(),
                      task_obj.identity_options(), pid)


def find_existing(out: Path, data: Dataset, plan: PlannedRun) -> Path | None:
    """The run folder of this configuration under ``out``, if an earlier run made one.

    Matched on everything known before the weights load: dataset and revision, task, version,
    options and protocol, variant, and the preset's options (the loaded model may add to them,
    e.g. the hash of centroids it found; those are not known yet, so ``--rerun`` is the way to
    redo a run whose weights changed under the same preset).
    """
    folder = out / safe_component(data.name) / safe_component(plan.task_obj.name) / safe_component(plan.variant)
    if not folder.is_dir():
        return None
    want_task = _jsonable(plan.task_options)
    want_tok = _jsonable(plan.tokenizer_options)
    for run_dir in find_runs(folder):
        try:
            config = read_run_json(run_dir).get("config", {})
        except (OSError, ValueError):
            continue
        tok = config.get("tokenizer_options") or {}
        if (config.get("dataset_revision") == data.revision
                and config.get("task_version") == plan.task_obj.version
                and _jsonable(config.get("task_options")) == want_task
                and config.get("protocol_id") == plan.protocol_id
                and all(tok.get(k) == v for k, v in want_tok.items())):
            return run_dir
    return None


def _covers(info: Mapping[str, Any], limit: int | None) -> bool:
    """A complete run made with ``info['limit']`` holds every utterance a run with ``limit`` needs."""
    previous = info.get("limit")
    return previous is None or (limit is not None and limit <= previous)


def _route(overrides: Mapping[str, Any], cls: Any) -> dict[str, Any]:
    """The overrides an adapter or task class declares in its ``Options``."""
    known = option_fields(cls.Options)
    return {k: v for k, v in overrides.items() if k in known}


def check_shared_overrides(overrides: Mapping[str, Any], entries: Sequence[TokenizerEntry],
                           task_names: Iterable[str]) -> None:
    """Every shared ``--set`` key must be an option of some tokenizer or task of the matrix."""
    if not overrides:
        return
    known: set[str] = set()
    for name in task_names:
        known |= set(option_fields(tasks.get(name).load().Options))
    for e in entries:
        try:
            known |= set(option_fields(tokenizers.get(e.preset).load().Options))
        except Exception:  # noqa: BLE001 - an unavailable preset is reported by the sweep
            continue
    unknown = sorted(set(overrides) - known)
    if unknown:
        from tokbench.registry import suggest

        raise OptionError(f"unknown --set option {unknown[0]!r}{suggest(unknown[0], known)}: no "
                          f"tokenizer or task of this sweep declares it; they accept: "
                          f"{', '.join(sorted(known))}")


def _why(exc: BaseException) -> str:
    """The reason shown for a failed run: the message alone where it is written for users."""
    from tokbench.io.download import DownloadError
    from tokbench.results.lock import RunLockedError
    from tokbench.types import TokenizerSetupError

    text = str(exc).strip() or type(exc).__name__
    clean = (DatasetError, DownloadError, OptionError, UnknownNameError, FileNotFoundError,
             TokenizerSetupError, RunLockedError)
    return text if isinstance(exc, clean) else f"{type(exc).__name__}: {text}"


def _open(dataset: str | Dataset, opts: SweepOptions) -> Dataset:
    if isinstance(dataset, Dataset):
        return dataset
    from tokbench.data.local_copies import open_dataset_at

    return open_dataset_at(dataset, data_dir=opts.data_dir, transcript=opts.transcript)


def run_matrix(
    entries: Sequence[TokenizerEntry],
    task_options: Mapping[str, Mapping[str, Any]],
    datasets: Sequence[str | Dataset],
    opts: SweepOptions,
    shared_overrides: Mapping[str, Any] | None = None,
) -> list[Outcome]:
    """Run every entry x task x dataset; returns one :class:`Outcome` per run, in order.

    ``task_options``: task name -> its options. ``shared_overrides`` (``tokbench run --set``)
    apply to every run whose tokenizer or task declares the key.
    """
    from tokbench.run.distributed import rank_and_world
    from tokbench.run.runner import run_resolved
    from tokbench.runtime import default_device, rank_device

    shared = dict(shared_overrides or {})
    check_shared_overrides(shared, entries, task_options)
    total = len(entries) * len(task_options) * len(datasets)
    outcomes: list[Outcome] = []
    rank, _ = rank_and_world()
    bar = _progress_bar(total, opts.progress and rank == 0)  # one display, not one per rank

    def record(o: Outcome) -> None:
        outcomes.append(o)
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"{o.label} {o.task}: {o.status}")

    opened: list[Dataset | str] = []  # a dataset, or why it could not be opened
    names: list[str] = []
    for dataset in datasets:
        names.append(dataset.name if isinstance(dataset, Dataset) else str(dataset))
        try:
            opened.append(_open(dataset, opts))
        except Exception as exc:  # noqa: BLE001 - every run on it fails with this reason
            opened.append(f"dataset: {_why(exc)}")
    for e in entries:
        loaded: dict[str, Any] = {}  # this entry's model, loaded once for all tasks and datasets
        for name, data in zip(names, opened, strict=True):
            if isinstance(data, str):
                for task in task_options:
                    record(Outcome(e.label, e.preset, task, name, FAILED, data))
                continue
            if bar is not None:
                bar.set_description_str(f"{e.label} on {data.name}")
            _run_entry(e, task_options, data, opts, shared, record, run_resolved, rank,
                       default_device, rank_device, loaded)
        loaded.clear()  # free the model before the next tokenizer's loads
    if bar is not None:
        bar.close()
    return outcomes


def _run_entry(e: TokenizerEntry, task_options: Mapping[str, Mapping[str, Any]], data: Dataset,
               opts: SweepOptions, shared: Mapping[str, Any], record: Callable[[Outcome], None],
               run: Callable[..., Any], rank: int, default_device: Callable[[], str],
               rank_device: Callable[[str], str], loaded: dict[str, Any]) -> None:
    """Every task of one tokenizer entry on one dataset; the model is loaded into ``loaded``
    the first time a supported task needs it, and reused from there."""
    from tokbench.resolve import resolve_tokenizer
    from tokbench.run.runner import RunSettings

    def fail_all(status: str, why: str, names: Iterable[str]) -> None:
        for task in names:
            record(Outcome(e.label, e.preset, task, data.name, status, why))

    if e.preset not in tokenizers:
        fail_all(NOT_AVAILABLE, f"{NOT_AVAILABLE_TEXT}: no preset {e.preset!r} is registered "
                 "(`tokbench list tokenizers`)", task_options)
        return
    try:
        tok_cls = tokenizers.get(e.preset).load()
    except ImportError as exc:
        fail_all(NOT_AVAILABLE, f"{NOT_AVAILABLE_TEXT}: {_why(exc)}", task_options)
        return
    except Exception as exc:  # noqa: BLE001
        fail_all(FAILED, _why(exc), task_options)
        return
    tok_over = {**_route(shared, tok_cls), **e.overrides}
    try:
        resolved = resolve_tokenizer(e.preset, tok_over)
        meta = resolved.meta
    except Exception as exc:  # noqa: BLE001 - e.g. a bad option value in the suite
        fail_all(FAILED, _why(exc), task_options)
        return
    pending: list[tuple[Any, Path | None, bool]] = []  # (task object, resumed folder, supported)
    for task, options in task_options.items():
        try:
            task_over = {**_route(shared, tasks.get(task).load()), **options}
            # runner.run routes a key both declare to the tokenizer: a task value would be lost.
            both = sorted(k for k in options if k in option_fields(tok_cls.Options)
                          and tok_over.get(k, object()) != options[k])
            if both:
                raise OptionError(f"option {both[0]!r} of task {task} is also an option of "
                                  f"tokenizer {e.preset}, and a run gives it to the tokenizer: "
                                  f"set it under the entry's `set:` instead")
            plan = plan_run(resolved, task, task_over)
            supported = plan.task_obj.unsupported_reason(meta) is None
        except Exception as exc:  # noqa: BLE001
            record(Outcome(e.label, e.preset, task, data.name, FAILED, _why(exc)))
            continue
        existing = find_existing(opts.out, data, plan)
        if existing is not None and not opts.rerun:
            info = read_run_json(existing)
            if info.get("status") in ("complete", "unsupported") and _covers(info, opts.limit):
                record(Outcome(e.label, e.preset, task, data.name, SKIPPED,
                               f"already {info['status']}", str(existing), *_count(existing)))
                continue
        before = sum(1 for _ in iter_records(existing)) if existing is not None else 0
        pending.append((plan.task_obj, existing if before else None, supported))
    if any(supported for *_, supported in pending) and "model" not in loaded:
        if "error" in loaded:
            why = loaded["error"]
        else:
            try:
                loaded["model"] = resolved.load(device=rank_device(opts.device or default_device()),
                                                checkpoint=e.checkpoint)
                why = ""
            except Exception as exc:  # noqa: BLE001 - e.g. weights not cached offline
                why = loaded["error"] = _why(exc)
        if why:
            for task_obj, _, supported in pending:
                if supported:
                    record(Outcome(e.label, e.preset, task_obj.name, data.name, FAILED,
                                   f"loading: {why}"))
            pending = [p for p in pending if not p[2]]
    model = loaded.get("model")
    settings = RunSettings(out=Path(opts.out), device=opts.device, batch_size=opts.batch_size,
                           workers=opts.workers, cache_dir=opts.cache_dir, progress=opts.progress,
                           log=opts.log)
    for task_obj, resumed_from, _ in pending:
        task = task_obj.name
        try:
            # the preset and the task resolved above (plan_run) are the ones the run uses
            result = run(resolved, task_obj, data, settings, limit=opts.limit,
                         checkpoint=e.checkpoint, model=model)
        except Exception as exc:  # noqa: BLE001 - one failed run never stops the sweep
            if rank == 0:
                opts.log(f"{e.label} {task} on {data.name} failed:\n{traceback.format_exc()}")
            record(Outcome(e.label, e.preset, task, data.name, FAILED, _why(exc)))
            continue
        n = _count(result.path)
        if result.status == "unsupported":
            record(Outcome(e.label, e.preset, task, data.name, UNSUPPORTED, result.reason or "",
                           str(result.path), *n))
        elif resumed_from is not None and Path(resumed_from) == Path(result.path):
            record(Outcome(e.label, e.preset, task, data.name, RESUMED,
                           "; ".join(x for x in ("continued an interrupted run", _failures(result)) if x),
                           str(result.path), *n))
        else:
            record(Outcome(e.label, e.preset, task, data.name, DONE, _failures(result),
                           str(result.path), *n))


def _failures(result: Any) -> str:
    """'k of N utterances failed (reason)' for a finished run with failed utterances, else ''."""
    account = getattr(result, "account", None)
    if account is None or not account.failed:
        return ""
    reason, ids = max(account.failed.items(), key=lambda kv: len(kv[1]))
    more = f"; {len(account.failed) - 1} more reasons" if len(account.failed) > 1 else ""
    return f"{account.n_failed} of {account.n_utterances} utterances failed ({reason}{more})"


def _count(run_dir: Path | str) -> tuple[int, int]:
    """(utterance records, corpus records) of a run folder."""
    n_utt = sum(1 for _ in iter_records(run_dir))
    return n_utt, sum(1 for _ in iter_records(run_dir, include_corpus=True)) - n_utt


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="sweep", unit="run", dynamic_ncols=True, position=0)


def write_outcomes(path: Path, outcomes: Sequence[Outcome]) -> None:
    from tokbench.io.files import atomic_write_json

    atomic_write_json(path, {"outcomes": [o.to_dict() for o in outcomes]})


def read_outcomes(path: Path) -> list[Outcome]:
    return [Outcome.from_dict(d) for d in json.loads(path.read_text(encoding="utf-8"))["outcomes"]]


def counts(outcomes: Iterable[Outcome]) -> dict[str, int]:
    c = dict.fromkeys(STATUSES, 0)
    for o in outcomes:
        c[o.status] = c.get(o.status, 0) + 1
    return c
