"""Render result tables as a rich terminal table, Markdown, CSV or LaTeX.

Every format shows the same numbers: mean, 95% CI and n scored per cell, the metric's
direction in the header, the best value per column marked (bold; ``*`` in plain text), gaps
where a run did not record a metric, and "not supported" rows with their reason.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence

from tokbench.report.tables import (
    KIND_LABELS,
    PARTIAL_MARK,
    Column,
    ResultTable,
    Row,
    cell_parts,
    cell_text,
    fmt_number,
    fmt_rate,
    row_label,
    row_status_text,
)

FORMATS = ("table", "md", "csv", "latex")
GAP = "–"  # a metric the run did not record: a gap, never a number


def _kind(row: Row) -> str:
    return KIND_LABELS.get(row.kind, row.kind or "other")


def empty_columns(table: ResultTable) -> list[Column]:
    """Columns no row could fill: every run that recorded the metric has it n/a (WER/CER when
    no run had an ASR model). The terminal view leaves them out and says why in one line."""
    out = []
    for col in table.columns:
        cells = [r.cells[col.metric] for r in table.rows
                 if col.metric in r.cells and not row_status_text(r)]
        if cells and not any(c.scored for c in cells):
            out.append(col)
    return out


def first_clause(reason: str, limit: int = 160) -> str:
    """The gist of a long reason for a one-line note: up to its first parenthesis or sentence
    end (the whole reason stays in the records and in the other formats)."""
    cut = min([i for i in (reason.find(" ("), reason.find(". ")) if i > 0] or [len(reason)])
    text = reason[:cut].rstrip(".")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _empty_notes(empty: Sequence[Column], table: ResultTable) -> list[str]:
    reasons: dict[str, list[str]] = {}
    for col in empty:
        why = {r.cells[col.metric].reason or "no reason recorded" for r in table.rows
               if col.metric in r.cells and not row_status_text(r)}
        reasons.setdefault(" / ".join(sorted(first_clause(w) for w in why)), []).append(col.metric)
    return [f"{', '.join(metrics)} not shown: no run could compute {'it' if len(metrics) == 1 else 'them'}"
            f" ({why})" for why, metrics in reasons.items()]


def _footnotes(table: ResultTable, skip: Sequence[Column] = ()) -> list[str]:
    """Why rows are not supported or partial, and why n/a cells could not be computed
    (``skip``: columns whose n/a cells are explained elsewhere)."""
    notes: list[str] = []
    missing: dict[tuple[str, str], list[str]] = {}
    for row in table.rows:
        for col in table.columns:
            if col in skip:
                continue
            cell = row.cells.get(col.metric)
            if cell is not None and not cell.scored:
                missing.setdefault((col.metric, cell.reason or "no reason recorded"), []).append(row.label)
    grouped: dict[tuple[str, tuple[str, ...]], list[str]] = {}  # same reason, same rows: one note
    for (metric, reason), labels in missing.items():
        grouped.setdefault((reason, tuple(labels)), []).append(metric)
    for (reason, row_labels), metrics in grouped.items():
        notes.append(f"{', '.join(metrics)} n/a ({', '.join(row_labels)}): {reason}")
    for row in table.rows:
        if row.status_reason:
            status = row_status_text(row)
            notes.append(f"{row.label}: {status}: {row.status_reason}" if status
                         else f"{row.label}: {row.status_reason}")
    for row in table.rows:
        if row.partial:
            notes.append(f"{PARTIAL_MARK} {row.label}: partial coverage, not compared for best: "
                         f"{row.coverage_note}")
    return notes


LEGEND = ("mean [95% bootstrap CI] n=scored/N utterances; best per column marked among rows "
          "scored on the same utterances (ground truth excluded); † = partial coverage; "
          "– = not recorded; n/a = recorded but not computable")


def legend(table: ResultTable) -> str:
    if table.part and not any(c.comparable_by_param(table) for c in table.columns):
        return LEGEND.replace("best per column marked among rows scored on the same utterances "
                              "(ground truth excluded)",
                              "no best marked: a codebook index means different things in "
                              "different tokenizers")
    if table.part:
        return LEGEND.replace("(ground truth excluded)",
                              "among rows of the same param (ground truth excluded)")
    return LEGEND


# ----------------------------------------------------------------------------- rich

def _rich_width(table: ResultTable, col: Column | None) -> int:
    """Characters a column needs in the rich table (content, 2 padding, 1 border)."""
    if col is None:  # the tokenizer column
        texts = [f"  {row_label(r)}" for r in table.rows] + [_kind(r) for r in table.rows]
        return max(len(t) for t in [*texts, "tokenizer"]) + 3
    texts = [col.header, col.unit]
    for row in table.rows:
        mean, ci, n = cell_parts(row.cells.get(col.metric), col)
        texts += [mean + " *", ci, n, row_status_text(row)]
    return max(len(t) for t in texts) + 3


def rich_chunks(table: ResultTable, width: int,
                columns: Sequence[Column] | None = None) -> list[list[Column]]:
    """Split the metric columns (default: all) so that each printed table fits ``width``
    characters.

    Cropping a number to "0.8…" would hide it, so a wide table is printed as several tables
    that repeat the tokenizer, bitrate and token-rate columns.
    """
    fixed = 1 + _rich_width(table, None) + 9 + 10 + (10 if table.has_param else 0)
    chunks: list[list[Column]] = [[]]
    used = fixed
    for col in table.columns if columns is None else columns:
        need = _rich_width(table, col)
        if chunks[-1] and used + need > width:
            chunks.append([])
            used = fixed
        chunks[-1].append(col)
        used += need
    return chunks


def to_rich(table: ResultTable, columns: Sequence[Column] | None = None, title: str | None = None,
            caption: bool = True):
    """A ``rich.table.Table`` (a title row per kind, best values in bold green with ``*``)."""
    from rich.table import Table
    from rich.text import Text

    columns = list(table.columns if columns is None else columns)
    t = Table(title=title or table.title, caption=legend(table) if caption else None,
              caption_justify="left", show_lines=False)
    t.add_column("tokenizer", no_wrap=True)
    if table.has_param:
        t.add_column("param", justify="right")
    t.add_column("kbps", justify="right")
    t.add_column("tok/s", justify="right")
    for col in columns:
        unit = f"\n{col.unit}" if col.unit else ""
        t.add_column(f"{col.header}{unit}", justify="right")
    width = 3 + (1 if table.has_param else 0) + len(columns)
    previous = None
    for row in table.rows:
        if row.kind != previous:  # a group title row per kind, as in the review's tables
            if previous is not None:
                t.add_section()
            t.add_row(Text(_kind(row), style="bold italic"), *[""] * (width - 1))
            previous = row.kind
        cells: list = [Text("  " + row_label(row), style="yellow" if row.partial else "")]
        if table.has_param:
            cells.append("" if row.param is None else str(row.param))
        cells += [fmt_rate(row.kbps), fmt_rate(row.token_rate)]
        status = row_status_text(row)
        for col in columns:
            if status:
                cells.append(Text(status, style="yellow"))
                continue
            mean, ci, n = cell_parts(row.cells.get(col.metric), col)
            if not mean:
                cells.append(Text(GAP, style="dim"))
                continue
            cell = row.cells[col.metric]
            text = Text(mean + (" *" if cell.best else ""), style="bold green" if cell.best else "")
            if ci:
                text.append("\n" + ci, style="dim")
            if n:
                text.append("\n" + n, style="dim")
            cells.append(text)
        t.add_row(*cells)
    return t


def print_tables(tables: Sequence[ResultTable], console=None) -> None:
    from rich.console import Console

    console = console or Console()
    for table in tables:
        empty = empty_columns(table)
        if len(empty) == len(table.columns):
            empty = []  # nothing else to show: the n/a cells are the table
        chunks = rich_chunks(table, console.width, [c for c in table.columns if c not in empty])
        for i, columns in enumerate(chunks):
            part = f" [{i + 1}/{len(chunks)}]" if len(chunks) > 1 else ""
            console.print(to_rich(table, columns, title=table.title + part,
                                  caption=i == len(chunks) - 1))
        for note in _empty_notes(empty, table) + _footnotes(table, skip=empty):
            console.print(f"  [yellow]{note}[/]", highlight=False)
        console.print()


# ----------------------------------------------------------------------------- Markdown

def _md_escape(text: str) -> str:
    # Inline Markdown that could break a table cell or be read as markup/HTML.
    for ch in "\\|*_`[]<>":
        text = text.replace(ch, "\\" + ch)
    return text


def to_markdown(tables: Sequence[ResultTable]) -> str:
    out: list[str] = []
    for table in tables:
        out.append(f"### {_md_escape(table.title)}\n")
        header = ["kind", "tokenizer"] + (["param"] if table.has_param else []) + ["kbps", "tok/s"]
        header += [_md_escape(c.header) + (f" ({_md_escape(c.unit)})" if c.unit else "")
                   for c in table.columns]
        out.append("| " + " | ".join(header) + " |")
        align = ["---", "---"] + (["---:"] if table.has_param else []) + ["---:", "---:"]
        out.append("|" + "|".join(align + ["---:"] * len(table.columns)) + "|")
        for row in table.rows:
            cells = [_md_escape(_kind(row)), _md_escape(row_label(row))]
            if table.has_param:
                cells.append("" if row.param is None else _md_escape(str(row.param)))
            cells += [fmt_rate(row.kbps), fmt_rate(row.token_rate)]
            status = row_status_text(row)
            for col in table.columns:
                if status:
                    cells.append(status)
                    continue
                mean, ci, n = cell_parts(row.cells.get(col.metric), col)
                if not mean:
                    cells.append(GAP)
                    continue
                if row.cells[col.metric].best:
                    mean = f"**{mean}**"
                cells.append(" ".join(p for p in (mean, ci, n) if p))
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
        out.append(f"_{_md_escape(legend(table))}_")
        for note in _footnotes(table):
            out.append(f"- {_md_escape(note)}")
        out.append("")
    return "\n".join(out)


# ----------------------------------------------------------------------------- CSV

def to_csv(tables: Sequence[ResultTable]) -> str:
    """One line per row of every table; per metric: mean, ci_low, ci_high, n, n_total, best."""
    metrics: list[Column] = []
    for table in tables:
        for col in table.columns:
            if col.metric not in {c.metric for c in metrics}:
                metrics.append(col)
    head = ["task", "dataset", "protocol_id", "kind", "tokenizer", "variant", "label", "param",
            "run_id", "status", "status_reason", "kbps", "token_rate", "partial", "coverage_note"]
    for col in metrics:
        head += [f"{col.metric}_{s}" for s in ("mean", "ci_low", "ci_high", "n", "n_total", "best",
                                               "partial")]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(head)

    def num(x: float) -> str:
        return "" if not math.isfinite(x) else repr(float(x))

    for table in tables:
        for row in table.rows:
            line = [table.task, table.dataset, table.protocol_id, row.kind, row.tokenizer,
                    row.variant, row.label, "" if row.param is None else row.param, row.run_id,
                    row.status, row.status_reason or "", num(row.kbps), num(row.token_rate),
                    int(row.partial), row.coverage_note]
            for col in metrics:
                cell = row.cells.get(col.metric)
                if cell is None:
                    line += [""] * 7
                else:
                    line += [num(cell.mean), num(cell.ci_low), num(cell.ci_high), cell.n,
                             cell.n_total, int(cell.best), int(cell.partial)]
            writer.writerow(line)
    return buf.getvalue()


# ----------------------------------------------------------------------------- LaTeX

_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
        "<": r"\textless{}", ">": r"\textgreater{}"}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)


def to_latex(tables: Sequence[ResultTable]) -> str:
    """booktabs tabulars (``\\usepackage{booktabs}``); best in bold, CI and n in small type."""
    out: list[str] = []
    arrows = {"higher": r"$\uparrow$", "lower": r"$\downarrow$"}
    for table in tables:
        n_left = 3 + (1 if table.has_param else 0)
        out.append(f"% {tex_escape(table.title)}")
        out.append(r"\begin{tabular}{l" + "r" * (n_left - 1 + len(table.columns)) + "}")
        out.append(r"\toprule")
        head = ["Tokenizer"] + (["Param"] if table.has_param else []) + ["kbps", "Tok/s"]
        for col in table.columns:
            arrow = arrows.get(col.direction, "")
            head.append(tex_escape(col.metric) + (f" {arrow}" if arrow else ""))
        out.append(" & ".join(head) + r" \\")
        previous = None
        for row in table.rows:
            if row.kind != previous:
                out.append(r"\midrule")
                width = n_left + len(table.columns)
                out.append(rf"\multicolumn{{{width}}}{{l}}{{\textit{{{tex_escape(_kind(row))}}}}} \\")
                previous = row.kind
            cells = [tex_escape(row.label) + (r"$^\dagger$" if row.partial else "")]
            if table.has_param:
                cells.append("" if row.param is None else tex_escape(str(row.param)))
            cells += [fmt_rate(row.kbps), fmt_rate(row.token_rate)]
            status = row_status_text(row)
            for col in table.columns:
                if status:
                    cells.append(tex_escape(status))
                    continue
                mean, ci, n = cell_parts(row.cells.get(col.metric), col)
                if not mean:
                    cells.append("--")
                    continue
                if row.cells[col.metric].best:
                    mean = rf"\textbf{{{mean}}}"
                small = tex_escape(" ".join(p for p in (ci, n) if p)).replace(PARTIAL_MARK, r"$^\dagger$")
                cells.append(mean + (rf" {{\scriptsize {small}}}" if small else ""))
            out.append(" & ".join(cells) + r" \\")
        out.append(r"\bottomrule")
        out.append(r"\end{tabular}")
        for note in _footnotes(table):
            out.append(f"% {tex_escape(note)}".replace(PARTIAL_MARK, "dagger:"))
        out.append("")
    return "\n".join(out)


def render(tables: Sequence[ResultTable], fmt: str) -> str:
    """Text of ``tables`` in ``fmt`` (md, csv, latex); ``table`` renders for a terminal."""
    if fmt == "md":
        return to_markdown(tables)
    if fmt == "csv":
        return to_csv(tables)
    if fmt == "latex":
        return to_latex(tables)
    if fmt == "table":
        from rich.console import Console

        console = Console(file=io.StringIO(), width=200, force_terminal=False)
        print_tables(tables, console)
        return console.file.getvalue()  # type: ignore[attr-defined]  # the StringIO above
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


__all__ = ["FORMATS", "cell_text", "fmt_number", "print_tables", "render", "to_csv", "to_latex",
           "to_markdown", "to_rich"]
