"""Re-running a finished run: found before any model loads, answered in seconds.

A run's identity (:class:`~tokbench.results.store.RunSpec`) usually needs the loaded model (the
commit a branch resolved to, options such as a centroid file's hash). Most runs' identity is
already known from the preset (``describe(options)``: no weights, or a pinned commit), so
the runner first looks for a *complete* run with that static identity. It is answered from its
folder, without loading the model or starting metric workers, when re-running it would add
nothing:

- its ``run.json`` says complete and no process holds its lock (a live one, or a dead one whose
  stale lock the usual path takes over), and the task options
  outside the identity (``runtime_options``: more seeds, other perturbations) are those of its
  last attempt;
- no record holds a metric left null for a passing reason (``extra.transient``: a model not
  available then), unless the task says that reason still holds (:meth:`Task.still_unavailable`,
  e.g. the ASR model is still neither cached nor downloadable);
- every utterance record has every metric the task's ``metrics`` option selects (a larger
  ``--metrics`` resumes the run to add the rest).

A tokenizer whose loaded identity differs from its static one (a branch resolved to a commit)
never matches here: its static folder does not exist, and the run goes the usual way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from tokbench.results.store import RunSpec, iter_records, read_run_json


def finished(out: Path, spec: RunSpec, task: Any,
             log: Callable[[str], None]) -> tuple[Path, list[dict]] | None:
    """The folder and records of the complete run ``spec`` under ``out`` when running it again
    would add nothing, else None (run it the usual way). ``log``: for the task's notices."""
    path = out / spec.run_id
    if not (path / "run.json").is_file() or not (path / "summary.json").is_file():
        return None
    if any(path.glob(".lock.rank*")):  # a process runs it, or died in it: the usual path decides
        return None
    try:
        info = read_run_json(path)
        if info.get("status") != "complete" or _options_changed(task, info):
            return None
        records = list(iter_records(path))
    except (OSError, ValueError):  # damaged: the usual path reports it properly
        return None
    transient = {m for r in records for m in (r.get("extra") or {}).get("transient") or ()}
    if transient and not task.still_unavailable(transient, log):
        return None
    selected = _selected_metrics(task)
    if selected:
        for r in records:
            if r.get("utterance_id") is None:
                continue
            if set(selected) - set(r.get("metrics") or {}):
                return None
    return path, records


def _options_changed(task: Any, info: dict) -> bool:
    """Whether a task option outside the run's identity differs from the last attempt's (more
    ``seeds`` or ``perturbations`` add work; any change goes the usual way). ``metrics`` is
    compared by what the records hold instead (:func:`finished`)."""
    from tokbench.options import options_dict

    now = json.loads(json.dumps(options_dict(task.options), default=str))
    before = (info.get("task") or {}).get("options") or {}
    return any(now.get(k) != before.get(k) for k in set(now) | set(before) if k != "metrics")


def _selected_metrics(task: Any) -> tuple[str, ...]:
    """The per-utterance metrics the task's ``metrics`` option selects (none without one)."""
    choice = getattr(task.options, "metrics", None)
    if choice is None:
        return ()
    from tokbench.metrics.selection import resolve_metrics

    return tuple(resolve_metrics(choice))


def stored_summary(path: Path) -> pd.DataFrame:
    """The summary written when the run finished (``summary.json``), as ``summarize`` gives it."""
    rows = json.loads((path / "summary.json").read_text(encoding="utf-8")).get("metrics") or []
    df = pd.DataFrame(rows)
    if not df.empty:
        # None params stay None (not NaN), as in a fresh summary
        df["param"] = pd.Series([r.get("param") for r in rows], dtype=object)
        for col in ("mean", "ci_low", "ci_high"):
            df[col] = pd.to_numeric(df[col], errors="coerce")
    return df
