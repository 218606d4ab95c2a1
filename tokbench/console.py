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


#: a metric recorded for more params than this (token statistics of every byte position of an
#: Opus packet: 60 codebooks) gets one summary row instead of one row per param
PER_PARAM_ROWS = 4


def print_summary(summary: Any, title: str = "") -> None:
    """A one-screen table: metric, mean [95% CI], n scored / total. A metric recorded for
    many params is summarised in one row: the mean over its params and their range."""
    from tokbench.metrics import get_metric
    from tokbench.registry import UnknownNameError

    table = Table("metric", "", "mean", "95% CI", "n", title=title)
    rows = summary.to_dict(orient="records")
    params: dict[str, list[dict]] = {}
    for row in rows:
        if row.get("param") is not None:
            params.setdefault(row["metric"], []).append(row)
    folded = {m for m, rs in params.items() if len(rs) > PER_PARAM_ROWS}
    shown: set[str] = set()
    for row in rows:
        try:
            arrow = get_metric(row["metric"]).arrow
        except UnknownNameError:
            arrow = ""
        if row["metric"] in folded:
            if row["metric"] not in shown:
                shown.add(row["metric"])
                table.add_row(*_folded_row(row["metric"], params[row["metric"]], arrow))
            continue
        mean = row["mean"]
        ci = "" if row["ci_low"] != row["ci_low"] else f"[{row['ci_low']:.3g}, {row['ci_high']:.3g}]"
        label = row["metric"] if row.get("param") is None else f"{row['metric']} @ {row['param']}"
        table.add_row(label, arrow, "n/a" if mean != mean else f"{mean:.4g}", ci,
                      f"{row['n']}/{row['n_total']}")
    if folded:
        table.caption = ("one row per metric recorded for more than "
                         f"{PER_PARAM_ROWS} params: their mean and range (each param: "
                         "tokbench report --format csv)")
    console.print(table)


def _folded_row(metric: str, rows: list[dict], arrow: str) -> tuple[str, ...]:
    """One row for a metric's many params: the mean over params and the range of their values."""
    means = [r["mean"] for r in rows if r["mean"] == r["mean"]]
    first, last = rows[0]["param"], rows[-1]["param"]
    label = f"{metric} @ {first}..{last}"
    if not means:
        return label, arrow, "n/a", "", f"0/{len(rows)} params"
    avg = sum(means) / len(means)
    return (label, arrow, f"{avg:.4g}", f"range [{min(means):.3g}, {max(means):.3g}]",
            f"{len(means)}/{len(rows)} params")
