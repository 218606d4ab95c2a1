"""Readable row labels: runs of one preset in several configurations are told apart by the
option that differs (``mulaw (bits=4)``), not by a hash of the configuration.

The options compared are the run's recorded configuration (``runs_table``: task options,
tokenizer options, tokenizer revision, task version, dataset revision); only keys whose values
differ among the runs of one variant are named. The config hash is the last resort, for runs
whose recorded options are the same (which two distinct run ids can only be if the hash covers
something else).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

MAX_LABEL_OPTIONS = 3  # more differing options than this: the rest are summarised as "+N"


class _Labelled(Protocol):
    run_id: str
    variant: str
    label: str


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def run_options(info: Mapping[str, Any]) -> dict[str, str]:
    """A run's configuration as flat ``key -> text`` (from a ``runs_table`` row)."""
    out: dict[str, str] = {}
    for group in ("task_options", "tokenizer_options"):
        for key, value in (info.get(group) or {}).items():
            out.setdefault(str(key), _text(value))
    for key, name in (("model_resolved", "revision"), ("task_version", "task version"),
                      ("dataset_revision", "dataset revision")):
        if info.get(key) not in (None, ""):
            out[name] = _text(info[key])
    return out


def differing_options(configs: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Keys whose value is not the same in every configuration (a missing key counts)."""
    keys = sorted({k for c in configs.values() for k in c})
    return [k for k in keys if len({c.get(k) for c in configs.values()}) > 1]


def unique_labels(rows: Iterable[_Labelled], meta: Mapping[str, Mapping[str, Any]]) -> None:
    """Set ``row.label``: the variant, plus ``(key=value, ...)`` where runs of it differ."""
    rows = list(rows)
    by_variant: dict[str, set[str]] = {}
    for r in rows:
        by_variant.setdefault(r.variant, set()).add(r.run_id)
    suffix: dict[str, str] = {}
    for run_ids in by_variant.values():
        if len(run_ids) < 2:
            continue
        configs = {rid: run_options(meta.get(rid, {})) for rid in run_ids}
        keys = differing_options(configs)
        for rid in run_ids:
            parts = [f"{k}={configs[rid][k]}" if k in configs[rid] else f"no {k}"
                     for k in keys[:MAX_LABEL_OPTIONS]]
            if len(keys) > MAX_LABEL_OPTIONS:
                parts.append(f"+{len(keys) - MAX_LABEL_OPTIONS}")
            suffix[rid] = ", ".join(parts) or rid.rsplit("/", 1)[-1][:6]
        if len({suffix[rid] for rid in run_ids}) < len(run_ids):  # e.g. both cut at "+N"
            for rid in run_ids:
                suffix[rid] += f" {rid.rsplit('/', 1)[-1][:6]}"
    for r in rows:
        r.label = f"{r.variant} ({suffix[r.run_id]})" if r.run_id in suffix else r.variant
