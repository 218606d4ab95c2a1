"""``tokbench leaderboard``: a static, self-contained leaderboard site.

The site is one ``index.html`` with its CSS, JavaScript and data inlined (``file://`` pages may
not fetch), plus ``charts/`` (SVG, PNG and PDF) and ``audio/`` (copied examples) beside it, so
the folder works from ``file://`` and from any static host; nothing is loaded from the network.
The whole site is built in a temporary folder beside ``--out`` and swapped in at the end
(``tokbench.report.swap``): a killed build leaves the previous site as it was.

What the page shows by default: the recon table of the dataset with the most runs; a compact
set of columns (``PAPER_METRICS``, the figures papers report, where recorded and declared) with
the rest one click away; columns nobody computed last; per-family colours shared with the
charts; coverage (n of N) and partial badges; published figures beside ours where a published
row matches (``tokbench.report.reproduced``); and audio players per utterance.

Safety: the data goes into a ``<script type="application/json">`` block with ``<``, ``>`` and
``&`` written as JSON unicode escapes, so no string from results can close the block or open a
tag; the page's script builds every element with ``textContent`` (never ``innerHTML``), so a
tokenizer named ``<script>`` renders as text. Charts are shown with ``<img>``, where an SVG
cannot run scripts.

The page template and its assets live in this package (``tokbench/report/site/``) so that wheel
installs carry them; ``leaderboard/`` at the repository root only receives the generated site.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

import tokbench
from tokbench.report.charts import REFERENCE_COLOUR, ChartOutcome, family_colours, write_charts
from tokbench.report.coverage import cell_partial, row_coverage
from tokbench.report.examples import collect_examples
from tokbench.report.published import ReferenceTable, default_reference_dir, load_references
from tokbench.report.reproduced import published_cells
from tokbench.report.swap import staged_folder, write_public
from tokbench.report.tables import (
    KIND_LABELS,
    ResultTable,
    build_tables,
    cell_parts,
    fmt_number,
    row_status_text,
)
from tokbench.results import load_results, runs_table

MARKER = ".tokbench-site"  # marks a folder this module generated (and may therefore replace)
SITE_ENTRIES = ("index.html", "charts", "audio", MARKER)  # everything the build writes
# The columns a paper reports, shown in the compact view when a table has them (metric names
# are contract; what each means, its direction and unit come from its declaration). The
# bitrate is always shown. Any other recorded metric is one click away.
PAPER_METRICS = ("wer", "pesq_wb", "stoi", "secs", "spk_sim_wavlm", "spk_sim_ecapa", "secs_target",
                 "utmos", "dnsmos_ovrl")


class SiteError(RuntimeError):
    """The site cannot be written where asked; the message says why and what to do."""


def _asset(name: str) -> str:
    return resources.files("tokbench.report").joinpath("site").joinpath(name).read_text(encoding="utf-8")


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python, containers recursively."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def script_json(data: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">`` (no ``</script>``, no tags)."""
    text = json.dumps(_clean(data), ensure_ascii=False, allow_nan=False, sort_keys=True)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


# ----------------------------------------------------------------------------- data

def _columns_data(table: ResultTable) -> list[dict[str, Any]]:
    """The table's metric columns; those no row scored go last (a WER column of runs without
    ASR must not take the first place), flagged ``computed: false``."""
    columns = []
    for col in table.columns:
        spec = col.spec
        computed = any(col.metric in r.cells and r.cells[col.metric].scored for r in table.rows)
        columns.append({
            "metric": col.metric, "arrow": col.arrow, "direction": col.direction, "unit": col.unit,
            "description": spec.description if spec else "not a declared metric",
            "range": [spec.lo, spec.hi] if spec and spec.lo is not None else None,
            "per_utterance": col.per_utterance, "computed": computed,
            "compact": spec is not None and col.metric in PAPER_METRICS,
        })
    return sorted(columns, key=lambda c: not c["computed"])


