"""Charts (matplotlib, PNG and SVG): radar over normalised metrics, and quality against bitrate.

Both read the metric declarations: the radar scales each axis by the metric's declared range
and direction so that outward is always better; a metric without a declared range or direction
is left out rather than guessed. A chart that cannot be drawn raises ``ChartUnavailable`` with
the reason, which ``write_charts`` records in the chart's place instead of failing the report.
Figures are built with ``matplotlib.figure.Figure`` (no pyplot, no GUI backend needed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tokbench.report.tables import KIND_LABELS, Column, ResultTable, Row

CHART_FORMATS = ("png", "svg")
MIN_RADAR_AXES = 3
SCATTER_PREFERRED = ("pesq_wb", "wer", "secs")  # the review's headline columns, when recorded
SCATTER_MAX_PANELS = 3
KIND_COLOURS = {"reference": "#555555", "acoustic": "#1f77b4", "semantic": "#d62728",
                "hybrid": "#2ca02c"}


class ChartUnavailable(Exception):
    """This chart cannot be drawn from these results; the message says why."""


@dataclass
class ChartOutcome:
    table: str  # the table's title
    chart: str  # a key of CHARTS or TASK_CHARTS, e.g. "radar"
    title: str = ""  # what the chart shows, for captions
    files: dict[str, Path] = field(default_factory=dict)  # format -> file written
    message: str | None = None  # why nothing was drawn

    @property
    def ok(self) -> bool:
        return bool(self.files)


def _radar_axes(table: ResultTable) -> list[Column]:
    axes = []
    for col in table.columns:
        spec = col.spec
        if spec is None or spec.lo is None or spec.hi is None or col.direction == "none":
            continue
        if any(col.metric in r.cells and r.cells[col.metric].scored for r in table.rows):
            axes.append(col)
    return axes


def chart_label(row: Row) -> str:
    """A row's name in a legend or annotation: the param is part of it (no param column here)."""
    return row.label if row.param is None else f"{row.label} @ {row.param}"


def _scored(row: Row, metric: str) -> bool:
    return metric in row.cells and row.cells[metric].scored


def radar_figure(table: ResultTable, max_rows: int = 12):
    """One polygon per row over the metrics with a declared range; outward is better."""
    from matplotlib.figure import Figure

    axes = _radar_axes(table)
    if len(axes) < MIN_RADAR_AXES:
        names = ", ".join(c.metric for c in axes) or "none"
        raise ChartUnavailable(
            f"a radar chart needs at least {MIN_RADAR_AXES} scored metrics with a declared range "
            f"and direction; {table.title} has {len(axes)} ({names})")
    rows = [r for r in table.rows if r.supported and any(_scored(r, c.metric) for c in axes)]
    if not rows:
        raise ChartUnavailable(f"no run in {table.title} scored any of {', '.join(c.metric for c in axes)}")
    if len(rows) > max_rows:
        raise ChartUnavailable(
            f"{len(rows)} rows are too many polygons to read; filter to at most {max_rows} "
            "tokenizers (--tokenizer)")
    angles = np.linspace(0, 2 * np.pi, len(axes), endpoint=False)
    fig = Figure(figsize=(7.0, 7.0 + 0.22 * len(rows)), layout="constrained")
    ax = fig.add_subplot(projection="polar")
    ax.set_theta_offset(np.pi / 2)
    ax.set_theta_direction(-1)
    colours = _row_colours(rows)
    for row, colour in zip(rows, colours, strict=True):
        values = []
        for col in axes:
            cell = row.cells.get(col.metric)
            values.append(col.spec.normalise(cell.mean) if cell is not None and cell.scored else np.nan)
        values_arr = np.array(values, dtype=float)
        missing = [c.metric for c, v in zip(axes, values_arr, strict=True) if np.isnan(v)]
        label = chart_label(row) + (f" (missing: {', '.join(missing)})" if missing else "")
        closed = np.append(values_arr, values_arr[0])
        theta = np.append(angles, angles[0])
        style = "--" if row.is_reference else "-"
        ax.plot(theta, closed, style, color=colour, linewidth=1.6, marker="o", markersize=3.5,
                label=label)
        if not missing:
            ax.fill(theta, closed, color=colour, alpha=0.08)
    labels = []
    for col in axes:
        unit = f" {col.unit}" if col.unit else ""
        labels.append(f"{col.metric} {col.arrow}\n[{col.spec.lo:g}, {col.spec.hi:g}]{unit}")
    ax.set_xticks(angles, labels, fontsize=8)
    ax.tick_params(axis="x", pad=10)
    for label, angle in zip(ax.get_xticklabels(), angles, strict=True):
        # Clockwise from the top: labels on the right grow rightwards, on the left leftwards.
        side = math.sin(angle)
        label.set_horizontalalignment("left" if side > 0.1 else "right" if side < -0.1 else "center")
    ax.set_ylim(0, 1)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0], ["", "", "", ""])
    ax.set_title(f"{table.title}\noutward is better; each axis scaled to its declared range",
                 fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), fontsize=8, frameon=False)
    return fig


