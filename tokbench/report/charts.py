"""Charts (matplotlib; PNG, SVG and PDF): radar, quality against bitrate, and the Pareto view.

All read the metric declarations: the radar scales each axis by the metric's declared range
and direction so that outward is always better; a metric without a declared range or direction
is left out rather than guessed, and the bitrate charts use only quality metrics with a declared
direction. A chart that cannot be drawn raises ``ChartUnavailable`` with the reason, which
``write_charts`` records in the chart's place instead of failing the report.

Colours are per tokenizer family (``Row.family``, from the tokenizer's meta), assigned once per
set of tables (``family_colours``) so that the table, the radar and the curves of one report
agree; the ground truth is always grey. Any kind or family works: nothing here names one.
Figures are built with ``matplotlib.figure.Figure`` (no pyplot, no GUI backend needed) and
written atomically (a killed report never leaves a truncated file).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from tokbench.report.coverage import partial_note
from tokbench.report.swap import write_public
from tokbench.report.tables import KINDS, Column, ResultTable, Row

CHART_FORMATS = ("png", "svg", "pdf")
MIN_RADAR_AXES = 3
RADAR_MAX_ROWS = 5  # ground truth plus the best row of up to four families
# Quality columns drawn against bitrate by default, in this order when recorded (names are
# contract: their meaning is fixed by the declarations); then any other quality metric.
SCATTER_PREFERRED = ("pesq_wb", "utmos", "dnsmos_ovrl", "wer", "stoi", "secs", "spk_sim_wavlm",
                     "secs_target")
SCATTER_MAX_PANELS = 3
PARETO_MAX_METRICS = 4
REFERENCE_COLOUR = "#555555"
# Qualitative palette (tab10 without its grey, then 8 of tab20's light tones): family colours.
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#bcbd22", "#17becf", "#aec7e8", "#ff9896", "#98df8a", "#ffbb78", "#c5b0d5",
           "#c49c94", "#f7b6d2", "#dbdb8d")
LINE_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


class ChartUnavailable(Exception):
    """This chart cannot be drawn from these results; the message says why."""


@dataclass
class ChartOutcome:
    table: str  # the table's title
    chart: str  # a key of CHARTS or a task's, e.g. "radar"; "pareto-<metric>" per metric
    title: str = ""  # what the chart shows, for captions
    files: dict[str, Path] = field(default_factory=dict)  # format -> file written
    message: str | None = None  # why nothing was drawn
    metric: str | None = None  # the metric of a one-metric chart (pareto)

    @property
    def ok(self) -> bool:
        return bool(self.files)


# ----------------------------------------------------------------------------- colours

def _kind_rank(kind: str) -> int:
    return KINDS.index(kind) if kind in KINDS else len(KINDS)


def family_colours(tables_or_rows: Iterable[ResultTable | Row]) -> dict[str, str]:
    """family -> colour, in (kind, family) order over every non-reference row given."""
    families: dict[str, str] = {}
    for item in tables_or_rows:
        for row in (item.rows if isinstance(item, ResultTable) else [item]):
            if not row.is_reference:
                families.setdefault(row.family or row.tokenizer, row.kind)
    ordered = sorted(families, key=lambda f: (_kind_rank(families[f]), f))
    return {f: PALETTE[i % len(PALETTE)] for i, f in enumerate(ordered)}


def row_colour(row: Row, colours: Mapping[str, str]) -> str:
    if row.is_reference:
        return REFERENCE_COLOUR
    return colours.get(row.family or row.tokenizer, "#7f7f7f")


def chart_label(row: Row) -> str:
    """A row's name in a legend or annotation: the param is part of it (no param column here)."""
    return row.label if row.param is None else f"{row.label} @ {row.param}"


def _scored(row: Row, metric: str) -> bool:
    return metric in row.cells and row.cells[metric].scored


# ----------------------------------------------------------------------------- radar

def _radar_axes(table: ResultTable) -> list[Column]:
    axes = []
    for col in table.columns:
        spec = col.spec
        if spec is None or spec.lo is None or spec.hi is None or col.direction == "none":
            continue
        if any(col.metric in r.cells and r.cells[col.metric].scored for r in table.rows):
            axes.append(col)
    return axes


def _radar_score(row: Row, axes: Sequence[Column]) -> float:
    """Mean normalised value over all axes (a missing axis counts 0): for choosing rows."""
    total = 0.0
    for col in axes:
        cell = row.cells.get(col.metric)
        if cell is not None and cell.scored and col.spec is not None:
            total += col.spec.normalise(cell.mean) or 0.0
    return total / len(axes)


