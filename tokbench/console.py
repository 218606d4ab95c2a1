"""What every command prints through: the consoles, one-line errors, the summary table, and the
option types shared by the CLI and the sub-commands that families and tasks register."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

# Wide enough for the tables when output goes to a file or a pipe (rich defaults to 80 there).
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)


class Device(str, Enum):
    cuda = "cuda"
    cpu = "cpu"


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` (the cause and the fix) and exit with ``code``; no traceback."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def print_summary(summary: Any, title: str = "") -> None:
    """A one-screen table: metric, mean [95% CI], n scored / total."""
    from tokbench.metrics import get_metric
    from tokbench.registry import UnknownNameError

    table = Table("metric", "", "mean", "95% CI", "n", title=title)
    for row in summary.to_dict(orient="records"):
        try:
            arrow = get_metric(row["metric"]).arrow
        except UnknownNameError:
            arrow = ""
        mean = row["mean"]
        ci = "" if row["ci_low"] != row["ci_low"] else f"[{row['ci_low']:.3g}, {row['ci_high']:.3g}]"
        label = row["metric"] if row.get("param") is None else f"{row['metric']} @ {row['param']}"
        table.add_row(label, arrow, "n/a" if mean != mean else f"{mean:.4g}", ci,
                      f"{row['n']}/{row['n_total']}")
    console.print(table)