def _row_colours(rows: Sequence[Row]) -> list[str]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    out, i = [], 0
    for row in rows:
        if row.is_reference:
            out.append("#444444")
        else:
            out.append(cmap(i % 10))
            i += 1
    return out


def bitrate_figure(table: ResultTable, metrics: Sequence[str] | None = None):
    """Quality against bitrate (kbps, log scale): one labelled point per tokenizer variant."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullFormatter

    rated = [r for r in table.rows if r.supported and math.isfinite(r.kbps) and r.kbps > 0]
    if not rated:
        raise ChartUnavailable(f"no run in {table.title} has a known bitrate")
    candidates = [c for c in table.columns if c.spec is not None and c.spec.category == "quality"
                  and c.direction in ("higher", "lower")
                  and any(_scored(r, c.metric) for r in rated)]
    if metrics:
        chosen = [c for m in metrics for c in candidates if c.metric == m]
    else:
        by_name = {c.metric: c for c in candidates}
        chosen = [by_name[m] for m in SCATTER_PREFERRED if m in by_name]
        chosen += [c for c in candidates if c not in chosen]
        chosen = chosen[:SCATTER_MAX_PANELS]
    if not chosen:
        raise ChartUnavailable(
            f"no quality metric with a declared direction was scored in {table.title}")
    lo_kbps, hi_kbps = min(r.kbps for r in rated), max(r.kbps for r in rated)
    fig = Figure(figsize=(4.6 * len(chosen), 4.2), layout="constrained")
    for i, col in enumerate(chosen):
        ax = fig.add_subplot(1, len(chosen), i + 1)
        for row in rated:
            cell = row.cells.get(col.metric)
            if cell is None or not cell.scored:
                continue
            colour = KIND_COLOURS.get(row.kind, "#9467bd")
            yerr = None
            if cell.has_ci:
                yerr = [[max(0.0, cell.mean - cell.ci_low)], [max(0.0, cell.ci_high - cell.mean)]]
            ax.errorbar([row.kbps], [cell.mean], yerr=yerr, fmt="o", color=colour, capsize=2,
                        markersize=5)
            ax.annotate(chart_label(row), (row.kbps, cell.mean), textcoords="offset points",
                        xytext=(4, 4), fontsize=7)
        ax.set_xscale("log")
        # Whole decades as limits, so there are always labelled major ticks (1, 10, 100, ...),
        # and no minor labels (they collide when the points span less than a decade).
        ax.set_xlim(10 ** math.floor(math.log10(lo_kbps / 1.5)), 10 ** math.ceil(math.log10(hi_kbps * 1.5)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.margins(y=0.12)
        ax.set_xlabel("bitrate (kbps, nominal, log scale)")
        unit = f" ({col.unit})" if col.unit else ""
        better = "higher" if col.direction == "higher" else "lower"
        ax.set_ylabel(f"{col.metric}{unit} {col.arrow}  ({better} is better)")
        ax.grid(True, which="both", alpha=0.3)
    kinds = sorted({r.kind for r in rated}, key=lambda k: list(KIND_COLOURS).index(k)
                   if k in KIND_COLOURS else 99)
    handles = [_legend_handle(KIND_COLOURS.get(k, "#9467bd"), KIND_LABELS.get(k, k or "other"))
               for k in kinds]
    fig.legend(handles=handles, loc="outside upper right", fontsize=8, frameon=False,
               ncols=len(handles))
    fig.suptitle(f"quality against bitrate: {table.title}", fontsize=9)
    return fig


def _legend_handle(colour: str, label: str):
    from matplotlib.lines import Line2D

    return Line2D([], [], marker="o", linestyle="", color=colour, label=label)


def save_figure(fig, stem: Path, formats: Sequence[str] = CHART_FORMATS) -> dict[str, Path]:
    """Write ``stem.png`` / ``stem.svg``; SVG ids and metadata fixed so files reproduce."""
    import matplotlib

    stem.parent.mkdir(parents=True, exist_ok=True)
    out = {}
    with matplotlib.rc_context({"svg.hashsalt": "tokbench", "svg.fonttype": "path"}):
        for fmt in formats:
            path = stem.with_suffix(f".{fmt}")
            metadata = {"Date": None} if fmt == "svg" else {"Software": None}
            fig.savefig(path, dpi=150, metadata=metadata)
            out[fmt] = path
    return out


def bpe_reduction_figure(table: ResultTable):
    """The bpe task's figure (length reduction against vocabulary size), by tokbench.report.bpe."""
    from tokbench.report.bpe import reduction_chart, reduction_table

    if table.data is None or reduction_table(table.data).empty:
        raise ChartUnavailable(f"no bpe_reduction figures in {table.title}")
    return reduction_chart(table.data)


