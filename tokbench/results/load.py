"""The notebook API: ``load_results`` (long DataFrame), ``summarize`` and ``compare``.

Everything the reporter shows is built from these, so a table in a notebook and a row on the
leaderboard are the same numbers.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tokbench.results.store import find_runs, read_run_json
from tokbench.results.validate import (
    CheckedRecords,
    SchemaVersionError,
    check_run_records,
    truncation_reason,
)

COLUMNS = ["run_id", "tokenizer", "variant", "kind", "task", "dataset", "utterance_id", "metric",
           "value", "param", "protocol_id", "reason", "numerator", "denominator", "run_path",
           "dataset_revision", "n_selected"]
RUN_KEYS = ["run_id", "tokenizer", "variant", "kind", "task", "dataset", "protocol_id"]


def _run_keys(info: dict, run_dir: Path) -> dict:
    """The RUN_KEYS columns of a run, from its run.json."""
    config = info.get("config", {})
    return {
        "run_id": info.get("run_id", run_dir.name),
        "tokenizer": config.get("tokenizer"),
        "variant": config.get("variant"),
        "kind": info.get("kind", ""),
        "task": config.get("task"),
        "dataset": config.get("dataset"),
        "protocol_id": info.get("protocol_id"),
    }


STATUS_ORDER = ("complete", "running", "incomplete", "unsupported", "unknown", "invalid")


@dataclass
class FoundRun:
    """One run under a results root, after validation and de-duplication."""

    path: Path
    info: dict
    checked: CheckedRecords
    status: str
    status_reason: str | None = None
    copies: list[str] = field(default_factory=list)  # other paths holding the same run

    @property
    def run_id(self) -> str:
        return str(self.info.get("run_id", self.path.name))


_MEMO: dict[Path, tuple[tuple, FoundRun]] = {}  # load_results and runs_table read a run once


def _signature(run_dir: Path) -> tuple:
    out = []
    for p in sorted(run_dir.iterdir()):
        if p.is_file() and p.suffix in (".json", ".jsonl", ".txt"):
            st = p.stat()
            out.append((p.name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _examine(run_dir: Path) -> FoundRun:
    """A run checked, from memory when none of its files changed since the last look."""
    key = run_dir.resolve()
    sig = _signature(run_dir)
    hit = _MEMO.get(key)
    if hit is not None and hit[0] == sig:
        found = hit[1]
        return FoundRun(run_dir, found.info, found.checked, found.status, found.status_reason)
    found = _examine_files(run_dir)
    if len(_MEMO) > 4096:
        _MEMO.clear()
    _MEMO[key] = (sig, found)
    return found


def _examine_files(run_dir: Path) -> FoundRun:
    try:
        info = read_run_json(run_dir)
        # a run (or a record in it) of a newer schema is left out with the upgrade hint: the
        # rest of the results tree still loads
        checked = check_run_records(run_dir)
    except SchemaVersionError as exc:
        return FoundRun(run_dir, {"run_id": str(run_dir)}, CheckedRecords(), "invalid", str(exc))
    except (ValueError, OSError) as exc:
        return FoundRun(run_dir, {"run_id": str(run_dir)}, CheckedRecords(), "invalid",
                        f"{run_dir / 'run.json'} is unreadable ({exc})")
    status = str(info.get("status") or "unknown")
    reason = info.get("status_reason")
    if not checked.ok:
        more = f" (and {checked.n_errors - len(checked.errors)} more)" \
            if checked.n_errors > len(checked.errors) else ""
        return FoundRun(run_dir, info, checked, "invalid",
                        f"{checked.n_errors} damaged record(s), left out of the tables: "
                        + "; ".join(checked.errors[:3]) + more)
    if status == "complete":
        lost = truncation_reason(run_dir, checked)
        if lost:
            status, reason = "incomplete", lost
    return FoundRun(run_dir, info, checked, status, reason)


def _preference(run: FoundRun) -> tuple:
    rank = STATUS_ORDER.index(run.status) if run.status in STATUS_ORDER else len(STATUS_ORDER)
    return (rank, -len(run.checked.records), len(run.path.parts), str(run.path))


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def scan_runs(path: str | Path = "results",
              log: Callable[[str], None] | None = None) -> tuple[list[FoundRun], list[str]]:
    """Every run under ``path``, checked, each identity once; and notes on what was set aside.

    A run found at several paths (same ``run_id``, which hashes its whole identity: e.g.
    ``results/demo`` inside ``results/``) is one run: the copy used is the one with the best
    status (complete first), then the most valid records, then the shallowest path; the others
    are named in ``copies`` and in the notes, never pooled.
    """
    by_id: dict[str, list[FoundRun]] = {}
    for run_dir in find_runs(path):
        found = _examine(run_dir)
        by_id.setdefault(found.run_id, []).append(found)
    runs, notes = [], []
    for run_id, copies in by_id.items():
        copies.sort(key=_preference)
        best = copies[0]
        if len(copies) > 1:
            best.copies = [str(f.path) for f in copies[1:]]
            others = "; ".join(f"{f.path} ({f.status}, {len(f.checked.records)} records)"
                               for f in copies[1:])
            notes.append(f"run {run_id} is stored at {len(copies)} paths: used {best.path} "
                         f"({best.status}, {len(best.checked.records)} records); ignored {others}. "
                         "Copies of one run are never pooled; the used copy has the best status, "
                         "then the most records, then the shortest path")
        if best.status == "invalid":
            notes.append(f"run {run_id} at {best.path} is left out: {best.status_reason}")
        elif best.status == "incomplete":
            notes.append(f"run {run_id} at {best.path} is incomplete: {best.status_reason}")
        runs.append(best)
    runs.sort(key=lambda r: str(r.path))
    for note in notes:
        if log is not None:
            log(note)
    return runs, notes


def _n_dataset(info: dict) -> int | None:
    """Utterances of the whole dataset (a --limit run records the full size beside its own)."""
    ds = info.get("dataset") or {}
    n = ds.get("n_utterances_full", ds.get("n_utterances"))
    return int(n) if isinstance(n, int) else None


def _n_selected(info: dict) -> int | None:
    """Utterances the run was asked to score."""
    n = ((info.get("config") or {}).get("selection") or {}).get("n_utterances")
    if n is None:
        n = (info.get("dataset") or {}).get("n_utterances")
    return int(n) if isinstance(n, int) else None


def _rows_of_run(run: FoundRun) -> Iterable[dict]:
    info = run.info
    base = {**_run_keys(info, run.path), "run_path": str(run.path),
            "dataset_revision": (info.get("config") or {}).get("dataset_revision"),
            "n_selected": _n_selected(info)}
    for record in run.checked.records:
        ratios = (record.get("extra") or {}).get("ratio", {})
        reasons = record.get("reasons") or {}
        for metric, value in (record.get("metrics") or {}).items():
            num, den = ratios.get(metric, (None, None))
            yield {**base, "utterance_id": record.get("utterance_id"), "metric": metric,
                   "value": np.nan if value is None else float(value),
                   "param": record.get("param"), "reason": reasons.get(metric),
                   "numerator": np.nan if num is None else float(num),
                   "denominator": np.nan if den is None else float(den)}


def load_results(path: str | Path = "results",
                 log: Callable[[str], None] | None = _stderr) -> pd.DataFrame:
    """All records under ``path`` (a results root or one run folder) as a long DataFrame.

    One row per (run, utterance, param, metric); ``value`` is NaN where the metric was not
    computed, and ``reason`` says why. Corpus-level figures have ``utterance_id`` None.

    Records are validated (:mod:`tokbench.results.validate`): a run with damaged records is left
    out (``runs_table`` lists it as ``invalid`` with the errors) and the rest loads. A run stored
    at several paths is loaded once. What was set aside and why is printed to ``log`` and kept
    in ``df.attrs["notes"]``.
    """
    if not Path(path).exists():
        raise FileNotFoundError(f"results folder {path} does not exist; run `tokbench run ...` "
                                "first, or pass the folder that holds the runs")
    runs, notes = scan_runs(path, log)
    rows: list[dict] = []
    for run in runs:
        if run.status != "invalid":
            rows.extend(_rows_of_run(run))
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["value"] = df["value"].astype(float)
    # Keep params as recorded (None stays None, 512 stays 512): pandas would turn a column of
    # None and ints into floats with NaN.
    df["param"] = pd.Series([r["param"] for r in rows], index=df.index, dtype=object)
    df.attrs["notes"] = notes
    return df


RUNS_COLUMNS = ["run_id", "tokenizer", "variant", "kind", "task", "dataset", "protocol_id",
                "status", "status_reason", "bitrate_nominal", "token_rate", "frame_rate",
                "n_codebooks", "sample_rate", "model_repo", "model_revision", "model_resolved",
                "dataset_revision", "task_version", "task_options", "tokenizer_options",
                "tokbench_version", "schema_version", "git_revision", "created", "finished", "device", "packages",
                "protocol", "run_path", "family", "n_dataset", "n_selected", "copies"]


def _run_row(run: FoundRun) -> dict:
    info, run_dir = run.info, run.path
    config = info.get("config", {})
    meta = info.get("tokenizer_meta") or {}
    source = meta.get("source") or {}
    dataset = info.get("dataset") or {}
    return {
        **_run_keys(info, run_dir),
        "status": run.status,
        "status_reason": run.status_reason,
        # Unsupported runs never load the model, so they carry no tokenizer meta: rates are NaN.
        "bitrate_nominal": float(meta.get("bitrate_nominal", np.nan)),
        "token_rate": float(meta.get("token_rate", np.nan)),
        "frame_rate": float(meta.get("frame_rate", np.nan)),
        "n_codebooks": meta.get("n_codebooks"),
        "sample_rate": meta.get("sample_rate"),
        "model_repo": source.get("repo_id") or source.get("url"),
        "model_revision": source.get("revision"),
        "model_resolved": source.get("resolved") or config.get("tokenizer_revision"),
        "dataset_revision": dataset.get("revision", config.get("dataset_revision")),
        "task_version": config.get("task_version"),
        "task_options": config.get("task_options") or {},
        "tokenizer_options": config.get("tokenizer_options") or {},
        "tokbench_version": info.get("tokbench_version"),
        "schema_version": info.get("schema_version", 1),
        "git_revision": info.get("git_revision"),
        "created": info.get("created"),
        "finished": info.get("finished"),
        "device": info.get("device"),
        "packages": info.get("packages") or {},
        "protocol": info.get("protocol") or {},
        "run_path": str(run_dir),
        "family": meta.get("family"),
        "n_dataset": _n_dataset(info),
        "n_selected": _n_selected(info),
        "copies": list(run.copies),
    }


def runs_table(path: str | Path = "results") -> pd.DataFrame:
    """One row per run under ``path`` with its provenance (from ``run.json``).

    Unlike ``load_results`` this lists runs that have no records, e.g. ``status == "unsupported"``
    (with ``status_reason``), so a report can say "not supported" instead of dropping them, and
    runs left out of ``load_results``: ``invalid`` (damaged records, the errors in
    ``status_reason``) and ``incomplete`` (records lost after the run finished). A run stored at
    several paths is one row; ``copies`` names the other paths. ``n_dataset`` is the size of the
    whole dataset, ``n_selected`` the utterances the run was asked to score (``--limit``).
    ``bitrate_nominal`` (bit/s) and ``token_rate`` come from the tokenizer's declared meta.
    """
    runs, _ = scan_runs(path)
    rows = [_run_row(run) for run in runs]
    return pd.DataFrame(rows, columns=RUNS_COLUMNS)


def filter_results(
    df: pd.DataFrame,
    task: str | None = None,
    dataset: str | None = None,
    tokenizers: Iterable[str] | None = None,
    metrics: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Rows of ``df`` (``load_results`` or ``runs_table``) matching every filter given.

    ``tokenizers`` match either the model-level name (``tokenizer``) or the preset (``variant``);
    ``metrics`` applies only to frames with a ``metric`` column.
    """
    mask = pd.Series(True, index=df.index)
    if task is not None:
        mask &= df["task"] == task
    if dataset is not None:
        # a folder dataset is "<name>@<fingerprint>": its name alone selects every version
        mask &= (df["dataset"] == dataset) | (df["dataset"].astype(str).str.split("@").str[0] == dataset)
    if tokenizers:
        names = list(tokenizers)
        mask &= df["tokenizer"].isin(names) | df["variant"].isin(names)
    if metrics and "metric" in df.columns:
        mask &= df["metric"].isin(list(metrics))
    return df[mask]