def radar_rows(table: ResultTable, rows: Sequence[str] | None = None,
               max_rows: int = RADAR_MAX_ROWS) -> tuple[list[Row], str]:
    """The rows a radar draws and a note on how they were chosen.

    ``rows``: labels or variants to draw, in that order. Default: the ground truth plus the
    best row of each family (by the mean of its normalised axes), best families first, at most
    ``max_rows`` in all.
    """
    axes = _radar_axes(table)
    candidates = [r for r in table.rows if r.supported and any(_scored(r, c.metric) for c in axes)]
    if rows:
        chosen = []
        for name in rows:
            found = [r for r in candidates if name in (r.label, r.variant)]
            if not found:
                names = ", ".join(r.label for r in candidates) or "none"
                raise ChartUnavailable(f"no row {name!r} with radar metrics in {table.title}; "
                                       f"rows: {names}")
            chosen += [r for r in found if r not in chosen]
        if len(chosen) > max_rows:
            raise ChartUnavailable(f"{len(chosen)} rows are too many polygons to read; pick at "
                                   f"most {max_rows}")
        return chosen, f"{len(chosen)} chosen rows"
    reference = [r for r in candidates if r.is_reference][:1]
    best: dict[str, Row] = {}
    for r in candidates:
        if r.is_reference:
            continue
        family = r.family or r.tokenizer
        if family not in best or _radar_score(r, axes) > _radar_score(best[family], axes):
            best[family] = r
    ranked = sorted(best.values(), key=lambda r: -_radar_score(r, axes))
    chosen = reference + ranked[: max(0, max_rows - len(reference))]
    note = ("ground truth and " if reference else "") + "the best row per family"
    if len(ranked) + len(reference) > len(chosen):
        note += f" ({len(ranked) - (len(chosen) - len(reference))} more families not drawn)"
    return chosen, note


def radar_figure(table: ResultTable, rows: Sequence[str] | None = None,
                 max_rows: int = RADAR_MAX_ROWS, colours: Mapping[str, str] | None = None):
    """One polygon per chosen row (``radar_rows``) over the metrics with a declared range;
    outward is better. Partial rows and missing metrics are said in the legend."""
    from matplotlib.figure import Figure

    axes = _radar_axes(table)
    if len(axes) < MIN_RADAR_AXES:
        names = ", ".join(c.metric for c in axes) or "none"
        raise ChartUnavailable(
            f"a radar chart needs at least {MIN_RADAR_AXES} scored metrics with a declared range "
            f"and direction; {table.title} has {len(axes)} ({names})")
    chosen, note = radar_rows(table, rows, max_rows)
    if not chosen:
        raise ChartUnavailable(f"no run in {table.title} scored any of {', '.join(c.metric for c in axes)}")
    colours = colours if colours is not None else family_colours([table])
    angles = np.linspace(0, 2 * np.pi, len(axes), endpoint=False)
    fig = Figure(figsize=(7.0, 6.6 + 0.25 * len(chosen)), layout="constrained")
    ax: Any = fig.add_subplot(projection="polar")  # PolarAxes (typed as plain Axes)
    ax.set_theta_offset(np.pi / 2)
    ax.set_theta_direction(-1)
    for i, row in enumerate(chosen):
        values = []
        for col in axes:
            cell = row.cells.get(col.metric)
            ok = cell is not None and cell.scored and col.spec is not None
            values.append(col.spec.normalise(cell.mean) if ok else np.nan)  # type: ignore[union-attr]
        values_arr = np.array(values, dtype=float)
        missing = [c.metric for c, v in zip(axes, values_arr, strict=True) if np.isnan(v)]
        partial = partial_note(row)
        label = chart_label(row) + partial + (f" (missing: {', '.join(missing)})" if missing else "")
        closed = np.append(values_arr, values_arr[0])
        theta = np.append(angles, angles[0])
        colour = row_colour(row, colours)
        ax.plot(theta, closed, linestyle=LINE_STYLES[i % len(LINE_STYLES)], color=colour,
                linewidth=1.8, marker=MARKERS[i % len(MARKERS)], markersize=4.5, label=label,
                alpha=0.6 if partial else 1.0)
        if not missing and not partial:  # a fill would claim a complete polygon
            ax.fill(theta, closed, color=colour, alpha=0.06)
    labels = []
    for col in axes:
        unit = f" {col.unit}" if col.unit else ""
        assert col.spec is not None
        labels.append(f"{col.metric} {col.arrow}\n[{col.spec.lo:g}, {col.spec.hi:g}]{unit}")
    ax.set_xticks(angles, labels, fontsize=8)
    ax.tick_params(axis="x", pad=10)
    for tick, angle in zip(ax.get_xticklabels(), angles, strict=True):
        # Clockwise from the top: labels on the right grow rightwards, on the left leftwards.
        side = math.sin(angle)
        tick.set_horizontalalignment("left" if side > 0.1 else "right" if side < -0.1 else "center")
    ax.set_ylim(0, 1)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0], ["", "", "", ""])
    fig.suptitle(f"{table.title}\noutward is better; each axis scaled to its declared range; "
                 f"{note}", fontsize=9)
    # Below the plot, never over the title.
    fig.legend(loc="outside lower center", fontsize=8, frameon=False, ncols=1)
    return fig


