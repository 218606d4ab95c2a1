"""Aggregation: ``summarize`` (mean, bootstrap CI, n of N per run and metric) and ``compare``
(paired bootstrap over shared utterances). Aggregation follows each metric's declaration."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from tokbench.metrics import MetricSpec, get_metric
from tokbench.metrics.bootstrap import (
    BOOTSTRAP_SEED,
    bootstrap_ci,
    bootstrap_ratio_ci,
    paired_bootstrap,
)
from tokbench.registry import UnknownNameError
from tokbench.results.load import RUN_KEYS

PAIRED_BOOTSTRAP_SAMPLES = 10_000  # resamples of a paired comparison (returned by compare)


class MixedProtocolError(ValueError):
    """Figures made under different protocols must not be averaged or compared."""


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
        scale = spec.scale if spec is not None else 1.0
        if total > 0:
            mean = num.sum() / total * scale
            # A CI over fewer than two utterances is undefined, not zero-width.
            lo, hi = bootstrap_ratio_ci(num, den) if len(num) >= 2 else (np.nan, np.nan)
            return {**out, "mean": mean, "ci_low": lo * scale, "ci_high": hi * scale}
        return {**out, "mean": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    values = scored["value"].to_numpy()
    if len(values) == 0:
        return {**out, "mean": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    if aggregation == "value":
        v = float(values[0]) if len(values) == 1 else float(np.mean(values))
        return {**out, "mean": v, "ci_low": np.nan, "ci_high": np.nan}
    lo, hi = bootstrap_ci(values) if len(values) >= 2 else (np.nan, np.nan)
    return {**out, "mean": float(values.mean()), "ci_low": lo, "ci_high": hi}


def common_utterances(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` restricted, per (task, dataset, protocol, metric, param), to the utterances that
    every run of that group scored (a non-null value); corpus-level rows are kept as they are."""
    per_utt = df["utterance_id"].notna()
    keep = ~per_utt
    part = df[per_utt]
    keys = ["task", "dataset", "protocol_id", "metric", "_param"]
    for _, group in part.groupby(keys, dropna=False, sort=False):
        scored = group[group["value"].notna()]
        sets = [set(g["utterance_id"]) for _, g in scored.groupby("run_id")]
        n_runs = group["run_id"].nunique()
        common = set.intersection(*sets) if len(sets) == n_runs and sets else set()
        keep |= df.index.isin(group.index[group["utterance_id"].isin(common)])
    return df[keep]


def summarize(df: pd.DataFrame, metrics: Iterable[str] | None = None,
              common: bool = False) -> pd.DataFrame:
    """Mean, 95% bootstrap CI (fixed seed) and number scored per run, param and metric.

    Aggregation follows each metric's declaration: ``ratio`` metrics (WER, CER) are total errors
    over total reference length, bootstrapped over utterances. Refuses to mix protocol ids.
    ``n`` is the number scored, ``n_total`` the number recorded; a CI over fewer than two
    utterances is NaN (undefined). With ``common=True`` every run of a (task, dataset,
    protocol, metric, param) is averaged over the same utterances: those all of them scored,
    so a run that failed on the hard utterances cannot look better by dropping them.
    """
    columns = [*RUN_KEYS, "param", "metric", "mean", "ci_low", "ci_high", "n", "n_total",
               "direction", "unit"]
    if metrics is not None:
        df = df[df["metric"].isin(list(metrics))]
    if df.empty:
        return pd.DataFrame(columns=columns)
    _check_protocols(df)
    df = df.assign(_param=df["param"].map(lambda p: "" if p is None else repr(p)))
    if common:
        df = common_utterances(df)
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

    ``a`` and ``b`` name values of the ``by`` column (variant by default; ``by="run_id"`` picks
    runs). Returns the mean difference, its 95% bootstrap CI, a two-sided bootstrap p-value, the
    number of pairs ``n`` and how many utterances each side scored (``n_a``, ``n_b``: pairs are
    only the shared ones), and the resamples used (``n_boot``, ``seed``).
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
            runs = sorted(part["run_id"].unique())
            raise ValueError(f"{by}={name!r} has {len(runs)} runs with {metric} for the same "
                             f"utterances ({', '.join(runs)}): compare runs instead, e.g. "
                             f"compare(df, {runs[0]!r}, ..., {metric!r}, by='run_id')")
        pivot[name] = part.set_index("utterance_id")["value"]
    shared = pivot[a].index.intersection(pivot[b].index)
    if len(shared) < 2:
        raise ValueError(f"{a} and {b} both scored {metric} on {len(shared)} utterance(s) "
                         f"(of {len(pivot[a])} and {len(pivot[b])}): a paired comparison needs "
                         "at least 2 shared utterances")
    diffs = (pivot[a][shared] - pivot[b][shared]).to_numpy()
    lo, hi, p = paired_bootstrap(diffs, n_boot=PAIRED_BOOTSTRAP_SAMPLES, seed=BOOTSTRAP_SEED)
    spec = _spec(metric)
    return {"metric": metric, "a": a, "b": b, "n": int(len(shared)), "n_a": int(len(pivot[a])),
            "n_b": int(len(pivot[b])), "mean_diff": float(diffs.mean()),
            "ci_low": lo, "ci_high": hi, "p_value": p, "n_boot": PAIRED_BOOTSTRAP_SAMPLES,
            "seed": BOOTSTRAP_SEED, "direction": spec.direction if spec else "none"}
