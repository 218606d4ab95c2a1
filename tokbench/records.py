"""Records: the unit of every result file (contract: docs/results.md).

A record is ``{schema_version, utterance_id, param, metrics: {name: number or null}, reasons:
{name: text}, extra: {...}}``; corpus-level records have no utterance id. Tasks and metrics build
records here; only the runner's store writes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tokbench.io.files import dumps, finite_or_none

# The layout of run.json and of every record. Bump it when a reader of the old layout would
# misread the new one; a reader refuses files of a newer version (tokbench.results.validate).
# Version 1: runs written before the field existed (files without it read as version 1).
SCHEMA_VERSION = 2


def make_record(
    utterance_id: str | None,
    metrics: Mapping[str, float | None],
    reasons: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
    param: Any = None,
) -> dict[str, Any]:
    """A JSON-safe record: non-finite values become null, and every null carries a reason."""
    reasons = dict(reasons or {})
    clean: dict[str, float | None] = {}
    for name, value in metrics.items():
        v = finite_or_none(value)
        if v is None:
            if value is not None and name not in reasons:
                reasons[name] = f"value was not finite ({value})"
            reasons.setdefault(name, "not computed")
        clean[name] = v
    for name in reasons:
        if name not in clean:
            clean[name] = None
    record = {"schema_version": SCHEMA_VERSION, "utterance_id": utterance_id, "param": param, "metrics": clean, "reasons": reasons,
              "extra": dict(extra or {})}
    dumps(record)  # fail here, loudly, if anything is not JSON (e.g. a NaN inside extra)
    return record


def record_key(record: Mapping[str, Any]) -> tuple[str | None, str]:
    return record.get("utterance_id"), dumps(record.get("param"))


def merge_supplements(record: dict[str, Any], supplements: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``record`` with the metrics of ``supplements`` it lacks (first supplement wins); their
    ``extra`` entries are added where the record has none (``ratio`` dicts merge)."""
    supplements = list(supplements)
    if not supplements:
        return record
    out = {**record, "metrics": dict(record.get("metrics", {})),
           "reasons": dict(record.get("reasons", {})), "extra": dict(record.get("extra", {}))}
    for sup in supplements:
        for name, value in sup.get("metrics", {}).items():
            if name in out["metrics"]:
                continue
            out["metrics"][name] = value
            if name in sup.get("reasons", {}):
                out["reasons"][name] = sup["reasons"][name]
        for k, v in sup.get("extra", {}).items():
            if k == "ratio" and isinstance(v, dict):
                out["extra"]["ratio"] = {**v, **out["extra"].get("ratio", {})}
            else:
                out["extra"].setdefault(k, v)
    return out
