"""Report pieces of token-stability results: a table per perturbation and UED against strength.

Works on the long DataFrame of :func:`tokbench.load_results`, on whatever records carry the
metrics ``ued``, ``ued_dedup`` and ``code_change_rate`` with a ``param`` of the form
``"<perturbation>[=<level><unit>]/<stream>"`` (``"noise-white=10dB/cb0"``, ``"gain=-6dB/frames"``,
``"reencode/cb0"``; :func:`parse_param`), as the invariance task records them.

- :func:`perturbation_tables`: per perturbation, one row per (run, level, stream) with each
  metric's mean, 95% bootstrap CI and the number scored;
- :func:`strength_chart`: UED against perturbation strength, one panel per perturbation, one
  line per tokenizer run (one stream, codebook 0 by default);
- :func:`write_invariance_report`: both written to a folder.

The report finds this module through the task registry (``tokbench.report.hooks``):
``PARAM_CHARTS`` adds the strength chart to the invariance tables by param that hold ``ued``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from tokbench.report.charts import ChartUnavailable
from tokbench.report.plain import to_markdown
from tokbench.report.tables import ResultTable
from tokbench.results import summarize

METRICS = ("ued", "ued_dedup", "code_change_rate")
RUN_COLUMNS = ["tokenizer", "variant", "kind", "dataset"]
_PARAM = re.compile(r"^(?P<kind>[A-Za-z][A-Za-z-]*)(?:=(?P<level>[+-]?\d+(?:\.\d+)?)"
                    r"(?P<unit>[A-Za-z]*))?/(?P<stream>cb\d+|frames)$")


class Param(NamedTuple):
    perturbation: str  # e.g. "noise-white"
    level: float | None  # None for "reencode"
    unit: str
    stream: str  # "cb0", "cb1", ... or "frames"


def parse_param(param: Any) -> Param | None:
    """``"noise-white=10dB/cb0"`` -> Param("noise-white", 10.0, "dB", "cb0"); None if the param
    is not of this form."""
    m = _PARAM.match(str(param)) if isinstance(param, str) else None
    if not m:
        return None
    level = m.group("level")
    return Param(m.group("kind"), float(level) if level is not None else None, m.group("unit"),
                 m.group("stream"))


def _summary(df: pd.DataFrame) -> pd.DataFrame:
    sub = df[df["metric"].isin(METRICS) & df["utterance_id"].notna()]
    sub = sub[sub["param"].map(lambda p: parse_param(p) is not None)]
    if sub.empty:
        return pd.DataFrame()
    out = summarize(sub)
    parsed = out["param"].map(parse_param)
    return out.assign(perturbation=parsed.map(lambda p: p.perturbation),
                      level=parsed.map(lambda p: p.level), unit=parsed.map(lambda p: p.unit),
                      stream=parsed.map(lambda p: p.stream))


def _fmt_cell(mean: float, lo: float, hi: float, n: int, n_total: int) -> str:
    if not math.isfinite(mean):
        return f"- (0/{n_total})"
    ci = f" [{lo:.3f}, {hi:.3f}]" if math.isfinite(lo) and math.isfinite(hi) else ""
    return f"{mean:.3f}{ci} ({n}/{n_total})"


def perturbation_tables(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per perturbation kind (in first-seen order): a table with one row per (run, level,
    stream), levels ascending, and one column per metric: mean [95% CI] (n/N)."""
    summary = _summary(df)
    if summary.empty:
        return {}
    tables: dict[str, pd.DataFrame] = {}
    for kind, part in summary.groupby("perturbation", sort=False):
        rows = []
        for (run_id, _param), group in part.groupby(["run_id", "param"], sort=False):
            first = group.iloc[0]
            row: dict[str, Any] = {c: first[c] for c in RUN_COLUMNS if c in first}
            level = first["level"]
            row.update({"level": "" if level is None or level != level else f"{level:g}{first['unit']}",
                        "stream": first["stream"], "_level": -math.inf if level is None else level})
            for metric in METRICS:
                m = group[group["metric"] == metric]
                row[metric] = ("" if m.empty else _fmt_cell(
                    float(m["mean"].iloc[0]), float(m["ci_low"].iloc[0]),
                    float(m["ci_high"].iloc[0]), int(m["n"].iloc[0]), int(m["n_total"].iloc[0])))
            row["run_id"] = run_id
            rows.append(row)
        table = pd.DataFrame(rows)
        table["_stream"] = table["stream"].map(lambda s: (1, 0) if s == "frames" else (0, int(s[2:])))
        table = table.sort_values(["variant", "run_id", "_stream", "_level"])
        tables[str(kind)] = table.drop(columns=["_level", "_stream"]).reset_index(drop=True)
    return tables


