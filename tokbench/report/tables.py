"""Result tables: one per (task, dataset, protocol id), built from ``load_results`` + ``runs_table``.

The layout follows the reconstruction table of Guo et al. (2025): rows are tokenizer variants
with their bitrate and token rate, grouped by kind with the ground-truth (``reference``) rows
first; columns are metrics with their declared direction; each cell is the mean with its 95%
bootstrap CI and the number of utterances scored. Directions, units and aggregation come from
the metric declarations (``tokbench.metrics``), never from a metric's name. A metric a run did
not record is a gap, and runs made under different protocols land in different tables.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from tokbench.metrics import MetricSpec, all_metrics, get_metric
from tokbench.registry import UnknownNameError
from tokbench.results import summarize

# Shown in every row's header (from the tokenizer's declared meta), so not repeated as columns
# unless asked for by name.
RATE_METRICS = ("bitrate_nominal", "token_rate")
# The order of tokbench.types.KINDS (a test keeps them equal); not imported from there because
# tokbench.types imports torch, which would make `tokbench report` start several seconds slower.
KINDS = ("reference", "acoustic", "semantic", "hybrid")
KIND_LABELS = {"reference": "ground truth", "acoustic": "acoustic", "semantic": "semantic",
               "hybrid": "hybrid"}


@dataclass(frozen=True)
class Column:
    metric: str
    spec: MetricSpec | None  # None: the metric is not declared; shown without direction or best

    @property
    def arrow(self) -> str:
        return self.spec.arrow if self.spec else ""

    @property
    def direction(self) -> str:
        return self.spec.direction if self.spec else "none"

    @property
    def unit(self) -> str:
        return self.spec.unit if self.spec else ""

    @property
    def per_utterance(self) -> bool:
        return self.spec is None or self.spec.level == "utterance"

    @property
    def header(self) -> str:
        return f"{self.metric} {self.arrow}".strip()


@dataclass
class Cell:
    mean: float
    ci_low: float
    ci_high: float
    n: int
    n_total: int
    reason: str | None = None  # why nothing was scored (most common reason), when n == 0
    best: bool = False

    @property
    def scored(self) -> bool:
        return self.n > 0 and math.isfinite(self.mean)

    @property
    def has_ci(self) -> bool:
        return math.isfinite(self.ci_low) and math.isfinite(self.ci_high)


@dataclass
class Row:
    run_id: str
    tokenizer: str
    variant: str
    kind: str
    label: str  # the variant, made unique within a table (the option that differs)
    param: object = None
    kbps: float = math.nan
    token_rate: float = math.nan
    status: str = "complete"
    status_reason: str | None = None
    cells: dict[str, Cell] = field(default_factory=dict)
    family: str = ""  # the tokenizer family (meta.family): colours and curves in charts

    @property
    def supported(self) -> bool:
        return self.status != "unsupported"

    @property
    def is_reference(self) -> bool:
        return self.kind == "reference"


@dataclass
class ResultTable:
    task: str
    dataset: str
    protocol_id: str
    columns: list[Column]
    rows: list[Row]
    # "" for the main table (records without a param: one row per run); for metrics recorded
    # per param (e.g. per codebook, per BPE vocabulary size) the metrics of one such family.
    part: str = ""
    # The long results of this (task, dataset, protocol), params included: for task-specific
    # charts and for notebooks.
    data: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def title(self) -> str:
        base = f"{self.task} on {self.dataset} (protocol {self.protocol_id})"
        return f"{base}: {self.part} by param" if self.part else base

    @property
    def slug(self) -> str:
        import re

        part = f"-{self.part.split(',')[0]}-by-param" if self.part else ""
        return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{self.task}-{self.dataset}-{self.protocol_id}{part}")

    @property
    def has_param(self) -> bool:
        return any(r.param is not None for r in self.rows)


def metric_spec(name: str) -> MetricSpec | None:
    try:
        return get_metric(name)
    except UnknownNameError:
        return None


def _column_order(present: Iterable[str], requested: Sequence[str] | None) -> list[str]:
    present = set(present)
    if requested:
        return [m for m in requested if m in present]
    declared = [s.name for s in all_metrics()]
    ordered = [m for m in declared if m in present and m not in RATE_METRICS]
    return ordered + sorted(present - set(declared))


def _kind_rank(kind: str) -> int:
    return KINDS.index(kind) if kind in KINDS else len(KINDS)


def _num(x: object) -> float:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return v


def _reasons(df: pd.DataFrame) -> dict[tuple[str, str], str]:
    """Most common reason per (run, metric) among the values that were not computed."""
    out: dict[tuple[str, str], str] = {}
    missing = df[df["value"].isna() & df["reason"].notna()]
    for (run_id, metric), group in missing.groupby(["run_id", "metric"]):
        out[(run_id, metric)] = Counter(group["reason"]).most_common(1)[0][0]
    return out


def _mark_best(table: ResultTable) -> None:
    """Best per column among the scored, non-reference rows (ties all marked); needs 2+ rows.

    In a by-param table rows compete only with rows of the same param: the best tokenizer at
    one vocabulary size or seed, never one seed of a run against another.
    """
    for col in table.columns:
        if col.direction not in ("higher", "lower"):
            continue
        groups: dict[str, list[Cell]] = {}
        for r in table.rows:
            if not r.is_reference and col.metric in r.cells and r.cells[col.metric].scored:
                groups.setdefault(repr(r.param), []).append(r.cells[col.metric])
        for cells in groups.values():
            if len(cells) < 2:
                continue
            pick = max if col.direction == "higher" else min
            best = pick(c.mean for c in cells)
            for cell in cells:
                cell.best = cell.mean == best


def build_tables(
    df: pd.DataFrame,
    runs: pd.DataFrame | None = None,
    metrics: Sequence[str] | None = None,
) -> list[ResultTable]:
    """Tables from a ``load_results`` frame (already filtered) and the matching ``runs_table``.

    Per (task, dataset, protocol id) a main table of the records without a ``param`` (one row
    per run), then one table per family of metrics recorded with a ``param`` (rows: run x param,
    e.g. per codebook or per BPE vocabulary size). Figures made under different protocols are
    never put side by side. Runs in ``runs`` without records (e.g. unsupported) become rows of
    the main table marked "not supported" with their reason. ``metrics`` picks and orders the
    columns; by default every recorded metric in declaration order, except the rates shown in
    each row.
    """
    runs = runs if runs is not None else pd.DataFrame(columns=["run_id"])
    if metrics:
        df = df[df["metric"].isin(list(metrics))]
    meta = {r["run_id"]: r for r in runs.to_dict(orient="records")}
    keys: set[tuple[str, str, str]] = set()
    for frame in (df, runs):
        if len(frame):
            for t, d, p in frame[["task", "dataset", "protocol_id"]].itertuples(index=False):
                keys.add((str(t), str(d), str(p)))
    tables = []
    for task, dataset, protocol in sorted(keys):
        part = df[(df["task"].astype(str) == task) & (df["dataset"].astype(str) == dataset)
                  & (df["protocol_id"].astype(str) == protocol)]
        run_part = runs[(runs["task"].astype(str) == task) & (runs["dataset"].astype(str) == dataset)
                        & (runs["protocol_id"].astype(str) == protocol)] if len(runs) else runs
        has_param = part["param"].notna()
        group = []
        main = _build_one(task, dataset, protocol, part[~has_param], run_part, meta, metrics,
                          recorded=set(part["run_id"]))
        group.append(main)
        by_param = part[has_param]
        for family in _families(by_param):
            rows = by_param[by_param["metric"].isin(family)]
            group.append(_build_one(task, dataset, protocol, rows, run_part.iloc[0:0], meta, metrics,
                                    recorded=set(), part_label=", ".join(_column_order(family, metrics))))
        for table in group:
            table.data = part
        tables += [t for t in group if t.rows]
    # Per task and dataset: the protocol with the most runs first (usually the current one),
    # and within a protocol the main table before its by-param tables.
    n_runs: dict[tuple[str, str, str], set[str]] = {}
    for t in tables:
        n_runs.setdefault((t.task, t.dataset, t.protocol_id), set()).update(r.run_id for r in t.rows)
    return sorted(tables, key=lambda t: (t.task, t.dataset,
                                         -len(n_runs[(t.task, t.dataset, t.protocol_id)]),
                                         t.protocol_id, t.part != "", t.part))


def _families(df: pd.DataFrame) -> list[list[str]]:
    """Metrics recorded together (in the same records), as groups: each becomes one table.

    Per-codebook statistics and per-vocabulary-size BPE figures have different params, so they
    are never rows of one table; which metrics belong together is read from the records, not
    from the metrics' names.
    """
    parent: dict[str, str] = {}

    def find(m: str) -> str:
        while parent.setdefault(m, m) != m:
            m = parent[m]
        return m

    keys = df.assign(_u=df["utterance_id"].fillna(""), _p=df["param"].map(repr))
    for _, group in keys.groupby(["run_id", "_u", "_p"], sort=False):
        names = list(dict.fromkeys(group["metric"]))
        for other in names[1:]:
            parent[find(other)] = find(names[0])
        find(names[0])
    families: dict[str, list[str]] = {}
    for m in parent:
        families.setdefault(find(m), []).append(m)
    return sorted(families.values(), key=lambda f: _column_order(f, None))


def _build_one(task, dataset, protocol, part, run_part, meta, metrics, recorded: set,
               part_label: str = "") -> ResultTable:
    summary = summarize(part) if len(part) else pd.DataFrame(
        columns=["run_id", "tokenizer", "variant", "kind", "param", "metric", "mean", "ci_low",
                 "ci_high", "n", "n_total"])
    columns = [Column(m, metric_spec(m)) for m in _column_order(summary["metric"].unique(), metrics)]
    wanted = {c.metric for c in columns}
    reasons = _reasons(part) if len(part) else {}
    rows: dict[tuple[str, str], Row] = {}
    for rec in summary.to_dict(orient="records"):
        param = rec["param"]
        key = (rec["run_id"], repr(param))
        if key not in rows:
            info = meta.get(rec["run_id"], {})
            rows[key] = Row(
                run_id=rec["run_id"], tokenizer=str(rec["tokenizer"]), variant=str(rec["variant"]),
                kind=str(rec["kind"] or ""), label=str(rec["variant"]), param=param,
                kbps=_num(info.get("bitrate_nominal")) / 1000, token_rate=_num(info.get("token_rate")),
                status=str(info.get("status") or "complete"),
                family=_family(info, rec["tokenizer"]))
            if rows[key].status != "complete":  # e.g. "running": still going, or interrupted
                rows[key].status_reason = (f"run status is {rows[key].status!r}: the figures may "
                                           "cover only part of the data")
        if rec["metric"] in wanted:
            rows[key].cells[rec["metric"]] = Cell(
                mean=_num(rec["mean"]), ci_low=_num(rec["ci_low"]), ci_high=_num(rec["ci_high"]),
                n=int(rec["n"]), n_total=int(rec["n_total"]),
                reason=reasons.get((rec["run_id"], rec["metric"])) if int(rec["n"]) == 0 else None)
    recorded = recorded | {run_id for run_id, _ in rows}
    for info in run_part.to_dict(orient="records"):
        if info["run_id"] in recorded:
            continue
        # A run without records: unsupported (reason recorded) or not finished yet.
        status = str(info.get("status") or "unknown")
        reason = info.get("status_reason") or ("no records yet" if status != "unsupported" else None)
        rows[(info["run_id"], repr(None))] = Row(
            run_id=info["run_id"], tokenizer=str(info["tokenizer"]), variant=str(info["variant"]),
            kind=str(info.get("kind") or ""), label=str(info["variant"]),
            kbps=_num(info.get("bitrate_nominal")) / 1000, token_rate=_num(info.get("token_rate")),
            status=status, status_reason=reason,
            family=_family(info, info["tokenizer"]))
    ordered = sorted(rows.values(), key=lambda r: (
        _kind_rank(r.kind), r.tokenizer, r.kbps if math.isfinite(r.kbps) else math.inf,
        r.variant, r.run_id, _param_key(r.param)))
    _unique_labels(ordered, meta)
    table = ResultTable(task, dataset, protocol, columns, ordered, part=part_label)
    _mark_best(table)
    return table


def _family(info: dict, tokenizer: object) -> str:
    """The tokenizer's family from its meta; runs without meta (unsupported): the tokenizer."""
    family = info.get("family")
    return family if isinstance(family, str) and family else str(tokenizer)


