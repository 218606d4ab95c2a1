"""``tokbench suite report``: the published table beside what the suite reproduced.

For every tokenizer entry of the suite and every comparable column of its reference table
(``results/reference/<stem>.json`` says which columns map to which metric, and how comparable
they are): the reported figure, ours (mean, 95% CI, n of N), the difference (ours - reported)
and whether the reported figure lies in our CI. Columns the sidecar marks not comparable are
listed with the sidecar's reason, never placed under a tokbench metric. The protocol settings
the suite expects are checked against what each run recorded.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tokbench.report.published import (
    ReferenceColumn,
    ReferenceError,
    ReferenceTable,
    default_reference_dir,
    read_reference,
)
from tokbench.suites.loading import Selector, Suite, TokenizerEntry
from tokbench.suites.schema import SuiteError

SHOWN = ("yes", "caveats", "rate")  # columns placed beside a tokbench metric


@dataclass
class Cell:
    reported: float | None = None
    ours: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    n_total: int | None = None

    @property
    def difference(self) -> float | None:
        return None if self.reported is None or self.ours is None else self.ours - self.reported

    @property
    def in_ci(self) -> bool | None:
        if self.reported is None or self.ci_low is None or self.ci_high is None:
            return None
        return self.ci_low <= self.reported <= self.ci_high


@dataclass
class Row:
    label: str
    reference_row: str  # the reference table's row label, or "" when none matches
    run_id: str | None
    status: str  # complete, unsupported, no run, ...
    cells: dict[str, Cell] = field(default_factory=dict)  # metric -> cell


@dataclass
class ProtocolCheck:
    key: str
    expected: Any
    recorded: list[Any]

    @property
    def ok(self) -> bool | None:
        """True if every run recorded the expected value; None when no run was found."""
        if not self.recorded:
            return None
        return all(v is not None and str(v) == str(self.expected) for v in self.recorded)


@dataclass
class Comparison:
    suite: Suite
    dataset: str
    reference: ReferenceTable | None
    columns: list[tuple[str, ReferenceColumn | None]]  # (metric, its reference column)
    rows: list[Row]
    not_comparable: list[ReferenceColumn]
    protocol: list[ProtocolCheck]

    def header(self) -> list[str]:
        out = ["tokenizer", "reference row", "status"]
        for metric, col in self.columns:
            src = f" ({col.name}, {col.comparable})" if col is not None else ""
            out += [f"{metric} reported{src}", f"{metric} ours", f"{metric} 95% CI",
                    f"{metric} diff", f"{metric} in CI", f"{metric} n"]
        return out

    def table_rows(self) -> list[list[str]]:
        rows = []
        for r in self.rows:
            line = [r.label, r.reference_row, r.status]
            for metric, _ in self.columns:
                c = r.cells.get(metric, Cell())
                line += [_num(c.reported), _num(c.ours),
                         "" if c.ci_low is None else f"[{_num(c.ci_low)}, {_num(c.ci_high)}]",
                         "" if c.difference is None else f"{c.difference:+.3g}",
                         {True: "yes", False: "no", None: ""}[c.in_ci],
                         "" if c.n is None else f"{c.n}/{c.n_total}"]
            rows.append(line)
        return rows

    def to_text(self, fmt: str) -> str:
        if fmt == "csv":
            buf = io.StringIO()
            writer = csv.writer(buf)
            writer.writerow(self.header())
            writer.writerows(self.table_rows())
            return buf.getvalue()
        lines = [f"# {self.suite.name} on {self.dataset}", ""]
        if self.reference is not None:
            lines += [f"Reported: {self.reference.citation}, {self.reference.table}.", ""]
        head = self.header()
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in self.table_rows()]
        lines += [""] + [f"- {line}" for line in self.notes()]
        return "\n".join(lines) + "\n"

    def notes(self) -> list[str]:
        out = [f"not comparable: {c.name}: {c.note}" for c in self.not_comparable]
        for p in self.protocol:
            if p.ok is None:
                out.append(f"protocol {p.key}: expected {p.expected}; not checked (no runs found)")
                continue
            mark = "as the source" if p.ok else "DIFFERS from the source"
            got = ", ".join(sorted({"not recorded" if v is None else str(v) for v in p.recorded}))
            out.append(f"protocol {p.key}: expected {p.expected}, recorded {got} ({mark})")
        out += [f"differs from the source: {d}" for d in self.suite.protocol_differences]
        return out


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.4g}"


def _value(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _lookup(protocol: Any, dotted: str) -> Any:
    node = protocol
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _reference(suite: Suite, results: Path, reference_dir: Path | None) -> ReferenceTable | None:
    if not suite.reference:
        return None
    folder = reference_dir or default_reference_dir(results)
    sidecar = None if folder is None else Path(folder) / f"{suite.reference}.json"
    if sidecar is None or not sidecar.is_file():
        raise ReferenceError(f"suite {suite.name} reproduces {suite.reference!r}, but "
                             f"{sidecar or 'results/reference/' + suite.reference + '.json'} does "
                             "not exist: pass --reference FOLDER")
    return read_reference(sidecar)


def _match_row(ref: ReferenceTable, entry: TokenizerEntry) -> dict[str, Any] | None:
    if not entry.row:
        return None
    for row in ref.rows:
        if all(str(row.get(k) or "") == str(v) for k, v in entry.row.items()) and all(
                not row.get(c) for c in ref.label_columns if c not in entry.row):
            return row
    return None


def _pick_run(runs: pd.DataFrame, entry: TokenizerEntry) -> pd.Series | None:
    """The entry's run: its variant exactly, else its preset with shared overrides; the newest."""
    variant = entry.preset + "".join(f"+{k}={v}" for k, v in sorted(entry.overrides.items()))
    mine = runs[runs["variant"] == variant]
    if mine.empty:
        mine = runs[runs["variant"].str.startswith(variant + "+")]
    if mine.empty:
        return None
    done = mine[mine["status"] == "complete"]
    pool = done if not done.empty else mine
    return pool.sort_values("created", na_position="first").iloc[-1]