def ued_strength_figure(table: ResultTable):
    """UED against perturbation strength, one line per tokenizer (tokbench.report.invariance)."""
    from tokbench.report.invariance import perturbation_tables, strength_chart

    if table.data is None or not perturbation_tables(table.data):
        raise ChartUnavailable(f"no ued figures with a perturbation param in {table.title}")
    return strength_chart(table.data)


# Charts of every table, and charts of one task's main table (by task name: the task defines
# what its figures mean). name -> (caption, function of a ResultTable).
CHARTS = {"radar": ("radar (outward is better)", radar_figure),
          "bitrate": ("quality against bitrate", bitrate_figure)}
TASK_CHARTS = {"bpe": {"bpe_reduction": ("length reduction against vocabulary size",
                                         bpe_reduction_figure)}}


# Charts of by-param tables, keyed by a metric the table holds (its declaration says what the
# param means), so that any task recording the metric gets them.
PARAM_CHARTS = {"ued": {"ued_strength": ("unit edit distance against perturbation strength",
                                         ued_strength_figure)}}


def charts_for(table: ResultTable) -> dict:
    """Main tables get the generic charts and their task's; by-param tables (per codebook, per
    vocabulary size) only the charts of the metrics they hold (``PARAM_CHARTS``): a radar over
    codebooks would compare nothing meaningful."""
    if table.part:
        held = {c.metric for c in table.columns}
        return {name: chart for metric, charts in PARAM_CHARTS.items() if metric in held
                for name, chart in charts.items()}
    return {**CHARTS, **TASK_CHARTS.get(table.task, {})}


def write_charts(tables: Sequence[ResultTable], out_dir: str | Path,
                 formats: Sequence[str] = CHART_FORMATS) -> list[ChartOutcome]:
    """The charts of every table (``charts_for``); a chart that cannot be drawn says why."""
    out_dir = Path(out_dir)
    outcomes = []
    for table in tables:
        for name, (title, make) in charts_for(table).items():
            outcome = ChartOutcome(table.title, name, title)
            try:
                fig = make(table)
                outcome.files = save_figure(fig, out_dir / f"{table.slug}-{name}", formats)
            except ChartUnavailable as exc:
                outcome.message = str(exc)
            except Exception as exc:  # a broken chart must never break the report
                outcome.message = f"could not draw the {name} chart: {type(exc).__name__}: {exc}"
            outcomes.append(outcome)
    return outcomes
