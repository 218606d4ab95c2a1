"""Report pieces of the bpe task: the reduction-vs-vocabulary chart and the tables.

The report finds this module through the task registry (``tokbench.report.hooks``): ``CHARTS``
adds the reduction chart to the charts of every bpe main table.

Everything takes the long DataFrame of :func:`tokbench.load_results` and works with whatever it
holds: tokenizers without bpe results are left out of the chart and the reduction table, and the
token-statistics table also shows tokenizers whose statistics come from other tasks (recon).

- :func:`reduction_chart`: length reduction against vocabulary size (log x), one line per
  tokenizer starting at its base vocabulary, deduplication as a separate marker (the figure of
  Guo et al. 2025, "Recent Advances in Discrete Speech Tokens");
- :func:`reduction_table`: one row per (run, vocabulary size);
- :func:`stats_table`: token statistics per (tokenizer, dataset, codebook);
- :func:`write_bpe_report`: all of the above written to a folder.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tokbench.report.charts import ChartUnavailable
from tokbench.report.plain import check_format, write_table
from tokbench.report.tables import ResultTable

STAT_COLUMNS = {"token_entropy": "entropy (bit)", "token_cond_entropy": "cond. entropy (bit)",
                "codebook_utilisation": "utilisation", "token_perplexity": "perplexity"}
BPE_COLUMNS = {"bpe_vocab_size": "learned vocab", "bpe_reduction": "reduction",
               "bpe_tokens_per_s": "tokens/s", "bpe_lossless": "lossless"}
RUN_COLUMNS = ["tokenizer", "variant", "kind", "dataset"]


def _run_info(run_path: Any) -> dict[str, Any]:
    """Stream and base vocabulary of a bpe run, from its run.json (empty if unreadable)."""
    try:
        info = json.loads((Path(run_path) / "run.json").read_text(encoding="utf-8"))
    except (OSError, TypeError, ValueError):
        return {}
    options = (info.get("task") or {}).get("options") or info.get("config", {}).get("task_options", {})
    sizes = (info.get("tokenizer_meta") or {}).get("codebook_sizes") or []
    codebooks = str(options.get("codebooks", "first"))
    if not sizes:
        return {"codebooks": codebooks}
    if codebooks == "all":
        base = sum(sizes)
    else:
        q = 0 if codebooks == "first" else int(codebooks)
        base = sizes[q] if q < len(sizes) else None
    return {"codebooks": codebooks, "base_vocab": base}


def _corpus(df: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    return df[df["metric"].isin(metrics) & df["utterance_id"].isna()]


def reduction_table(df: pd.DataFrame) -> pd.DataFrame:
    """BPE results per run and target vocabulary size (ascending), with the deduplication ratio.

    Columns: tokenizer, variant, kind, dataset, codebooks, base vocab, vocab size, learned vocab,
    x base (vocab size / base), reduction, tokens/s, lossless, dedup reduction, run_id.
    """
    columns = [*RUN_COLUMNS, "codebooks", "base vocab", "vocab size", *BPE_COLUMNS.values(),
               "x base", "dedup reduction", "run_id"]
    sub = _corpus(df, list(BPE_COLUMNS))
    if sub.empty:
        return pd.DataFrame(columns=columns)
    dedup = _corpus(df, ["dedup_reduction"]).groupby("run_id")["value"].first()
    rows = []
    for (run_id, param), group in sub.groupby(["run_id", "param"], sort=False):
        first = group.iloc[0]
        info = _run_info(first["run_path"])
        values = dict(zip(group["metric"], group["value"], strict=True))
        base = info.get("base_vocab")
        row = {c: first[c] for c in RUN_COLUMNS}
        row.update({"codebooks": info.get("codebooks", ""), "base vocab": base,
                    "vocab size": int(param), "run_id": run_id,
                    "x base": (int(param) / base) if base else math.nan,
                    "dedup reduction": dedup.get(run_id, math.nan)})
        for metric, label in BPE_COLUMNS.items():
            row[label] = values.get(metric, math.nan)
        rows.append(row)
    out = pd.DataFrame(rows)[columns]
    return out.sort_values(["variant", "dataset", "run_id", "vocab size"]).reset_index(drop=True)


def _labels(table: pd.DataFrame) -> dict[str, str]:
    """A legend label per run: the variant, plus what tells apart runs of the same variant."""
    runs = table.drop_duplicates("run_id").set_index("run_id")
    labels = {}
    for run_id, row in runs.iterrows():
        label = row["variant"]
        same = runs[runs["variant"] == row["variant"]]
        if same["dataset"].nunique() > 1:
            label += f" ({row['dataset']})"
        if row["codebooks"] not in ("", "first"):
            label += f" [codebooks={row['codebooks']}]"
        labels[run_id] = label
    seen: dict[str, int] = {}
    for run_id, label in labels.items():
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1 or list(labels.values()).count(label) > 1:
            labels[run_id] = f"{label} {run_id.rsplit('/', 1)[-1][:6]}"
    return labels


def reduction_chart(df: pd.DataFrame, ax: Any = None, x: str = "learned"):
    """Length reduction (original / BPE tokens, held-out part) against vocabulary size.

    One line per bpe run, starting at its base vocabulary (reduction 1); log x axis. ``x`` is
    ``"learned"`` (the vocabulary BPE actually learned; smaller than the target when no pair was
    frequent enough) or ``"target"``. Deduplication is drawn as an open diamond at the base
    vocabulary, in the line's colour. Returns the matplotlib Figure.
    """
    from matplotlib.figure import Figure  # no pyplot: no global state, any backend

    if x not in ("learned", "target"):
        raise ValueError(f"x must be 'learned' or 'target', got {x!r}")
    table = reduction_table(df)
    if ax is None:
        fig = Figure(figsize=(7.0, 4.5), dpi=120)
        ax = fig.subplots()
    else:
        fig = ax.figure
    if table.empty:
        ax.text(0.5, 0.5, "no bpe results", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    labels = _labels(table)
    for run_id, group in table.groupby("run_id", sort=False):
        group = group.dropna(subset=["reduction"])
        if group.empty:
            continue
        xs = group["learned vocab"].where(group["learned vocab"].notna(), group["vocab size"])
        xs = group["vocab size"] if x == "target" else xs
        (line,) = ax.plot(xs, group["reduction"], marker="o", markersize=4, label=labels[run_id])
        dedup, base = group["dedup reduction"].iloc[0], group["base vocab"].iloc[0]
        if dedup == dedup and base == base and base is not None:
            ax.plot([base], [dedup], marker="D", markersize=6, linestyle="none",
                    markerfacecolor="none", markeredgecolor=line.get_color())
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xscale("log", base=2)  # sweeps double the vocabulary: one tick per step
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("vocabulary size" + (" (learned)" if x == "learned" else " (target)"))
    ax.set_ylabel("length reduction (original / BPE tokens)")
    ax.set_title("Acoustic BPE on held-out tokens (◇: deduplication)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def stats_table(df: pd.DataFrame) -> pd.DataFrame:
    """Token statistics per (tokenizer variant, dataset, codebook), from any task that records
    them; ``bitrate_entropy`` is per run (all codebooks). Rows with identical statistics (the
    same tokens measured by recon and by bpe) appear once."""
    columns = [*RUN_COLUMNS, "codebook", *STAT_COLUMNS.values(), "bitrate_entropy (bit/s)", "task"]
    sub = _corpus(df, list(STAT_COLUMNS))
    if sub.empty:
        return pd.DataFrame(columns=columns)
    bitrate = _corpus(df, ["bitrate_entropy"]).groupby("run_id")["value"].first()
    rows = []
    for (run_id, param), group in sub.groupby(["run_id", "param"], sort=False):
        first = group.iloc[0]
        values = dict(zip(group["metric"], group["value"], strict=True))
        row = {c: first[c] for c in RUN_COLUMNS}
        row.update({"codebook": int(param), "task": first["task"],
                    "bitrate_entropy (bit/s)": bitrate.get(run_id, math.nan)})
        for metric, label in STAT_COLUMNS.items():
            row[label] = values.get(metric, math.nan)
        rows.append(row)
    out = pd.DataFrame(rows)[columns].sort_values(["variant", "dataset", "codebook", "task"])
    same = ["variant", "dataset", "codebook", *STAT_COLUMNS.values()]
    out = out.drop_duplicates(same, keep="first")
    return out.reset_index(drop=True)


def write_bpe_report(df: pd.DataFrame, out_dir: str | Path, fmt: str = "md") -> list[Path]:
    """Write the chart (PNG and SVG) and both tables (``md``, ``csv`` or ``latex``) to
    ``out_dir``; returns the paths written. The hook for ``tokbench report --task bpe``."""
    check_format(fmt)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    from tokbench.report.charts import save_figure

    written += save_figure(reduction_chart(df), out / "bpe_reduction", ("png", "svg")).values()
    for name, table in (("bpe_reduction", reduction_table(df).drop(columns=["run_id"])),
                        ("token_stats", stats_table(df))):
        written.append(write_table(table, out / name, fmt))
    return written


def bpe_reduction_figure(table: ResultTable, colours: Mapping[str, str] | None = None) -> Any:
    """The chart of the bpe main table (``CHARTS``)."""
    if table.data is None or reduction_table(table.data).empty:
        raise ChartUnavailable(f"no bpe_reduction figures in {table.title}")
    return reduction_chart(table.data)


# The report hooks (tokbench.report.hooks): charts of this task's main table, by name:
# (caption, function of a ResultTable and the family colours).
CHARTS = {"bpe_reduction": ("length reduction against vocabulary size", bpe_reduction_figure)}