def _table_data(table: ResultTable, run_index: dict[str, int], colours: dict[str, str],
                references: Sequence[ReferenceTable] = ()) -> dict[str, Any]:
    """Everything the page reads of one table; the one place the page's cell data is made."""
    rows = []
    for row in table.rows:
        cells = {}
        published = published_cells(table, row, list(references))
        for col in table.columns:
            cell = row.cells.get(col.metric)
            if cell is None:
                continue
            mean, ci, n = cell_parts(cell, col)
            cells[col.metric] = {"mean": cell.mean if cell.scored else None, "text": mean,
                                 "ci": ci, "n": n, "n_scored": cell.n, "n_total": cell.n_total,
                                 "partial": cell_partial(cell), "best": cell.best,
                                 "reason": cell.reason, "published": published.get(col.metric)}
        cov = row_coverage(row)
        rows.append({
            "run": run_index.get(row.run_id), "tokenizer": row.tokenizer, "variant": row.variant,
            "label": row.label, "kind": row.kind, "family": row.family,
            "colour": REFERENCE_COLOUR if row.is_reference else colours.get(row.family or row.tokenizer),
            "param": None if row.param is None else str(row.param),
            "kbps": row.kbps, "kbps_text": fmt_number(row.kbps), "token_rate": row.token_rate,
            "token_rate_text": fmt_number(row.token_rate), "status": row_status_text(row),
            "status_reason": row.status_reason, "cells": cells, "reported": None,
            "coverage": None if cov is None else {"n": cov.n, "n_total": cov.n_total,
                                                  "partial": cov.partial, "text": cov.text},
        })
    n_runs = len({r.run_id for r in table.rows})
    return {"id": table.slug, "title": table.title, "task": table.task, "dataset": table.dataset,
            "protocol_id": table.protocol_id, "part": table.part, "columns": _columns_data(table),
            "rows": rows, "charts": [], "n_runs": n_runs}


def default_table(tables: Sequence[dict[str, Any]]) -> str | None:
    """The table the page opens on: the first registered task's (recon) on the dataset with the
    most runs (its protocol with the most runs); without it, the main table with the most runs."""
    main = [t for t in tables if not t["part"]]
    if not main:
        return tables[0]["id"] if tables else None
    opening = _opening_task()
    first = [t for t in main if t["task"] == opening] or main
    per_dataset: dict[tuple[str, str], int] = {}  # in table order: ties go to the first
    for t in first:
        key = (t["task"], t["dataset"])
        per_dataset[key] = per_dataset.get(key, 0) + t["n_runs"]
    chosen = max(per_dataset, key=lambda k: per_dataset[k])
    return max((t for t in first if (t["task"], t["dataset"]) == chosen),
               key=lambda t: t["n_runs"])["id"]


def _opening_task() -> str | None:
    """The task the site opens on: the first registered (the built-in table registers the main
    task, reconstruction, first)."""
    from tokbench.registry import tasks

    return next(iter(tasks.names()), None)


def _reported_rows(table: ResultTable, ref_index: int, ref: ReferenceTable) -> list[dict[str, Any]]:
    """Rows of a published table placed under the comparable metrics of a matching table."""
    if (ref.task, ref.dataset) != (table.task, table.dataset) or table.part:
        return []
    mapped = ref.comparable_columns()
    metrics = {c.metric for c in table.columns}
    rate = {c.metric: c for c in ref.columns if c.comparable == "rate" and c.metric}
    out = []
    for i, row in enumerate(ref.rows):
        cells = {}
        for metric, col in mapped.items():
            value = ref.value(row, col.name)
            if metric in metrics and value is not None:
                v = value * col.scale
                printed = ref.texts[i].get(col.name) if col.scale == 1.0 else fmt_number(v)
                cells[metric] = {"mean": v, "text": printed, "ci": "", "n": "", "best": False,
                                 "reason": None, "partial": False, "published": None,
                                 "note": f"reported {col.name} ({col.comparable}): {col.note}"}
        kbps = ref.value(row, rate["bitrate_nominal"].name) if "bitrate_nominal" in rate else None
        kbps = None if kbps is None else kbps * rate["bitrate_nominal"].scale / 1000
        tr = ref.value(row, rate["token_rate"].name) if "token_rate" in rate else None
        tokenizer = str(row.get(ref.label_columns[0], ""))
        out.append({
            "run": None, "tokenizer": tokenizer, "variant": ref.label(row), "label": ref.label(row),
            "kind": ref.kind(tokenizer), "family": tokenizer, "colour": None, "param": None,
            "kbps": kbps, "kbps_text": "" if kbps is None else fmt_number(kbps), "token_rate": tr,
            "token_rate_text": "" if tr is None else fmt_number(tr), "status": "",
            "status_reason": None, "cells": cells, "reported": ref_index, "coverage": None,
        })
    return out


def _reference_data(ref: ReferenceTable) -> dict[str, Any]:
    return {
        "citation": ref.citation, "url": ref.url, "table": ref.table, "task": ref.task,
        "dataset": ref.dataset, "dataset_label": ref.dataset_label, "notes": ref.notes,
        "file": ref.source.name, "kinds_note": ref.kinds_note,
        "label_columns": ref.label_columns,
        "columns": [{"name": c.name, "metric": c.metric, "comparable": c.comparable,
                     "note": c.note} for c in ref.columns],
        # The figures exactly as printed in the source (4.40 stays 4.40, not 4.4).
        "rows": [{**{c: row.get(c) for c in ref.label_columns},
                  "kind": ref.kind(str(row.get(ref.label_columns[0], ""))),
                  "values": {c.name: text.get(c.name) or None for c in ref.columns}}
                 for row, text in zip(ref.rows, ref.texts, strict=True)],
    }