# ----------------------------------------------------------------------------- bitrate

def _rated(table: ResultTable) -> list[Row]:
    return [r for r in table.rows if r.supported and math.isfinite(r.kbps) and r.kbps > 0
            and not r.is_reference]


def _quality_columns(table: ResultTable, rows: Sequence[Row]) -> list[Column]:
    """Quality metrics with a declared direction that some row scored: preferred ones first."""
    candidates = [c for c in table.columns if c.spec is not None and c.spec.category == "quality"
                  and c.direction in ("higher", "lower")
                  and any(_scored(r, c.metric) for r in rows)]
    by_name = {c.metric: c for c in candidates}
    chosen = [by_name[m] for m in SCATTER_PREFERRED if m in by_name]
    return chosen + [c for c in candidates if c not in chosen]


def _pick_columns(table: ResultTable, rows: Sequence[Row], metrics: Sequence[str] | None,
                  limit: int) -> list[Column]:
    candidates = _quality_columns(table, rows)
    if metrics:
        chosen = [c for m in metrics for c in candidates if c.metric == m]
        if not chosen:
            raise ChartUnavailable(
                f"none of {', '.join(metrics)} is a quality metric with a declared direction "
                f"scored in {table.title}; scored: {', '.join(c.metric for c in candidates) or 'none'}")
        return chosen
    if not candidates:
        raise ChartUnavailable(
            f"no quality metric with a declared direction was scored in {table.title}")
    return candidates[:limit]


def _models(rows: Sequence[Row]) -> dict[str, list[Row]]:
    """Rows grouped by tokenizer (the model; its presets differ in bitrate), kbps ascending."""
    out: dict[str, list[Row]] = {}
    for r in sorted(rows, key=lambda r: (_kind_rank(r.kind), r.family or r.tokenizer, r.tokenizer, r.kbps)):
        out.setdefault(r.tokenizer, []).append(r)
    return out


def _style_of_models(models: Mapping[str, list[Row]]) -> dict[str, tuple[Any, str]]:
    """Per model a (line style, marker): models of one family differ in both."""
    seen: dict[str, int] = {}
    out: dict[str, tuple[Any, str]] = {}
    for name, rows in models.items():
        family = rows[0].family or rows[0].tokenizer
        i = seen.get(family, 0)
        seen[family] = i + 1
        out[name] = (LINE_STYLES[i % len(LINE_STYLES)], MARKERS[i % len(MARKERS)])
    return out