def _run_labels(summary: pd.DataFrame) -> dict[str, str]:
    runs = summary.drop_duplicates("run_id")
    labels: dict[str, str] = {}
    for row in runs.itertuples(index=False):
        label = str(row.variant)
        if (runs["variant"] == row.variant).sum() > 1:
            label += f" ({row.dataset}, {str(row.run_id).rsplit('/', 1)[-1][:6]})"
        labels[str(row.run_id)] = label
    return labels


def strength_chart(df: pd.DataFrame, metric: str = "ued", stream: str = "cb0"):
    """``metric`` against perturbation strength: one panel per perturbation with a level, one line
    per run (``stream`` = "cb0", "cb1", ... or "frames"); the re-encoding floor, where recorded,
    is a dotted line in the run's colour. Returns the matplotlib Figure."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    summary = _summary(df)
    if not summary.empty:
        summary = summary[(summary["metric"] == metric) & (summary["stream"] == stream)]
    kinds = [] if summary.empty else [k for k in dict.fromkeys(summary["perturbation"])
                                      if summary[summary["perturbation"] == k]["level"].notna().any()]
    if not kinds:
        fig = Figure(figsize=(6.0, 3.5), dpi=120)
        ax = fig.subplots()
        ax.text(0.5, 0.5, f"no {metric} results for stream {stream}", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    cols = min(4, len(kinds))
    rows = math.ceil(len(kinds) / cols)
    fig = Figure(figsize=(3.2 * cols, 2.8 * rows + 0.6), dpi=120, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    labels = _run_labels(summary)
    colours: dict[str, Any] = {}
    floor = summary[summary["perturbation"] == "reencode"].set_index("run_id")["mean"]
    for ax, kind in zip(axes, kinds, strict=False):
        part = summary[summary["perturbation"] == kind]
        for run_id, group in part.groupby("run_id", sort=False):
            group = group.sort_values("level")
            kw = {"color": colours[run_id]} if run_id in colours else {}
            (line,) = ax.plot(group["level"], group["mean"], marker="o", markersize=4,
                              label=labels[run_id], **kw)
            colours.setdefault(run_id, line.get_color())
            lo, hi = group["ci_low"].astype(float), group["ci_high"].astype(float)
            ax.fill_between(group["level"].astype(float), lo, hi, color=line.get_color(), alpha=0.15)
            if run_id in floor.index and math.isfinite(float(floor[run_id])):
                ax.axhline(float(floor[run_id]), color=line.get_color(), linestyle=":", lw=1)
        unit = part["unit"].iloc[0]
        ax.set_title(kind, fontsize=9)
        if kind.startswith("noise"):  # a lower SNR is a stronger perturbation: it goes right
            ax.invert_xaxis()
            ax.set_xlabel(f"SNR ({unit}), stronger to the right", fontsize=8)
        else:
            ax.set_xlabel(f"level ({unit})" if unit else "level", fontsize=8)
        top = float(pd.concat([part["mean"], part["ci_high"]]).astype(float).max())
        ax.set_ylim(0.0, max(1.05, top * 1.05 if math.isfinite(top) else 1.05))
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.set_ylabel(f"{metric} ({stream})", fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in axes[len(kinds):]:
        ax.set_axis_off()
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", fontsize=7, ncols=min(4, len(names)),
               frameon=False)
    fig.suptitle(f"{metric} against perturbation strength ({stream}; dotted: re-encoding floor)",
                 fontsize=9)
    return fig


def write_invariance_report(df: pd.DataFrame, out_dir: str | Path, fmt: str = "md",
                            stream: str = "cb0") -> list[Path]:
    """The UED chart (PNG and SVG) and one table per perturbation (``md`` or ``csv``) in
    ``out_dir``; returns the paths written."""
    if fmt not in ("md", "csv"):
        raise ValueError(f"fmt must be md or csv, got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    fig = strength_chart(df, stream=stream)
    for suffix in ("png", "svg"):
        path = out / f"invariance_ued.{suffix}"
        fig.savefig(path)
        written.append(path)
    for kind, table in perturbation_tables(df).items():
        path = out / f"invariance_{re.sub(r'[^A-Za-z0-9_-]+', '_', kind)}.{fmt}"
        table = table.drop(columns=["run_id"])
        if fmt == "md":
            path.write_text(f"### {kind}\n\n" + to_markdown(table), encoding="utf-8")
        else:
            table.to_csv(path, index=False)
        written.append(path)
    return written


def ued_strength_figure(table: ResultTable, colours: Mapping[str, str] | None = None) -> Any:
    """UED against perturbation strength, one line per tokenizer (``PARAM_CHARTS``)."""
    if table.data is None or not perturbation_tables(table.data):
        raise ChartUnavailable(f"no ued figures with a perturbation param in {table.title}")
    return strength_chart(table.data)


# The report hooks (tokbench.report.hooks): charts of this task's tables by param, keyed by a
# metric the table holds: {metric: {name: (caption, function of a ResultTable and the colours)}}.
PARAM_CHARTS = {"ued": {"ued_strength": ("unit edit distance against perturbation strength",
                                         ued_strength_figure)}}
