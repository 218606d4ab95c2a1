"""The notebook API: ``load_results`` (long DataFrame), ``summarize`` and ``compare``.

Everything the reporter shows is built from these, so a table in a notebook and a row on the
leaderboard are the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from tokbench.results.store import find_runs, iter_records, read_run_json

COLUMNS = ["run_id", "tokenizer", "variant", "kind", "task", "dataset", "utterance_id", "metric",
           "value", "param", "protocol_id", "reason", "numerator", "denominator", "run_path"]
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


def _rows_of_run(run_dir: Path) -> Iterable[dict]:
    base = {**_run_keys(read_run_json(run_dir), run_dir), "run_path": str(run_dir)}
    for record in iter_records(run_dir, include_corpus=True):
        ratios = (record.get("extra") or {}).get("ratio", {})
        reasons = record.get("reasons") or {}
        for metric, value in (record.get("metrics") or {}).items():
            num, den = ratios.get(metric, (None, None))
            yield {**base, "utterance_id": record.get("utterance_id"), "metric": metric,
                   "value": np.nan if value is None else float(value),
                   "param": record.get("param"), "reason": reasons.get(metric),
                   "numerator": np.nan if num is None else float(num),
                   "denominator": np.nan if den is None else float(den)}


def load_results(path: str | Path = "results") -> pd.DataFrame:
    """All records under ``path`` (a results root or one run folder) as a long DataFrame.

    One row per (run, utterance, param, metric); ``value`` is NaN where the metric was not
    computed, and ``reason`` says why. Corpus-level figures have ``utterance_id`` None.
    """
    if not Path(path).exists():
        raise FileNotFoundError(f"results folder {path} does not exist; run `tokbench run ...` "
                                "first, or pass the folder that holds the runs")
    rows: list[dict] = []
    for run_dir in find_runs(path):
        rows.extend(_rows_of_run(run_dir))
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["value"] = df["value"].astype(float)
    # Keep params as recorded (None stays None, 512 stays 512): pandas would turn a column of
    # None and ints into floats with NaN.
    df["param"] = pd.Series([r["param"] for r in rows], index=df.index, dtype=object)
    return df


RUNS_COLUMNS = ["run_id", "tokenizer", "variant", "kind", "task", "dataset", "protocol_id",
                "status", "status_reason", "bitrate_nominal", "token_rate", "frame_rate",
                "n_codebooks", "sample_rate", "model_repo", "model_revision", "model_resolved",
                "dataset_revision", "task_version", "task_options", "tokenizer_options",
                "tokbench_version", "git_revision", "created", "finished", "device", "packages",
                "protocol", "run_path", "family"]


def _run_row(run_dir: Path) -> dict:
    info = read_run_json(run_dir)
    config = info.get("config", {})
    meta = info.get("tokenizer_meta") or {}
    source = meta.get("source") or {}
    dataset = info.get("dataset") or {}
    return {
        **_run_keys(info, run_dir),
        "status": info.get("status", "unknown"),
        "status_reason": info.get("status_reason"),
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
        "git_revision": info.get("git_revision"),
        "created": info.get("created"),
        "finished": info.get("finished"),
        "device": info.get("device"),
        "packages": info.get("packages") or {},
        "protocol": info.get("protocol") or {},
        "run_path": str(run_dir),
        "family": meta.get("family"),
    }


def runs_table(path: str | Path = "results") -> pd.DataFrame:
    """One row per run under ``path`` with its provenance (from ``run.json``).

    Unlike ``load_results`` this lists runs that have no records, e.g. ``status == "unsupported"``
    (with ``status_reason``), so a report can say "not supported" instead of dropping them.
    ``bitrate_nominal`` (bit/s) and ``token_rate`` come from the tokenizer's declared meta.
    """
    rows = [_run_row(run_dir) for run_dir in find_runs(path)]
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
        mask &= df["dataset"] == dataset
    if tokenizers:
        names = list(tokenizers)
        mask &= df["tokenizer"].isin(names) | df["variant"].isin(names)
    if metrics and "metric" in df.columns:
        mask &= df["metric"].isin(list(metrics))
    return df[mask]
