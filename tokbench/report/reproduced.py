"""Reported against reproduced: a published figure placed beside ours, with the difference and
whether it lies in our 95% CI.

Only columns the sidecar marks comparable (``yes`` or ``caveats``, ``published.COMPARABLE``)
are placed; the flag travels with the figure so the page can say "with caveats". A published
row matches one of ours when the task and dataset agree and either both are the ground truth
(kind ``reference``) or the published tokenizer is our row's tokenizer or family and the two
nominal bitrates agree within ``KBPS_TOLERANCE`` (a preset is the same model at the same
bitrate). Nothing is matched by a fuzzy name.
"""

from __future__ import annotations

import math
from typing import Any

from tokbench.report.published import ReferenceTable
from tokbench.report.tables import ResultTable, Row, fmt_number

KBPS_TOLERANCE = 0.05  # relative


def _ref_kbps(ref: ReferenceTable, row: dict[str, Any]) -> float | None:
    for col in ref.columns:
        if col.comparable == "rate" and col.metric == "bitrate_nominal":
            v = ref.value(row, col.name)
            return None if v is None else v * col.scale / 1000
    return None


def matching_row(ref: ReferenceTable, row: Row) -> int | None:
    """Index of the published row that reports ``row``'s configuration, if any."""
    best: tuple[float, int] | None = None
    for i, pub in enumerate(ref.rows):
        name = str(pub.get(ref.label_columns[0], ""))
        kind = ref.kind(name)
        if row.is_reference or kind == "reference":
            if row.is_reference and kind == "reference":
                return i
            continue
        if name not in (row.tokenizer, row.family):
            continue
        kbps = _ref_kbps(ref, pub)
        if kbps is None or not math.isfinite(row.kbps) or kbps <= 0:
            continue
        gap = abs(row.kbps - kbps) / kbps
        if gap <= KBPS_TOLERANCE and (best is None or gap < best[0]):
            best = (gap, i)
    return None if best is None else best[1]


def published_cells(table: ResultTable, row: Row, refs: list[ReferenceTable]) -> dict[str, dict]:
    """metric -> the published figure beside our cell: value, text as printed, difference
    (ours - published), whether it lies in our CI, the comparability flag and the source."""
    out: dict[str, dict] = {}
    if table.part or row.param is not None:
        return out
    for r_i, ref in enumerate(refs):
        if (ref.task, ref.dataset) != (table.task, table.dataset):
            continue
        i = matching_row(ref, row)
        if i is None:
            continue
        for metric, col in ref.comparable_columns().items():
            cell = row.cells.get(metric)
            value = ref.value(ref.rows[i], col.name)
            if value is None or metric in out:
                continue
            value *= col.scale
            entry: dict[str, Any] = {
                "value": value, "text": ref.texts[i].get(col.name) or fmt_number(value),
                "comparable": col.comparable, "note": col.note, "reference": r_i,
                "label": ref.label(ref.rows[i]), "diff": None, "diff_text": "", "in_ci": None}
            if cell is not None and cell.scored:
                diff = cell.mean - value
                entry["diff"] = diff
                entry["diff_text"] = ("+" if diff > 0 else "") + fmt_number(diff)
                if cell.has_ci:
                    entry["in_ci"] = bool(cell.ci_low <= value <= cell.ci_high)
            out[metric] = entry
    return out