def _log_kbps_axis(ax, rows: Sequence[Row]) -> None:
    from matplotlib.ticker import FuncFormatter, NullFormatter

    lo, hi = min(r.kbps for r in rows), max(r.kbps for r in rows)
    ax.set_xscale("log")
    # Whole decades as limits, so there are always labelled major ticks (1, 10, 100, ...),
    # and no minor labels (they collide when the points span less than a decade).
    ax.set_xlim(10 ** math.floor(math.log10(lo / 1.5)), 10 ** math.ceil(math.log10(hi * 1.5)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("bitrate (kbps, nominal, log scale)")
    ax.grid(True, which="both", alpha=0.3)


def _ylabel(col: Column) -> str:
    unit = f" ({col.unit})" if col.unit else ""
    better = "higher" if col.direction == "higher" else "lower"
    return f"{col.metric}{unit} {col.arrow}  ({better} is better)"


def _draw_curves(ax, table: ResultTable, rows: Sequence[Row], col: Column,
                 colours: Mapping[str, str], annotate: bool = True) -> list:
    """Each model's presets as one line (family colour), CIs as error bars, partial rows as
    hollow markers, the ground truth as a horizontal line. Returns legend handles."""
    from matplotlib.lines import Line2D

    models = _models([r for r in rows if _scored(r, col.metric)])
    styles = _style_of_models(models)
    handles = []
    for name, model_rows in models.items():
        linestyle, marker = styles[name]
        colour = row_colour(model_rows[0], colours)
        xs = [r.kbps for r in model_rows]
        ys = [r.cells[col.metric].mean for r in model_rows]
        ax.plot(xs, ys, linestyle=linestyle, color=colour, linewidth=1.4, alpha=0.9)
        for r, x, y in zip(model_rows, xs, ys, strict=True):
            cell = r.cells[col.metric]
            partial = bool(partial_note(r))
            if cell.has_ci:
                yerr = [[max(0.0, y - cell.ci_low)], [max(0.0, cell.ci_high - y)]]
                ax.errorbar([x], [y], yerr=yerr, fmt="none", ecolor=colour, capsize=2, alpha=0.7)
            ax.plot([x], [y], marker=marker, linestyle="", markersize=6, color=colour,
                    markerfacecolor="white" if partial else colour)
            if annotate:
                ax.annotate(chart_label(r) + (" (partial)" if partial else ""), (x, y),
                            textcoords="offset points", xytext=(4, 4), fontsize=6.5)
        family = model_rows[0].family or name
        text = name if family == name else f"{family}: {name}"
        handles.append(Line2D([], [], color=colour, linestyle=linestyle, marker=marker, label=text))
    for ref in table.rows:
        if ref.is_reference and _scored(ref, col.metric):
            ax.axhline(ref.cells[col.metric].mean, color=REFERENCE_COLOUR, linestyle=(0, (2, 2)),
                       linewidth=1.0)
            handles.append(Line2D([], [], color=REFERENCE_COLOUR, linestyle=(0, (2, 2)),
                                  label=f"ground truth ({chart_label(ref)})"))
            break
    return handles


def _legend_right(fig, handles: list) -> None:
    """Legend outside the axes on the right (constrained layout makes room): never over the
    title or the data."""
    seen, unique = set(), []
    for h in handles:
        if h.get_label() not in seen:
            seen.add(h.get_label())
            unique.append(h)
    fig.legend(handles=unique, loc="outside right upper", fontsize=7.5, frameon=False)


def bitrate_figure(table: ResultTable, metrics: Sequence[str] | None = None,
                   colours: Mapping[str, str] | None = None):
    """Quality against bitrate (kbps, log scale), one panel per metric: one curve per model
    (its presets joined), coloured by family; the ground truth as a horizontal line."""
    from matplotlib.figure import Figure

    rated = _rated(table)
    if not rated:
        raise ChartUnavailable(f"no tokenizer run in {table.title} has a known bitrate")
    chosen = _pick_columns(table, rated, metrics, SCATTER_MAX_PANELS)
    colours = colours if colours is not None else family_colours([table])
    fig = Figure(figsize=(4.4 * len(chosen) + 2.6, 4.4), layout="constrained")
    handles: list = []
    for i, col in enumerate(chosen):
        ax = fig.add_subplot(1, len(chosen), i + 1)
        handles += _draw_curves(ax, table, rated, col, colours)
        _log_kbps_axis(ax, rated)
        ax.margins(y=0.12)
        ax.set_ylabel(_ylabel(col))
    _legend_right(fig, handles)
    fig.suptitle(f"quality against bitrate: {table.title}", fontsize=9)
    return fig


def pareto_front(points: Sequence[tuple[float, float]], higher_is_better: bool) -> list[int]:
    """Indices of the points no other point dominates (no more bits and at least as good,
    better in one), in bitrate order."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0],
                                                      -points[i][1] if higher_is_better else points[i][1]))
    front, best = [], None
    for i in order:
        y = points[i][1]
        if best is None or (y > best if higher_is_better else y < best):
            front.append(i)
            best = y
    return front


def pareto_figure(table: ResultTable, metric: str | None = None,
                  colours: Mapping[str, str] | None = None):
    """One quality metric against bitrate with the Pareto frontier drawn (the variants no other
    beats at the same or a lower bitrate) and each model's presets joined as a line."""
    from matplotlib.figure import Figure

    rated = _rated(table)
    if not rated:
        raise ChartUnavailable(f"no tokenizer run in {table.title} has a known bitrate")
    (col,) = _pick_columns(table, rated, [metric] if metric else None, 1)
    colours = colours if colours is not None else family_colours([table])
    fig = Figure(figsize=(7.6, 4.8), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    handles = _draw_curves(ax, table, rated, col, colours)
    scored = [r for r in rated if _scored(r, col.metric)]
    points = [(r.kbps, r.cells[col.metric].mean) for r in scored]
    front = pareto_front(points, col.direction == "higher")
    if front:
        from matplotlib.lines import Line2D

        xs = [points[i][0] for i in front]
        ys = [points[i][1] for i in front]
        ax.step(xs, ys, where="post", color="black", linewidth=2.2, alpha=0.35, zorder=0)
        ax.plot(xs, ys, linestyle="", marker="o", markersize=11, markerfacecolor="none",
                markeredgecolor="black", alpha=0.6)
        handles.append(Line2D([], [], color="black", alpha=0.35, linewidth=2.2, marker="o",
                              markerfacecolor="none", label=f"Pareto frontier ({len(front)} of {len(points)})"))
    _log_kbps_axis(ax, rated)
    ax.margins(y=0.12)
    ax.set_ylabel(_ylabel(col))
    _legend_right(fig, handles)
    fig.suptitle(f"Pareto view: {col.metric} against bitrate\n{table.title}", fontsize=9)
    return fig


def pareto_metrics(table: ResultTable) -> list[str]:
    """The metrics that get a Pareto chart: scored quality metrics, preferred ones first."""
    return [c.metric for c in _quality_columns(table, _rated(table))][:PARETO_MAX_METRICS]


# ----------------------------------------------------------------------------- files

def save_figure(fig, stem: Path, formats: Sequence[str] = CHART_FORMATS) -> dict[str, Path]:
    """Write ``stem.png`` / ``.svg`` / ``.pdf``, each atomically; SVG ids and metadata fixed so
    files reproduce."""
    import matplotlib

    out = {}
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None},
                "png": {"Software": None}}
    with matplotlib.rc_context({"svg.hashsalt": "tokbench", "svg.fonttype": "path"}):
        for fmt in formats:
            path = stem.with_suffix(f".{fmt}")

            def write(fh: IO[bytes], fmt: str = fmt) -> None:
                fig.savefig(fh, format=fmt, dpi=150, metadata=metadata.get(fmt, {}))

            write_public(path, write)
            out[fmt] = path
    return out


# Charts of every main table. name -> (caption, function of a ResultTable and the colours). A
# task adds its own through its report module (tokbench.report.hooks).
CHARTS = {"radar": ("radar (outward is better)", radar_figure),
          "bitrate": ("quality against bitrate", bitrate_figure)}


def charts_for(table: ResultTable) -> dict:
    """Main tables get the generic charts, a Pareto chart per quality metric and their task's
    (``CHARTS`` of its report module); by-param tables (per codebook, per vocabulary size) only
    the charts their task declares for the metrics they hold (``PARAM_CHARTS``): a radar over
    codebooks would compare nothing meaningful."""
    from tokbench.report.hooks import task_charts, task_param_charts

    if table.part:
        return task_param_charts(table.task, {c.metric for c in table.columns})
    out = dict(CHARTS)
    metrics = pareto_metrics(table)
    if not metrics:
        out["pareto"] = ("Pareto view (quality against bitrate)", pareto_figure)
    for m in metrics:
        out[f"pareto-{m}"] = (f"Pareto view: {m} against bitrate",
                              lambda t, colours=None, m=m: pareto_figure(t, m, colours=colours))
    return {**out, **task_charts(table.task)}


def write_charts(tables: Sequence[ResultTable], out_dir: str | Path,
                 formats: Sequence[str] = CHART_FORMATS,
                 colours: Mapping[str, str] | None = None) -> list[ChartOutcome]:
    """The charts of every table (``charts_for``); a chart that cannot be drawn says why.
    One family-colour map for all (``family_colours`` of the tables unless given)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir} is a file; pass a folder for the charts")
    colours = colours if colours is not None else family_colours(tables)
    outcomes = []
    for table in tables:
        for name, (title, make) in charts_for(table).items():
            metric = name.split("-", 1)[1] if name.startswith("pareto-") else None
            outcome = ChartOutcome(table.title, name, title, metric=metric)
            try:
                fig = make(table, colours=colours)
                outcome.files = save_figure(fig, out_dir / f"{table.slug}-{name}", formats)
            except ChartUnavailable as exc:
                outcome.message = str(exc)
            except Exception as exc:  # a broken chart must never break the report
                outcome.message = f"could not draw the {name} chart: {type(exc).__name__}: {exc}"
            outcomes.append(outcome)
    return outcomes