def _run_data(info: dict[str, Any]) -> dict[str, Any]:
    keep = ["run_id", "tokenizer", "variant", "kind", "family", "task", "dataset",
            "dataset_revision", "protocol_id", "status", "status_reason", "bitrate_nominal",
            "token_rate", "model_repo", "model_revision", "model_resolved", "task_version",
            "task_options", "tokenizer_options", "tokbench_version", "git_revision", "created",
            "finished", "device", "packages", "protocol"]
    return {k: info.get(k) for k in keep}


def _chart_data(outcome: ChartOutcome, site: Path) -> dict[str, Any]:
    return {"chart": outcome.chart, "title": outcome.title, "message": outcome.message,
            "metric": outcome.metric,
            "files": {fmt: p.relative_to(site).as_posix() for fmt, p in outcome.files.items()}}


def _utterance_ids(df: pd.DataFrame) -> dict[str, list[str]]:
    if df.empty:
        return {}
    ids = df[df["utterance_id"].notna()][["run_id", "utterance_id"]].drop_duplicates()
    return {str(k): [str(u) for u in g["utterance_id"]] for k, g in ids.groupby("run_id")}


# ----------------------------------------------------------------------------- site

def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise SiteError(f"{out} is a file; pass a folder with --out")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise SiteError(f"{out} is not empty and was not made by tokbench leaderboard; "
                        "pass an empty or new folder with --out")


def site_data(
    df: pd.DataFrame,
    runs: pd.DataFrame,
    references: Sequence[ReferenceTable] = (),
    site: Path | None = None,
    charts: bool = True,
) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready data; writes charts and audio under ``site``."""
    run_index = {run_id: i for i, run_id in enumerate(runs["run_id"])}
    tables = build_tables(df, runs)
    colours = family_colours(tables)
    data_tables = []
    outcomes = (write_charts(tables, site / "charts", colours=colours)
                if (charts and site is not None) else [])
    for table in tables:
        item = _table_data(table, run_index, colours, references)
        for r_i, ref in enumerate(references):
            item["rows"] += _reported_rows(table, r_i, ref)
        item["charts"] = [_chart_data(o, site) for o in outcomes if o.table == table.title] \
            if site is not None else []
        data_tables.append(item)
    examples = (collect_examples(runs.to_dict(orient="records"), run_index, _utterance_ids(df),
                                 site) if site is not None else [])
    return {
        "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "tokbench_version": tokbench.__version__,
        "kinds": KIND_LABELS,
        "families": colours, "reference_colour": REFERENCE_COLOUR,
        "default_table": default_table(data_tables),
        "tables": data_tables,
        "runs": [_run_data(info) for info in runs.to_dict(orient="records")],
        "references": [_reference_data(ref) for ref in references],
        "examples": examples,
    }


def render_page(data: dict[str, Any], title: str = "tokbench leaderboard") -> str:
    import html

    parts = {"STYLE": _asset("style.css"), "SCRIPT": _asset("app.js"), "DATA": script_json(data),
             "TITLE": html.escape(title)}
    # One pass, so that text inserted for one marker is never searched for another.
    return re.sub(r"@@(STYLE|SCRIPT|DATA|TITLE)@@", lambda m: parts[m.group(1)],
                  _asset("template.html"))


def build_site(
    results: str | Path = "results",
    out: str | Path = "leaderboard/site",
    reference: str | Path | None = None,
    charts: bool = True,
) -> Path:
    """Write the leaderboard site for the runs under ``results``; returns ``out/index.html``.

    ``reference`` is the folder of published figures (default: ``<results>/reference``, else the
    source checkout's ``results/reference``). The site is built beside ``out`` and swapped in
    whole when complete; on any error (or a kill) the previous site stays as it was.
    """
    out = Path(out)
    _check_target(out)
    df = load_results(results)
    runs = runs_table(results)
    ref_dir = Path(reference) if reference is not None else default_reference_dir(results)
    references = load_references(ref_dir)
    with staged_folder(out, SITE_ENTRIES) as stage:
        (stage / MARKER).write_text("generated by tokbench leaderboard; safe to delete\n")
        data = site_data(df, runs, references, site=stage, charts=charts)
        page = render_page(data).encode("utf-8")
        write_public(stage / "index.html", lambda fh: fh.write(page))
    return out / "index.html"
