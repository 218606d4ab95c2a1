"""The results store (docs/results.md).

One run = one folder ``<root>/<dataset>/<task>/<variant>/<config-hash>/`` with

- ``run.json``: provenance (written by rank 0, updated when the run finishes);
- ``utterances.rank<k>.jsonl``: append-only records, one per utterance (and ``param``), one file
  per process so ranks never contend for a file;
- ``supplements.rank<k>.jsonl``: metrics added to recorded utterances by a later run of the same
  configuration with a larger ``--metrics`` selection; each supplement only adds metrics its
  record lacks and is merged into it on reading (a metric already recorded is never replaced);
- ``corpus.jsonl``: corpus-level records (no ``utterance_id``), rewritten atomically;
- ``summary.json``: the aggregate table, written once all ranks are done.

A record is ``{schema_version, utterance_id, param, metrics: {name: number | null}, reasons: {name: text},
extra: {...}}``. A metric that could not be computed is ``null`` with a reason; NaN and inf never
reach a file. ``run.json`` and every record carry ``schema_version`` (files without it are version
1; a newer one than this tokbench reads is refused with an upgrade hint). Running the same configuration again resumes: keys already recorded by any rank are
skipped, so nothing is lost or duplicated.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokbench.io.files import (
    atomic_write,
    atomic_write_json,
    dumps,
    read_jsonl,
    repair_jsonl_tail,
)
from tokbench.options import stable_hash
from tokbench.protocol import protocol_id
from tokbench.records import SCHEMA_VERSION, record_key
from tokbench.results.validate import (
    CORPUS_FILE,
    RECORDS_GLOB,  # noqa: F401 (re-exported: where the record shards are)
    SELECTION_FILE,
    SUPPLEMENTS_GLOB,  # noqa: F401 (re-exported)
    RecordError,
    check_run_records,
    check_schema_version,
)


def _stamped(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` as written: with this tokbench's schema version first (records a task built
    without :func:`tokbench.records.make_record` get it here)."""
    return {"schema_version": SCHEMA_VERSION, **record}


def safe_component(part: str) -> str:
    """A path component made from any text: keep it readable, drop separators and oddities."""
    cleaned = re.sub(r"[^A-Za-z0-9._+=-]+", "_", part).strip("._")
    return cleaned or "_"


def example_folder_name(utterance_id: str) -> str:
    """A folder name for any utterance id, one-to-one: a readable part (at most 60 characters)
    plus a short hash of the exact id, so ``a/x`` and ``a_x``, or ``.`` and ``..``, never meet."""
    digest = hashlib.sha256(utterance_id.encode("utf-8")).hexdigest()[:10]
    return f"{safe_component(utterance_id)[:60]}-{digest}"


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run's numbers; its hash names the run folder."""

    dataset: str
    dataset_revision: str
    task: str
    task_version: str
    task_options: Mapping[str, Any]
    tokenizer: str  # the model-level name, e.g. "encodec-24k"
    variant: str  # the preset as invoked plus overrides, e.g. "encodec-24k-6kbps"
    tokenizer_options: Mapping[str, Any]
    tokenizer_revision: str | None
    protocol: Mapping[str, Any]
    kind: str = ""
    # tokbench.identity: the adapter's code version, library versions, the utterances covered.
    code: Mapping[str, Any] = field(default_factory=dict)
    libraries: Mapping[str, Any] = field(default_factory=dict)
    selection: Mapping[str, Any] = field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        identity = {name: dict(value) for name, value in (
            ("code", self.code), ("libraries", self.libraries), ("selection", self.selection))
            if value}
        return {**identity,
            "dataset": self.dataset,
            "dataset_revision": self.dataset_revision,
            "task": self.task,
            "task_version": self.task_version,
            "task_options": dict(self.task_options),
            "tokenizer": self.tokenizer,
            "variant": self.variant,
            "tokenizer_options": dict(self.tokenizer_options),
            "tokenizer_revision": self.tokenizer_revision,
            "protocol_id": self.protocol_id,
        }

    @property
    def protocol_id(self) -> str:
        return protocol_id(dict(self.protocol))

    @property
    def config_hash(self) -> str:
        return stable_hash(self.config(), length=12)

    @property
    def run_id(self) -> str:
        return "/".join([safe_component(self.dataset), safe_component(self.task), safe_component(self.variant), self.config_hash])


