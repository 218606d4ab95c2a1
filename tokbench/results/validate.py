"""Reading a run's records strictly: every line is checked, and every error names file and line.

A record must be a JSON object with a string (or null: a run-level record) ``utterance_id``
that belongs to the run's utterance selection, a ``metrics`` object of numbers or nulls inside
each metric's valid range (:func:`tokbench.metrics.valid_range`), a ``reasons`` object of
strings, and nothing non-finite anywhere (``NaN``/``Infinity`` are not JSON). Two records with
the same key (utterance, param) must be identical. A run with any error is *invalid*: it is left
out of tables with the errors as its reason, and the rest of the results tree loads.

Every record and ``run.json`` carry ``schema_version`` (:data:`tokbench.records.SCHEMA_VERSION`);
a file without it was written before the field existed and reads as version 1. A file of a newer
version than this tokbench reads raises :class:`SchemaVersionError` (naming the file and saying to
upgrade), never a guess at what its fields mean.

A torn last line (a crash mid-write) is skipped; in a run marked complete it means records
were lost after the fact, so the run is marked incomplete. So is a complete run whose records
are fewer than its summary counted (a file truncated at a line boundary).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokbench.io.files import dumps

RECORDS_GLOB = "utterances.rank*.jsonl"
# metrics added to recorded utterances by a later run with more --metrics (RunStore.supplement)
SUPPLEMENTS_GLOB = "supplements.rank*.jsonl"
CORPUS_FILE = "corpus.jsonl"
SELECTION_FILE = "selection.txt"  # the run's utterance ids, one per line (written at open)
_TOL = 1e-5  # relative slack at the limits of a valid range
MAX_ERRORS = 20  # errors kept per run (the count is always exact)


class RecordError(ValueError):
    """A records file holds a record that cannot be used; the message names file and line."""


class SchemaVersionError(RecordError):
    """A run or record written by a newer tokbench than this one (its layout may mean other
    things than this reader knows); the message names the file and says to upgrade."""


def schema_version(data: Mapping[str, Any]) -> int:
    """The schema version of a parsed ``run.json`` or record: 1 when it has none (written
    before the field existed)."""
    return data.get("schema_version", 1)  # type: ignore[no-any-return]


def check_schema_version(data: Mapping[str, Any], where: str) -> None:
    """Raise :class:`SchemaVersionError` when ``data`` is of a newer schema than this reader, or
    :class:`RecordError` when its ``schema_version`` is not a positive integer."""
    from tokbench.records import SCHEMA_VERSION

    version = schema_version(data)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RecordError(f"{where}: schema_version must be a positive integer, got {version!r}")
    if version > SCHEMA_VERSION:
        from tokbench import __version__

        raise SchemaVersionError(
            f"{where} was written by a newer tokbench (schema version {version}; tokbench "
            f"{__version__} reads versions up to {SCHEMA_VERSION}): upgrade tokbench "
            "(pip install -U tokbench) to read or resume it")


@dataclass
class CheckedRecords:
    records: list[dict[str, Any]] = field(default_factory=list)  # valid, one per key
    errors: list[str] = field(default_factory=list)  # "file:line: what is wrong"
    n_errors: int = 0
    torn: list[str] = field(default_factory=list)  # files whose last line was cut off

    def error(self, message: str) -> None:
        self.n_errors += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(message)

    @property
    def ok(self) -> bool:
        return self.n_errors == 0


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name} (not JSON)")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def record_problems(record: Any, known_ids: set[str] | None, corpus: bool) -> list[str]:
    """What is wrong with one parsed record (empty: nothing)."""
    from tokbench.metrics import valid_range

    if not isinstance(record, dict):
        return [f"a record is a JSON object, got {type(record).__name__}"]
    problems = []
    uid = record.get("utterance_id")
    # corpus.jsonl holds what is computed over all utterances once they are done; it may be per
    # utterance too (a probe's seed averages), so both files follow one rule.
    if uid is None:
        pass  # a run-level record in a shard (e.g. a probe's per-seed training record)
    elif not isinstance(uid, str) or not uid:
        problems.append(f"utterance_id must be a non-empty string or null, got {uid!r}")
    elif known_ids is not None and uid not in known_ids:
        problems.append(f"utterance {uid!r} is not in the run's dataset selection")
    metrics = record.get("metrics")
    if not isinstance(metrics, dict):
        return [*problems, f"'metrics' must be an object, got {type(metrics).__name__}"]
    for name, value in metrics.items():
        if value is None:
            continue
        if not _is_number(value):
            problems.append(f"{name} = {value!r} is a {type(value).__name__}, not a number")
            continue
        if not math.isfinite(value):
            problems.append(f"{name} = {value} is not finite")
            continue
        lo, hi = valid_range(name)
        # float rounding (a cosine of 1.0000001) is not damage
        if (lo is not None and value < lo - _TOL * max(1.0, abs(lo))) \
                or (hi is not None and value > hi + _TOL * max(1.0, abs(hi))):
            problems.append(f"{name} = {value:g} is outside its valid range "
                            f"[{'-inf' if lo is None else f'{lo:g}'}, "
                            f"{'inf' if hi is None else f'{hi:g}'}]")
    reasons = record.get("reasons", {})
    if not isinstance(reasons, dict) or not all(isinstance(v, str) for v in reasons.values()):
        problems.append("'reasons' must be an object of strings")
    extra = record.get("extra", {})
    if not isinstance(extra, dict):
        problems.append("'extra' must be an object")
    else:
        ratio = extra.get("ratio", {})
        if not isinstance(ratio, dict):
            problems.append("extra.ratio must be an object")
        else:
            for name, pair in ratio.items():
                if not (isinstance(pair, list) and len(pair) == 2 and all(_is_number(x) for x in pair)
                        and pair[0] >= 0 and pair[1] >= 0):
                    problems.append(f"extra.ratio.{name} must be [numerator, denominator] >= 0, "
                                    f"got {pair!r}")
    return problems


def _key(record: Mapping[str, Any]) -> tuple[Any, str]:
    return record.get("utterance_id"), dumps(record.get("param"))


def read_selection(run_dir: Path) -> set[str] | None:
    """The utterance ids the run was asked to score, or None when the run did not record them."""
    p = run_dir / SELECTION_FILE
    if not p.is_file():
        return None
    return {line for line in p.read_text(encoding="utf-8").splitlines() if line}


def check_run_records(run_dir: str | Path, include_corpus: bool = True) -> CheckedRecords:
    """Every record of a run (all rank shards, then corpus records), each checked."""
    run_dir = Path(run_dir)
    known = read_selection(run_dir)
    out = CheckedRecords()
    seen: dict[tuple[Any, str], tuple[str, str]] = {}  # key -> (canonical record, "file:line")
    files = sorted(run_dir.glob(RECORDS_GLOB))
    if include_corpus and (run_dir / CORPUS_FILE).is_file():
        files.append(run_dir / CORPUS_FILE)
    for path in files:
        corpus = path.name == CORPUS_FILE
        data = path.read_bytes()
        lines = data.split(b"\n")
        for i, raw in enumerate(lines):
            if not raw.strip():
                continue
            where = f"{path}:{i + 1}"
            try:
                record = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
            except (ValueError, UnicodeDecodeError) as exc:
                if i == len(lines) - 1:  # no newline after it: torn by a crash mid-write
                    out.torn.append(str(path))
                    continue
                out.error(f"{where}: not a valid JSON record ({exc})")
                continue
            if isinstance(record, dict):
                # a newer layout is not damage: stop with the upgrade hint (a malformed version
                # is damage like any other field)
                try:
                    check_schema_version(record, where)
                except SchemaVersionError:
                    raise
                except RecordError as exc:
                    out.error(str(exc))
                    continue
            problems = record_problems(record, known, corpus)
            if problems:
                out.error(f"{where}: {'; '.join(problems)}")
                continue
            if corpus:  # corpus records are rewritten whole, and several may share a key
                out.records.append(record)
                continue
            key = _key(record)
            canonical = dumps(record)
            if key in seen:
                if seen[key][0] != canonical:
                    out.error(f"{where}: conflicts with the record of the same utterance and param "
                              f"at {seen[key][1]}")
                continue
            seen[key] = (canonical, where)
            out.records.append(record)
    _merge_supplements(run_dir, out)
    return out


def _merge_supplements(run_dir: Path, out: CheckedRecords) -> None:
    """Merge each utterance's supplements (metrics added by a later run) into its record."""
    from tokbench.records import merge_supplements, record_key

    supplements: dict[tuple, list[dict[str, Any]]] = {}
    for shard in sorted(run_dir.glob(SUPPLEMENTS_GLOB)):
        for raw in shard.read_bytes().split(b"\n"):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
            except (ValueError, UnicodeDecodeError):
                continue  # a torn supplement is a metric not added yet: the next run adds it
            if isinstance(record, dict):
                supplements.setdefault(record_key(record), []).append(record)
    if supplements:
        out.records = [merge_supplements(r, supplements.get(record_key(r), ()))
                       if r.get("utterance_id") is not None else r for r in out.records]


def truncation_reason(run_dir: Path, checked: CheckedRecords) -> str | None:
    """Why a run marked complete has lost records since, or None."""
    if checked.torn:
        return (f"records file {checked.torn[0]} ends in a torn line: records were lost after "
                "the run finished; rerun the same command to recompute them")
    summary = run_dir / "summary.json"
    if not summary.is_file():
        return None
    try:
        rows = json.loads(summary.read_text(encoding="utf-8")).get("metrics") or []
    except (ValueError, OSError, AttributeError):
        return None
    counted: dict[tuple[str, str], int] = {}
    for r in checked.records:
        for name in r.get("metrics") or {}:
            k = (name, dumps(r.get("param")))
            counted[k] = counted.get(k, 0) + 1
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("n_total"), int):
            continue
        k = (str(row.get("metric")), dumps(row.get("param")))
        if k in counted and counted[k] < row["n_total"]:
            return (f"{row['metric']} has {counted[k]} records but the run's summary counted "
                    f"{row['n_total']}: a records file was truncated; rerun to recompute")
    return None
