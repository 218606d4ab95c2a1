"""Published figures (``results/reference/``): reported numbers shown beside reproduced ones.

Each published table is a CSV with a JSON sidecar of the same stem that states the citation,
the task and dataset, and for every CSV column the tokbench metric it maps to and whether the
two are comparable: ``yes``, ``caveats`` (same definition, details unstated), ``no`` (a
different model or decoding) or ``rate`` (bitrate, token rate). Nothing is inferred from column
names; a column the sidecar does not describe is shown as not comparable.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tokbench

COMPARABLE = ("yes", "caveats")  # these columns may be placed under a tokbench metric


class ReferenceError(ValueError):
    """A published-figures file is malformed; the message names the file and the fix."""


@dataclass(frozen=True)
class ReferenceColumn:
    name: str  # the CSV column
    metric: str | None  # the tokbench metric it corresponds to, if any
    comparable: str  # yes | caveats | no | rate
    note: str = ""
    scale: float = 1.0  # CSV value x scale = value in the metric's unit (e.g. kbps -> bit/s)


@dataclass
class ReferenceTable:
    source: Path
    citation: str
    url: str
    table: str
    task: str
    dataset: str
    dataset_label: str
    notes: str
    label_columns: list[str]
    columns: list[ReferenceColumn]
    rows: list[dict[str, Any]]  # CSV values: float, or None where the cell is empty
    texts: list[dict[str, str]] = field(default_factory=list)  # the cells as printed in the CSV
    kinds: dict[str, str] = field(default_factory=dict)
    kinds_note: str = ""

    def kind(self, tokenizer: str) -> str:
        return self.kinds.get(tokenizer, "")

    def label(self, row: dict[str, Any]) -> str:
        parts = [str(row[c]) for c in self.label_columns if row.get(c) not in (None, "")]
        return " ".join(parts)

    def comparable_columns(self) -> dict[str, ReferenceColumn]:
        """tokbench metric -> the CSV column that may be shown under it."""
        return {c.metric: c for c in self.columns if c.metric and c.comparable in COMPARABLE}

    def value(self, row: dict[str, Any], column: str) -> float | None:
        v = row.get(column)
        return v if isinstance(v, float) else None


def _cell(text: str) -> Any:
    text = text.strip()
    if text == "":
        return None
    try:
        v = float(text)
    except ValueError:
        return text
    return v if math.isfinite(v) else None


def read_reference(sidecar: Path) -> ReferenceTable:
    try:
        info = json.loads(sidecar.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReferenceError(f"{sidecar}: not valid JSON ({exc})") from None
    for key in ("csv", "citation", "task", "dataset", "columns"):
        if key not in info:
            raise ReferenceError(f"{sidecar}: missing key {key!r} (see results/reference/README.md)")
    csv_path = sidecar.parent / info["csv"]
    if not csv_path.is_file():
        raise ReferenceError(f"{sidecar}: its table {csv_path.name} does not exist beside it")
    with csv_path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        label_columns = list(info.get("label_columns", header[:1]))
        rows, texts = [], []
        for raw in reader:
            rows.append({k: (raw[k].strip() if k in label_columns else _cell(raw[k])) for k in header})
            texts.append({k: (raw[k] or "").strip() for k in header})
    described = info["columns"]
    columns = []
    for name in header:
        if name in label_columns:
            continue
        d = described.get(name, {})
        columns.append(ReferenceColumn(
            name=name, metric=d.get("metric"), comparable=d.get("comparable", "no"),
            note=d.get("note", "not described in the sidecar: treated as not comparable"),
            scale=float(d.get("scale", 1.0))))
    return ReferenceTable(
        source=csv_path, citation=info["citation"], url=info.get("url", ""),
        table=info.get("table", ""), task=info["task"], dataset=info["dataset"],
        dataset_label=info.get("dataset_label", info["dataset"]), notes=info.get("notes", ""),
        label_columns=label_columns, columns=columns, rows=rows, texts=texts,
        kinds=info.get("kinds", {}),
        kinds_note=info.get("kinds_note", ""))


def default_reference_dir(results: str | Path) -> Path | None:
    """``<results>/reference`` if present, else the source checkout's ``results/reference``."""
    candidates = [Path(results) / "reference",
                  Path(tokbench.__file__).resolve().parent.parent / "results" / "reference"]
    for path in candidates:
        if path.is_dir() and any(path.glob("*.json")):
            return path
    return None


def load_references(directory: str | Path | None) -> list[ReferenceTable]:
    """Every published table (CSV + JSON sidecar) in ``directory``; [] if there is none."""
    if directory is None:
        return []
    directory = Path(directory)
    if not directory.is_dir():
        raise ReferenceError(f"reference folder {directory} does not exist")
    return [read_reference(p) for p in sorted(directory.glob("*.json"))]