@dataclass
class RunStore:
    root: Path
    spec: RunSpec
    rank: int = 0
    world_size: int = 1
    _done: set = field(default_factory=set, init=False, repr=False)
    _metrics: dict = field(default_factory=dict, init=False, repr=False)  # key -> recorded names

    @property
    def path(self) -> Path:
        return self.root / self.spec.run_id

    def examples_dir(self, utterance_id: str) -> Path:
        """Where ``--set keep_audio=N`` puts an utterance's audio examples (the reporter reads
        them, with the utterance id from ``example.json``)."""
        return self.path / "examples" / example_folder_name(utterance_id)

    @property
    def records_path(self) -> Path:
        return self.path / f"utterances.rank{self.rank}.jsonl"

    def open(self, provenance: Mapping[str, Any],
             utterance_ids: Iterable[str] | None = None) -> RunStore:
        """Create the folder, write run.json (rank 0) and load the keys already recorded.

        ``utterance_ids`` (the run's selection) are written to ``selection.txt`` so that records
        of utterances outside it are refused on load. Records already there are checked
        (:mod:`tokbench.results.validate`): a damaged one stops the resume with a
        :class:`RecordError` naming file and line, instead of being resumed over.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        if self.rank == 0 and utterance_ids is not None:
            text = "".join(f"{u}\n" for u in utterance_ids).encode()
            atomic_write(self.path / SELECTION_FILE, lambda fh: fh.write(text))
        if self.rank == 0:
            run_json = self.path / "run.json"
            previous = read_run_json(self.path) if run_json.is_file() else {}
            first = {k: previous[k] for k in ("created",) if k in previous}
            history = list(previous.get("history", []))
            history.append({k: provenance.get(k) for k in ("created", "limit", "device", "git_revision")
                            if k in provenance} | {"pid": os.getpid(), "host": socket.gethostname()})
            info = {**previous, **provenance, **first, "history": history, "run_id": self.spec.run_id,
                    "config": self.spec.config(), "protocol": dict(self.spec.protocol),
                    "protocol_id": self.spec.protocol_id, "kind": self.spec.kind,
                    "status": "running", "world_size": self.world_size,
                    # the layout this tokbench writes (a resumed version-1 run is rewritten as 2:
                    # the new records add only this field)
                    "schema_version": SCHEMA_VERSION}
            info["attempts"] = int(previous.get("attempts", 0)) + 1
            atomic_write_json(run_json, info)
        repair_jsonl_tail(self.records_path)
        # Metrics that could not be computed for a passing reason (a model not available yet)
        # are computed again: their records are dropped and the utterances rerun.
        self._forget(lambda r: bool((r.get("extra") or {}).get("transient")))
        self._forget_torn_groups()
        repair_jsonl_tail(self.supplements_path)
        self._reload()
        return self

    def _reload(self) -> None:
        """The recorded keys and, per key, the metric names recorded (supplements included)."""
        self._metrics = {record_key(r): set(r.get("metrics", {})) for r in iter_records(self.path)}
        self._done = set(self._metrics)

    def _forget(self, drop: Callable[[Mapping[str, Any]], bool]) -> int:
        """Rewrite this rank's records file without the records ``drop`` selects (atomic)."""
        path = self.records_path
        if not path.is_file():
            return 0
        kept, dropped = [], 0
        for record in read_jsonl(path):
            if record.get("utterance_id") is not None and drop(record):
                dropped += 1
            else:
                kept.append(record)
        if dropped:
            data = "".join(dumps(r) + "\n" for r in kept).encode()
            atomic_write(path, lambda fh: fh.write(data))
        return dropped

    def _forget_torn_groups(self) -> None:
        """Drop the records of a group the process was killed in the middle of writing."""
        if not self.records_path.is_file():
            return
        seen: dict[str, int] = {}
        size: dict[str, int] = {}
        for r in read_jsonl(self.records_path):
            group = r.get("group")
            if isinstance(group, dict):
                seen[group["id"]] = seen.get(group["id"], 0) + 1
                size[group["id"]] = int(group["size"])
        torn = {g for g in seen if seen[g] < size[g]}
        if torn:
            path, kept = self.records_path, []
            for r in read_jsonl(path):
                if not (isinstance(r.get("group"), dict) and r["group"]["id"] in torn):
                    kept.append(r)
            data = "".join(dumps(r) + "\n" for r in kept).encode()
            atomic_write(path, lambda fh: fh.write(data))

    def append_group(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Append records that stand or fall together, in one write; returns how many were new.
        A group torn by a kill is dropped whole when the run is opened again."""
        fresh = [dict(r) for r in records if record_key(r) not in self._done]
        if not fresh:
            return 0
        ident = {"id": os.urandom(8).hex(), "size": len(fresh)}
        lines = "".join(dumps({**_stamped(r), "group": ident}) + "\n" for r in fresh)
        with self.records_path.open("a", encoding="utf-8") as fh:
            fh.write(lines)
            fh.flush()
            os.fsync(fh.fileno())
        self._done.update(record_key(r) for r in fresh)
        return len(fresh)

    def forget_failed(self) -> int:
        """Drop this rank's records of failed utterances (every metric null: unreadable input,
        a tokenizer error, no output), so that they run again (``--rerun-failed``); returns how
        many. Call after :meth:`open`."""
        def failed(r: Mapping[str, Any]) -> bool:
            values = list((r.get("metrics") or {}).values())
            return bool(values) and all(v is None for v in values)

        n = self._forget(failed)
        self._reload()
        return n

    @property
    def supplements_path(self) -> Path:
        return self.path / f"supplements.rank{self.rank}.jsonl"

    def recorded_metrics(self, utterance_id: str | None, param: Any = None) -> set[str] | None:
        """The metric names recorded for a key (supplements included); None if no record."""
        names = self._metrics.get((utterance_id, dumps(param)))
        return None if names is None else set(names)

    def supplement(self, record: Mapping[str, Any]) -> bool:
        """Add the metrics of ``record`` that its key's record lacks (False: nothing new).

        The key must be recorded already (use :meth:`append` for a new one)."""
        key = record_key(record)
        if key not in self._done:
            raise KeyError(f"no record of {key[0]!r} to supplement; append it instead")
        have = self._metrics.setdefault(key, set())
        # A metric null for a passing reason (its model not available yet) stays lacking, so
        # the next run computes it (as open() does for whole records marked transient).
        transient = set((record.get("extra") or {}).get("transient") or ())
        metrics = {k: v for k, v in record.get("metrics", {}).items()
                   if k not in have and k not in transient}
        if not metrics:
            return False
        reasons = {k: v for k, v in record.get("reasons", {}).items() if k in metrics}
        line = dumps({**_stamped(record), "metrics": metrics, "reasons": reasons}) + "\n"
        with self.supplements_path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        have.update(metrics)
        return True

    def is_done(self, utterance_id: str | None, param: Any = None) -> bool:
        return (utterance_id, dumps(param)) in self._done

    def append(self, record: Mapping[str, Any]) -> bool:
        """Append one record (flushed and fsynced); False if its key was already recorded."""
        key = record_key(record)
        if key in self._done:
            return False
        line = dumps(_stamped(record)) + "\n"
        with self.records_path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        self._done.add(key)
        self._metrics[key] = set(record.get("metrics", {}))
        return True

    def write_corpus(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Replace the corpus-level records (computed over all utterances, by rank 0)."""
        lines = "".join(dumps(_stamped(r)) + "\n" for r in records).encode()
        atomic_write(self.path / CORPUS_FILE, lambda fh: fh.write(lines))

    def finish(
        self, summary: Mapping[str, Any], updates: Mapping[str, Any] | None = None,
        status: str = "complete",
    ) -> None:
        """Write summary.json and mark run.json with ``status`` (rank 0, after all ranks are done)."""
        atomic_write_json(self.path / "summary.json", dict(summary))
        self.set_status(status, **(updates or {}))

    def set_status(self, status: str, **updates: Any) -> None:
        """Mark run.json with ``status`` (rank 0): e.g. "interrupted" after Ctrl-C."""
        info = json.loads((self.path / "run.json").read_text(encoding="utf-8"))
        info.update(updates)
        info["status"] = status
        if status == "complete":
            info.pop("status_reason", None)
        atomic_write_json(self.path / "run.json", info)


