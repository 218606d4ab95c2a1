"""The notebook API: ``load_results`` (long DataFrame), ``summarize`` and ``compare``.

Everything the reporter shows is built from these, so a table in a notebook and a row on the
leaderboard are the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from tokbench.metrics import MetricSpec, get_metric
from tokbench.registry import UnknownNameError
from tokbench.stats import bootstrap_ci, bootstrap_ratio_ci, paired_bootstrap
from tokbench.store import find_runs, iter_records, read_run_json

COLUMNS = ["run_id", "tokenizer", "variant", "kind", "task", "dataset", "utterance_id", "metric",
           "value", "param", "protocol_id", "reason", "numerator", "denominator", "run_path"]
RUN_KEYS = ["run_id", "tokenizer", "variant", "kind", "task", "dataset", "protocol_id"]


class MixedProtocolError(ValueError):
    """Figures made under different protocols must not be averaged or compared."""


def _rows_of_run(run_dir: Path) -> Iterable[dict]:
    info = read_run_json(run_dir)
    config = info.get("config", {})
    base = {
        "run_id": info.get("run_id", run_dir.name),
        "tokenizer": config.get("tokenizer"),
        "variant": config.get("variant"),
        "kind": info.get("kind", ""),
        "task": config.get("task"),
        "dataset": config.get("dataset"),
        "protocol_id": info.get("protocol_id"),
        "run_path": str(run_dir),
    }
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
    rows: list[dict] = []
    for run_dir in find_runs(path):
        rows.extend(_rows_of_run(run_dir))
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["value"] = df["value"].astype(float)
    # Keep params as recorded (None stays None, 512 stays 512): pandas would turn a column of
    # None and ints into floats with NaN.
    df["param"] = pd.Series([r["param"] for r in rows], index=df.index, dtype=object)
    return df


def _spec(metric: str) -> MetricSpec | None:
    try:
        return get_metric(metric)
    except UnknownNameError:
        return None


def _check_protocols(df: pd.DataFrame) -> None:
    for (task, dataset), group in df.groupby(["task", "dataset"], dropna=False):
        ids = sorted(group["protocol_id"].dropna().unique())
        if len(ids) > 1:
            raise MixedProtocolError(
                f"{task} on {dataset} has results under {len(ids)} protocols ({', '.join(ids)}); "
                "select one first, e.g. df[df.protocol_id == '...']"
            )


def _aggregate(group: pd.DataFrame, spec: MetricSpec | None) -> dict:
    scored = group[group["value"].notna()]
    aggregation = spec.aggregation if spec else "mean"
    out = {"n": int(len(scored)), "n_total": int(len(group))}
    if aggregation == "ratio" and scored["denominator"].notna().all() and len(scored):
        num, den = scored["numerator"].to_numpy(), scored["denominator"].to_numpy()
        total = den.sum()
        if total > 0:
            mean = num.sum() / total * spec.scale
            lo, hi = bootstrap_ratio_ci(num, den)
            return {**out, "mean": mean, "ci_low": lo * spec.scale, "ci_high": hi * spec.scale}
        return {**out, "mean": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    values = scored["value"].to_numpy()
    if len(values) == 0:
        return {**out, "mean": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    if aggregation == "value":
        v = float(values[0]) if len(values) == 1 else float(np.mean(values))
        return {**out, "mean": v, "ci_low": np.nan, "ci_high": np.nan}
    lo, hi = bootstrap_ci(values)
    return {**out, "mean": float(values.mean()), "ci_low": lo, "ci_high": hi}


def summarize(df: pd.DataFrame, metrics: Iterable[str] | None = None) -> pd.DataFrame:
    """Mean, 95% bootstrap CI (fixed seed) and number scored per run, param and metric.

    Aggregation follows each metric's declaration: ``ratio`` metrics (WER, CER) are total errors
    over total reference length, bootstrapped over utterances. Refuses to mix protocol ids.
    """
    columns = [*RUN_KEYS, "param", "metric", "mean", "ci_low", "ci_high", "n", "n_total",
               "direction", "unit"]
    if metrics is not None:
        df = df[df["metric"].isin(list(metrics))]
    if df.empty:
        return pd.DataFrame(columns=columns)
    _check_protocols(df)
    df = df.assign(_param=df["param"].map(lambda p: "" if p is None else repr(p)))
    rows = []
    for keys, group in df.groupby([*RUN_KEYS, "_param", "metric"], dropna=False, sort=False):
        spec = _spec(keys[-1])
        row = dict(zip([*RUN_KEYS, "_param", "metric"], keys, strict=True))
        row["param"] = group["param"].iloc[0]
        row.update(_aggregate(group, spec))
        row["direction"] = spec.direction if spec else "none"
        row["unit"] = spec.unit if spec else ""
        rows.append(row)
    out = pd.DataFrame(rows)[columns].reset_index(drop=True)
    out["param"] = pd.Series([r["param"] for r in rows], dtype=object)
    return out


def summary_records(summary: pd.DataFrame) -> list[dict]:
    """Rows of a summary for JSON: NaN (no CI, nothing scored) becomes None."""
    rows = []
    for row in summary.to_dict(orient="records"):
        rows.append({k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()})
    return rows


def compare(df: pd.DataFrame, a: str, b: str, metric: str, by: str = "variant") -> dict:
    """Paired difference ``a - b`` of ``metric`` over the utterances both scored.

    ``a`` and ``b`` name values of the ``by`` column (variant by default). Returns the mean
    difference, its 95% bootstrap CI, a two-sided bootstrap p-value and the number of pairs.
    """
    sub = df[(df["metric"] == metric) & df["utterance_id"].notna() & df["value"].notna()]
    _check_protocols(sub[sub[by].isin([a, b])])
    pivot = {}
    for name in (a, b):
        part = sub[sub[by] == name]
        if part.empty:
            raise ValueError(f"no {metric} values for {by}={name!r}")
        pivot[name] = part.groupby("utterance_id")["value"].mean()
    shared = pivot[a].index.intersection(pivot[b].index)
    diffs = (pivot[a][shared] - pivot[b][shared]).to_numpy()
    lo, hi, p = paired_bootstrap(diffs)
    spec = _spec(metric)
    return {"metric": metric, "a": a, "b": b, "n": int(len(shared)), "mean_diff": float(diffs.mean()),
            "ci_low": lo, "ci_high": hi, "p_value": p,
            "direction": spec.direction if spec else "none"}
