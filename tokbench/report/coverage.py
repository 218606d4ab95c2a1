"""How much of the data a row or cell covers: the one place the reporter reads ``n`` / ``n_total``.

A cell's ``n`` is the number of utterances scored and ``n_total`` the number recorded (from
``tokbench.results.summarize``); a row is partial when its run did not finish or when any of
its cells scored fewer utterances than it recorded. Charts and the leaderboard badge partial
rows with ``n of N`` instead of drawing them like complete ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokbench.report.tables import Cell, Row


@dataclass(frozen=True)
class Coverage:
    n: int  # the fewest utterances any scored cell of the row covers
    n_total: int  # utterances recorded for that cell
    unfinished: bool  # the run's status is not "complete"

    @property
    def partial(self) -> bool:
        return self.unfinished or self.n < self.n_total

    @property
    def text(self) -> str:
        """``"4 of 6"``; ``"run not finished"`` when every cell is full but the run is not."""
        if self.n < self.n_total:
            return f"{self.n} of {self.n_total}"
        return "run not finished" if self.unfinished else f"{self.n} of {self.n_total}"


def cell_partial(cell: Cell) -> bool:
    """Scored on fewer utterances than were recorded (0 < n < N)."""
    return 0 < cell.n < cell.n_total


def row_coverage(row: Row) -> Coverage | None:
    """The row's coverage over its scored cells; None for rows without scored cells."""
    scored = [c for c in row.cells.values() if c.scored and c.n_total > 0]
    unfinished = row.supported and row.status != "complete"
    if not scored:
        return Coverage(0, 0, True) if unfinished and row.cells else None
    worst = min(scored, key=lambda c: (c.n / c.n_total, c.n))
    return Coverage(worst.n, worst.n_total, unfinished)


def partial_note(row: Row) -> str:
    """``" (partial: 4 of 6)"`` for a partial row, else ``""`` (for legends and labels)."""
    cov = row_coverage(row)
    return f" (partial: {cov.text})" if cov is not None and cov.partial else ""
