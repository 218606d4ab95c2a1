"""The reporter: tables, charts and the static leaderboard, all built from the results store.

Everything here reads ``tokbench.load_results`` / ``tokbench.runs_table`` and the metric
declarations; nothing is guessed from a metric's name. In a notebook::

    from tokbench.report import report_tables, render, radar_figure
    tables = report_tables("results", task="recon")
    print(render(tables, "md"))
    radar_figure(tables[0])       # ground truth + the best row per family
    pareto_figure(tables[0])      # quality against bitrate, frontier drawn
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tokbench.report.charts import (
    ChartOutcome,
    ChartUnavailable,
    bitrate_figure,
    family_colours,
    pareto_figure,
    radar_figure,
    save_figure,
    write_charts,
)
from tokbench.report.leaderboard import SiteError, build_site
from tokbench.report.published import ReferenceError, load_references
from tokbench.report.render import FORMATS, print_tables, render
from tokbench.report.tables import Cell, Column, ResultTable, Row, build_tables


def report_tables(
    path: str | Path = "results",
    task: str | None = None,
    dataset: str | None = None,
    tokenizers: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
) -> list[ResultTable]:
    """Load the results under ``path``, apply the filters and build one table per protocol."""
    from tokbench.results import filter_results, load_results, runs_table

    df = filter_results(load_results(path), task, dataset, tokenizers, metrics)
    runs = filter_results(runs_table(path), task, dataset, tokenizers)
    return build_tables(df, runs, metrics=metrics)


__all__ = [
    "FORMATS", "Cell", "ChartOutcome", "ChartUnavailable", "Column", "ReferenceError",
    "ResultTable", "Row", "SiteError", "bitrate_figure", "build_site", "build_tables",
    "family_colours", "load_references", "pareto_figure", "print_tables", "radar_figure", "render",
    "report_tables", "save_figure", "write_charts",
]