def build_comparison(suite: Suite, results: str | Path, *, dataset: str | None = None,
                     reference_dir: str | Path | None = None) -> Comparison:
    from tokbench.results import load_results, runs_table, summarize

    results = Path(results)
    dataset = dataset or suite.dataset
    if not dataset:
        raise SuiteError(f"suite {suite.name} names no dataset: pass --dataset")
    if isinstance(suite.tokenizers, Selector):
        from tokbench.suites.matrix import default_presets

        entries = default_presets(suite.tokenizers)
    else:
        entries = suite.tokenizers
    ref = _reference(suite, results, Path(reference_dir) if reference_dir else None)
    task = ref.task if ref is not None else next(iter(suite.tasks))
    metrics = list(suite.metrics)
    columns: list[tuple[str, ReferenceColumn | None]] = []
    not_comparable: list[ReferenceColumn] = []
    if ref is not None:
        by_metric = {c.metric: c for c in ref.columns if c.metric and c.comparable in SHOWN}
        order = metrics or list(by_metric)
        columns = [(m, by_metric[m]) for m in order if m in by_metric]
        not_comparable = [c for c in ref.columns if c.comparable not in SHOWN or not c.metric]
    else:
        columns = [(m, None) for m in metrics]
    if not results.exists():
        raise FileNotFoundError(f"results folder {results} does not exist: run "
                                f"`tokbench suite run {suite.name}` first or pass --results DIR")
    runs = runs_table(results)
    runs = runs[(runs["task"] == task) & (runs["dataset"] == dataset)] if not runs.empty else runs
    df = load_results(results)
    rows: list[Row] = []
    checks = {k: ProtocolCheck(k, v, []) for k, v in suite.protocol_expect.items()}
    for entry in entries:
        ref_row = _match_row(ref, entry) if ref is not None else None
        row = Row(entry.label, ref.label(ref_row) if ref is not None and ref_row else "", None, "no run")
        run = _pick_run(runs, entry) if not runs.empty else None
        if run is not None:
            row.run_id, row.status = run["run_id"], run["status"]
            for check in checks.values():
                check.recorded.append(_lookup(run["protocol"], check.key))
            summary = summarize(df[df["run_id"] == run["run_id"]])
            summary = summary[summary["param"].isna()] if not summary.empty else summary
            means = {r["metric"]: r for r in summary.to_dict(orient="records")}
        else:
            means = {}
        for metric, col in columns:
            cell = Cell()
            if ref is not None and ref_row is not None and col is not None:
                v = ref.value(ref_row, col.name)
                cell.reported = None if v is None else v * col.scale
            s = means.get(metric)
            if s is not None:
                cell.ours, cell.n, cell.n_total = _value(s["mean"]), int(s["n"]), int(s["n_total"])
                cell.ci_low, cell.ci_high = _value(s["ci_low"]), _value(s["ci_high"])
            elif run is not None and metric in ("bitrate_nominal", "token_rate"):
                cell.ours = _value(run[metric])  # the tokenizer's declared rate (runs table)
            row.cells[metric] = cell
        rows.append(row)
    return Comparison(suite, dataset, ref, columns, rows, not_comparable, list(checks.values()))


def render_comparison(comparison: Comparison, console: Any) -> None:
    from rich.table import Table

    title = f"{comparison.suite.name} on {comparison.dataset}"
    if comparison.reference is not None:
        title += f" vs {comparison.reference.citation}"
    table = Table("tokenizer", "status", title=title)
    for metric, col in comparison.columns:
        label = metric if col is None else f"{metric}\n({col.name}, {col.comparable})"
        table.add_column(label)
    for r in comparison.rows:
        cells = []
        for metric, _ in comparison.columns:
            c = r.cells.get(metric, Cell())
            parts = []
            if c.reported is not None:
                parts.append(f"rep {_num(c.reported)}")
            if c.ours is not None:
                ci = "" if c.ci_low is None else f" [{_num(c.ci_low)}, {_num(c.ci_high)}]"
                parts.append(f"ours {_num(c.ours)}{ci}")
            if c.difference is not None:
                parts.append(f"diff {c.difference:+.3g}" + {True: ", in CI", False: ", outside CI",
                                                             None: ""}[c.in_ci])
            if c.n is not None:
                parts.append(f"n {c.n}/{c.n_total}")
            cells.append("\n".join(parts))
        label = r.label + (f"\n= {r.reference_row}" if r.reference_row else "")
        table.add_row(label, r.status, *cells)
    console.print(table)
    for line in comparison.notes():
        console.print(f"- {line}", highlight=False)
