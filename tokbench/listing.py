"""``tokbench list tokenizers``: one row per preset, names always whole so they can be copied.

On a terminal wide enough the rows are a rich table whose name column never wraps or shortens;
piped, redirected or on a narrower terminal they are plain, space-aligned columns with nothing
cut, whatever the width. The default view fits 80 columns for most names; ``--details`` adds
the wide columns (rates, codebooks, options, description). Nothing here loads a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape
from rich.table import Table

BRIEF = ("tokenizer", "kind", "kbps", "tokens/s", "available")
DETAILS = ("tokenizer", "kind", "kbps", "tokens/s", "available", "sample rate", "frame rate",
           "codebooks", "options", "description")


@dataclass(frozen=True)
class Row:
    cells: dict[str, str]
    problem: bool = False  # drawn in red on a terminal: the preset cannot even be described


def _fmt(x: float | None, digits: int = 2) -> str:
    return "" if x is None else f"{x:,.{digits}f}"


def tokenizer_rows() -> list[Row]:
    """Every registered preset (and every family that failed to import), in registry order."""
    from tokbench import registry
    from tokbench.availability import availability
    from tokbench.resolve import resolve_tokenizer

    rows = []
    for name, entry in registry.tokenizers.items():
        try:
            resolved = resolve_tokenizer(name)
            meta = resolved.meta
            avail = availability(resolved.cls, resolved.options, meta).text
        except Exception as exc:  # one broken adapter must not hide the others
            rows.append(Row({"tokenizer": name, "kind": "?", "available": f"unavailable: {exc}"},
                            problem=True))
            continue
        rates = " / ".join(f"{r:g}" for r in sorted(set(meta.codebook_rates)))  # multi-rate
        rows.append(Row({
            "tokenizer": name, "kind": meta.kind, "kbps": _fmt(meta.bitrate_nominal / 1000),
            "tokens/s": f"{meta.token_rate:g}", "available": avail,
            "sample rate": f"{meta.sample_rate}", "frame rate": f"{rates} Hz",
            "codebooks": f"{meta.n_codebooks} x {max(meta.codebook_sizes)}",
            "options": ", ".join(f"{k}={v}" for k, v in meta.options.items()),
            "description": entry.summary}))
    for module, why in registry.tokenizers.broken.items():  # a family that failed to import
        rows.append(Row({"tokenizer": module, "kind": "?", "available": f"unavailable: {why}"},
                        problem=True))
    return rows


def plain(rows: Sequence[Row], columns: Sequence[str]) -> str:
    """Space-aligned columns, nothing cut: for pipes, files and ``grep``."""
    cells = [[r.cells.get(c, "") for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
              for row in cells]
    return "\n".join(lines) + "\n"


def table(rows: Sequence[Row], columns: Sequence[str]) -> Table:
    """A rich table whose first column (the names) is never wrapped or shortened."""
    out = Table(*columns)
    first = out.columns[0]
    first.no_wrap = True
    first.min_width = max([len(columns[0]), *(len(r.cells.get(columns[0], "")) for r in rows)])
    for col in out.columns[1:]:
        col.overflow = "fold"  # a narrow terminal folds these rather than cut them
    for r in rows:
        values = [escape(r.cells.get(c, "")) for c in columns]
        if r.problem:
            k = list(columns).index("available")
            values[k] = f"[red]{values[k]}[/]"
        out.add_row(*values)
    return out


def print_tokenizers(console: Console, details: bool = False) -> None:
    """The listing on ``console``: a table on a terminal, plain columns otherwise."""
    rows = tokenizer_rows()
    columns = DETAILS if details else BRIEF
    text = plain(rows, columns)
    # A table's borders take 3 characters a column; a table squeezed below its content would
    # fold every cell into slivers, so a terminal too narrow for it gets the plain columns
    # (its lines wrap, but every name stays whole on one line).
    widest = max(len(line) for line in text.splitlines())
    if console.is_terminal and widest + 3 * len(columns) + 1 <= console.width:
        console.print(table(rows, columns))
    else:
        console.file.write(text)
    ready = sum(r.cells.get("available", "").startswith("runs here") for r in rows)
    hint = "" if details else "; --details for rates, codebooks, options and descriptions"
    console.print(f"{len(rows)} presets, {ready} run here{hint}", highlight=False, soft_wrap=True)
