"""Plain DataFrame tables of task reports, written as Markdown, CSV or LaTeX.

Task report modules (``tokbench.tasks.<task>.report``) build their own tables as DataFrames and
write them here, so that every task report formats numbers and writes files the same way.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import IO, Any

import pandas as pd

TABLE_FORMATS = {"md": "md", "csv": "csv", "latex": "tex"}  # format -> file extension


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:
            return ""
        if abs(value) >= 1000:
            return f"{value:.0f}"
        return f"{value:.4g}"
    return "" if value is None else str(value)


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table (no extra dependency)."""
    header = "| " + " | ".join(str(c) for c in table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def check_format(fmt: str) -> None:
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"fmt must be md, csv or latex, got {fmt!r}")


def _write_bytes(data: bytes, fh: IO[bytes]) -> None:
    fh.write(data)


def write_table(table: pd.DataFrame, stem: Path, fmt: str = "md") -> Path:
    """``table`` written atomically to ``stem`` + the format's extension; returns the path."""
    from tokbench.report.swap import write_public

    check_format(fmt)
    path = stem.with_name(f"{stem.name}.{TABLE_FORMATS[fmt]}")
    if fmt == "md":
        text = to_markdown(table)
    elif fmt == "csv":
        text = table.to_csv(index=False)
    else:
        text = table.to_latex(index=False, float_format="%.4g", na_rep="")
    write_public(path, partial(_write_bytes, text.encode("utf-8")))  # never half a file
    return path