def _param_key(param: object) -> tuple:
    """Numeric params in numeric order (256 before 1024), others after, as text."""
    if param is None:
        return (0, 0.0, "")
    try:
        return (1, float(param), "")  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return (2, 0.0, repr(param))


def _unique_labels(rows: list[Row], meta: dict) -> None:
    """The variant; runs of the same preset in another configuration get the options that
    differ (tokbench.report.labels). (The param has a column of its own.)"""
    from tokbench.report.labels import unique_labels

    unique_labels(rows, meta)


# ----------------------------------------------------------------------------- formatting

def fmt_number(x: float) -> str:
    """About three significant digits, never in exponent form (tables are read by people)."""
    if not math.isfinite(x):
        return ""
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax == 0:
        return "0"
    decimals = min(4, max(0, 2 - math.floor(math.log10(ax))))
    return f"{x:.{decimals}f}"


def fmt_rate(x: float) -> str:
    return fmt_number(x) if math.isfinite(x) else ""


def cell_parts(cell: Cell | None, column: Column) -> tuple[str, str, str]:
    """(mean, CI, n) texts of a cell; a gap is ('', '', '') and 'n/a' means nothing scored."""
    if cell is None:
        return "", "", ""
    n = f"n={cell.n}" if column.per_utterance else ""
    if not cell.scored:
        return "n/a", "", f"n=0/{cell.n_total}"
    ci = f"[{fmt_number(cell.ci_low)}, {fmt_number(cell.ci_high)}]" if cell.has_ci else ""
    return fmt_number(cell.mean), ci, n


def cell_text(cell: Cell | None, column: Column) -> str:
    return " ".join(p for p in cell_parts(cell, column) if p)


def row_status_text(row: Row) -> str:
    if row.status == "unsupported":
        return "not supported"
    if not row.cells and row.status != "complete":
        return row.status
    return ""
