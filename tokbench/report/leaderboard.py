"""``tokbench leaderboard``: a static, self-contained leaderboard site.

The site is one ``index.html`` with its CSS, JavaScript and data inlined (``file://`` pages may
not fetch), plus ``charts/`` (SVG and PNG) and ``audio/`` (copied examples) beside it, so the
folder works from ``file://`` and from any static host; nothing is loaded from the network.

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
import shutil
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

import tokbench
from tokbench.report.charts import ChartOutcome, write_charts
from tokbench.report.published import ReferenceTable, default_reference_dir, load_references
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
EXAMPLE_FILES = ("original.wav", "reconstruction.wav")


class SiteError(RuntimeError):
    """The site cannot be written where asked; the message says why and what to do."""


def _asset(name: str) -> str:
    return resources.files("tokbench.report").joinpath("site", name).read_text(encoding="utf-8")


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

def _table_data(table: ResultTable, run_index: dict[str, int]) -> dict[str, Any]:
    columns = []
    for col in table.columns:
        spec = col.spec
        columns.append({
            "metric": col.metric, "arrow": col.arrow, "direction": col.direction, "unit": col.unit,
            "description": spec.description if spec else "not a declared metric",
            "range": [spec.lo, spec.hi] if spec and spec.lo is not None else None,
            "per_utterance": col.per_utterance,
        })
    rows = []
    for row in table.rows:
        cells = {}
        for col in table.columns:
            cell = row.cells.get(col.metric)
            if cell is None:
                continue
            mean, ci, n = cell_parts(cell, col)
            cells[col.metric] = {"mean": cell.mean if cell.scored else None, "text": mean,
                                 "ci": ci, "n": n, "best": cell.best, "reason": cell.reason}
        rows.append({
            "run": run_index.get(row.run_id), "tokenizer": row.tokenizer, "variant": row.variant,
            "label": row.label, "kind": row.kind, "param": None if row.param is None else str(row.param),
            "kbps": row.kbps, "kbps_text": fmt_number(row.kbps), "token_rate": row.token_rate,
            "token_rate_text": fmt_number(row.token_rate), "status": row_status_text(row),
            "status_reason": row.status_reason, "cells": cells, "reported": None,
        })
    return {"id": table.slug, "title": table.title, "task": table.task, "dataset": table.dataset,
            "protocol_id": table.protocol_id, "part": table.part, "columns": columns,
            "rows": rows, "charts": []}


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
                                 "reason": None, "note": f"reported {col.name} ({col.comparable}): {col.note}"}
        kbps = ref.value(row, rate["bitrate_nominal"].name) if "bitrate_nominal" in rate else None
        kbps = None if kbps is None else kbps * rate["bitrate_nominal"].scale / 1000
        tr = ref.value(row, rate["token_rate"].name) if "token_rate" in rate else None
        tokenizer = str(row.get(ref.label_columns[0], ""))
        out.append({
            "run": None, "tokenizer": tokenizer, "variant": ref.label(row), "label": ref.label(row),
            "kind": ref.kind(tokenizer), "param": None, "kbps": kbps,
            "kbps_text": "" if kbps is None else fmt_number(kbps), "token_rate": tr,
            "token_rate_text": "" if tr is None else fmt_number(tr), "status": "",
            "status_reason": None, "cells": cells, "reported": ref_index,
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
    keep = ["run_id", "tokenizer", "variant", "kind", "task", "dataset", "dataset_revision",
            "protocol_id", "status", "status_reason", "bitrate_nominal", "token_rate",
            "model_repo", "model_revision", "model_resolved", "task_version", "task_options",
            "tokenizer_options", "tokbench_version", "git_revision", "created", "finished",
            "device", "packages", "protocol"]
    return {k: info.get(k) for k in keep}


def _copy_examples(runs: pd.DataFrame, run_index: dict[str, int], site: Path) -> list[dict]:
    """Copy ``<run>/examples/<utterance>/{original,reconstruction}.wav`` into ``site/audio``."""
    out = []
    for info in runs.to_dict(orient="records"):
        folder = Path(info["run_path"]) / "examples"
        if not folder.is_dir():
            continue
        i = run_index[info["run_id"]]
        for utt_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            if not all((utt_dir / f).is_file() for f in EXAMPLE_FILES):
                continue
            dest = site / "audio" / str(i) / utt_dir.name
            dest.mkdir(parents=True, exist_ok=True)
            label = json.loads((utt_dir / "example.json").read_text()).get("utterance_id") \
                if (utt_dir / "example.json").is_file() else utt_dir.name
            entry = {"run": i, "utterance_id": label}
            for f in EXAMPLE_FILES:
                shutil.copyfile(utt_dir / f, dest / f)
                entry[f.removesuffix(".wav")] = (dest / f).relative_to(site).as_posix()
            out.append(entry)
    return out


def _chart_data(outcome: ChartOutcome, site: Path) -> dict[str, Any]:
    return {"chart": outcome.chart, "title": outcome.title, "message": outcome.message,
            "files": {fmt: p.relative_to(site).as_posix() for fmt, p in outcome.files.items()}}


# ----------------------------------------------------------------------------- site

def _prepare(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise SiteError(f"{out} is a file; pass a folder with --out")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise SiteError(f"{out} is not empty and was not made by tokbench leaderboard; "
                        "pass an empty or new folder with --out")
    for sub in ("charts", "audio"):  # ours: stale charts and audio of removed runs go
        shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("generated by tokbench leaderboard; safe to delete\n")


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
    data_tables = []
    outcomes = write_charts(tables, site / "charts") if (charts and site is not None) else []
    for table in tables:
        item = _table_data(table, run_index)
        for r_i, ref in enumerate(references):
            item["rows"] += _reported_rows(table, r_i, ref)
        item["charts"] = [_chart_data(o, site) for o in outcomes if o.table == table.title]
        data_tables.append(item)
    return {
        "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "tokbench_version": tokbench.__version__,
        "kinds": KIND_LABELS,
        "tables": data_tables,
        "runs": [_run_data(info) for info in runs.to_dict(orient="records")],
        "references": [_reference_data(ref) for ref in references],
        "examples": _copy_examples(runs, run_index, site) if site is not None else [],
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
    source checkout's ``results/reference``).
    """
    out = Path(out)
    df = load_results(results)
    runs = runs_table(results)
    ref_dir = Path(reference) if reference is not None else default_reference_dir(results)
    references = load_references(ref_dir)
    _prepare(out)
    data = site_data(df, runs, references, site=out, charts=charts)
    index = out / "index.html"
    index.write_text(render_page(data), encoding="utf-8")
    return index
