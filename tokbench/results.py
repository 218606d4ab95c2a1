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
                "protocol", "run_path"]


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
    if aggregation == "ratio" and len(scored):
        if scored["denominator"].isna().any():
            # A mean of per-utterance values would be a different definition under this name.
            raise ValueError(f"{group['metric'].iloc[0]} in {group['run_id'].iloc[0]}: records lack "
                             "the numerator/denominator (extra.ratio) its corpus ratio needs")
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
        setups = part[["task", "dataset"]].drop_duplicates()
        params = part["param"].map(repr).unique()
        if len(setups) > 1 or len(params) > 1:
            raise ValueError(f"{by}={name!r} has {metric} from several tasks, datasets or params: "
                             "filter the DataFrame to one before comparing")
        if part["utterance_id"].duplicated().any():
            raise ValueError(f"{by}={name!r} has several runs with {metric} for the same "
                             "utterances: select one run_id before comparing")
        pivot[name] = part.set_index("utterance_id")["value"]
    shared = pivot[a].index.intersection(pivot[b].index)
    diffs = (pivot[a][shared] - pivot[b][shared]).to_numpy()
    lo, hi, p = paired_bootstrap(diffs)
    spec = _spec(metric)
    return {"metric": metric, "a": a, "b": b, "n": int(len(shared)), "mean_diff": float(diffs.mean()),
            "ci_low": lo, "ci_high": hi, "p_value": p,
            "direction": spec.direction if spec else "none"}