def read_run_json(run_dir: str | Path) -> dict[str, Any]:
    """``run.json``; a run marked "running" that no live process holds reads as "interrupted".

    A run written before ``schema_version`` existed reads as version 1; one of a newer version
    than this tokbench raises :class:`~tokbench.results.validate.SchemaVersionError`."""
    from tokbench.results.lock import effective_status

    path = Path(run_dir) / "run.json"
    info: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(info, dict):
        raise RecordError(f"{path}: run.json must hold a JSON object, got {type(info).__name__}")
    check_schema_version(info, str(path))
    info.setdefault("schema_version", 1)
    status = effective_status(Path(run_dir), info)
    if status == "interrupted" and info.get("status") == "running":
        info["status"] = "interrupted"
        info.setdefault("status_reason", "its process stopped before the run finished; run the "
                                         "same command again to resume")
    return info


def iter_records(run_dir: str | Path, include_corpus: bool = False) -> Iterator[dict[str, Any]]:
    """Every record of a run: all rank shards (deduplicated by key, supplements merged in),
    then corpus records.

    Records are checked (:mod:`tokbench.results.validate`); any error raises a
    :class:`RecordError` naming file and line. (``load_results`` instead flags such a run and
    goes on with the others.)"""
    run_dir = Path(run_dir)
    checked = check_run_records(run_dir, include_corpus=include_corpus)
    if not checked.ok:
        more = f" (and {checked.n_errors - len(checked.errors)} more)" \
            if checked.n_errors > len(checked.errors) else ""
        raise RecordError(f"{checked.n_errors} damaged record(s) in {run_dir}: "
                          + "; ".join(checked.errors[:3]) + more
                          + ". Fix or remove those lines (or the run folder) and run again")
    yield from checked.records  # supplements already merged in (validate.check_run_records)


def find_runs(root: str | Path) -> list[Path]:
    """Run folders under ``root`` (any folder holding a run.json), in a stable order."""
    root = Path(root)
    if (root / "run.json").is_file():
        return [root]
    return sorted(p.parent for p in root.rglob("run.json") if "reference" not in p.relative_to(root).parts[:1])
