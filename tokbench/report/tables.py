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
KINDS = ("reference", "classic", "acoustic", "semantic", "hybrid")
KIND_LABELS = {"reference": "ground truth", "classic": "classic codecs", "acoustic": "acoustic",
               "semantic": "semantic", "hybrid": "hybrid"}


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

    def comparable_by_param(self, table: ResultTable) -> bool:
        """Whether rows of one param may compete for best in this column: not for statistics of
        one codebook in a by-param table (the same index means different things per run)."""
        return not (table.part and self.spec is not None and self.spec.category == "statistic")

    @property
    def header(self) -> str:
        return f"{self.metric} {self.arrow}".strip()


@dataclass
class Cell:
    mean: float
    ci_low: float
    ci_high: float
    n: int  # utterances scored
    n_total: int  # N: utterances of the table's set (for per-utterance metrics; else records)
    reason: str | None = None  # why nothing was scored (most common reason), when n == 0
    best: bool = False
    # Scored on another utterance set than the rows compared for "best" (fewer, or others):
    # flagged in every output and never marked best. ``coverage`` says how, e.g. "30 of 32".
    partial: bool = False
    coverage: str = ""

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
    # The run scored a subset of the dataset (--limit), e.g. "8 of 32 utterances of the dataset".
    selection_note: str | None = None

    @property
    def partial(self) -> bool:
        """Some cell was scored on another utterance set than the rows it is compared with, or
        the run covers only part of the dataset: flagged in every output format."""
        return self.selection_note is not None or any(c.partial for c in self.cells.values())

    @property
    def coverage_note(self) -> str:
        """Why the row is flagged partial ("" when it is not)."""
        parts = [self.selection_note] if self.selection_note else []
        cols = [f"{m} {c.coverage}" for m, c in self.cells.items() if c.partial]
        if cols:
            parts.append("scored on other utterances than the rows compared: " + ", ".join(cols))
        return "; ".join(parts)

    @property
    def supported(self) -> bool:
        return self.status != "unsupported"

    @property
    def is_reference(self) -> bool:
        return self.kind == "reference"

    @property
    def partial_selection(self) -> bool:
        return self.selection_note is not None


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
    # The dataset's content fingerprint: tables are keyed by it, so two datasets of one name
    # (e.g. a regenerated sample set) are never one table; shown when a name has several.
    dataset_revision: str = ""
    show_revision: bool = False

    @property
    def dataset_label(self) -> str:
        if self.show_revision and self.dataset_revision:
            return f"{self.dataset} (revision {self.dataset_revision[:8]})"
        return self.dataset

    @property
    def title(self) -> str:
        base = f"{self.task} on {self.dataset_label} (protocol {self.protocol_id})"
        return f"{base}: {self.part} by param" if self.part else base

    @property
    def slug(self) -> str:
        import re

        part = f"-{self.part.split(',')[0]}-by-param" if self.part else ""
        rev = f"-{self.dataset_revision[:8]}" if self.show_revision and self.dataset_revision else ""
        return re.sub(r"[^A-Za-z0-9._-]+", "_",
                      f"{self.task}-{self.dataset}{rev}-{self.protocol_id}{part}")

    @property
    def has_param(self) -> bool:
        return any(r.param is not None for r in self.rows)

    @property
    def partial_rows(self) -> list[Row]:
        return [r for r in self.rows if r.partial]

    @property
    def scored_sets(self) -> dict[tuple[str, str, str], frozenset]:
        """(run_id, repr(param), metric) -> the utterance ids scored (a non-null value)."""
        if self.data is None or self.data.empty:
            return {}
        cached = getattr(self, "_scored_sets", None)
        if cached is not None:
            return cached
        d = self.data[self.data["utterance_id"].notna() & self.data["value"].notna()]
        out: dict[tuple[str, str, str], frozenset] = {}
        keyed = d.assign(_p=d["param"].map(repr))
        for (run_id, p, metric), g in keyed.groupby(["run_id", "_p", "metric"], sort=False):
            out[(str(run_id), str(p), str(metric))] = frozenset(g["utterance_id"])
        object.__setattr__(self, "_scored_sets", out)
        return out


def metric_spec(name: str) -> MetricSpec | None:
    try:
        return get_metric(name)
    except UnknownNameError:
        return None


def metric_level_utterance(name: str) -> bool:
    spec = metric_spec(name)
    return spec is None or spec.level == "utterance"


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

    Rows compete only when scored on the same utterances: per column (and param) the rows are
    grouped by the exact set of utterances they scored, and only the largest group (most rows,
    then most utterances) competes; the other rows are flagged partial (``Cell.partial``). A
    decoder whose failures are "not computable" drops those utterances: it is flagged, never
    starred. In a by-param table rows compete only with rows of the same param: the best
    tokenizer at one vocabulary size or seed, never one seed of a run against another; and
    statistics of one codebook (category "statistic", param = codebook index) are never starred,
    as codebook 3 of one tokenizer (a byte position of an Opus packet) and codebook 3 of another
    are different things.
    """
    scored_sets = table.scored_sets
    for col in table.columns:
        groups: dict[str, list[tuple[Row, Cell]]] = {}
        for r in table.rows:
            if col.metric in r.cells and r.cells[col.metric].scored:
                groups.setdefault(repr(r.param), []).append((r, r.cells[col.metric]))
        for pairs in groups.values():
            by_set: dict[frozenset, list[tuple[Row, Cell]]] = {}
            for r, cell in pairs:
                key = scored_sets.get((r.run_id, repr(r.param), col.metric))
                by_set.setdefault(key if key is not None else frozenset(), []).append((r, cell))
            if col.per_utterance and len(by_set) > 1:
                main = max(by_set, key=lambda k: (sum(not r.is_reference for r, _ in by_set[k]),
                                                  len(k)))
                for key, members in by_set.items():
                    if key == main:
                        continue
                    for _, cell in members:
                        shared = len(key & main)
                        cell.partial = True
                        cell.coverage = (f"{cell.n} of {cell.n_total}; {shared} shared with the "
                                         f"{len(main)} of the rows compared")
                pairs = by_set[main]
            if col.direction not in ("higher", "lower") or not col.comparable_by_param(table):
                continue
            cells = [cell for r, cell in pairs if not r.is_reference]
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
    keys: set[tuple[str, str, str, str]] = set()
    for frame in (df, runs):
        if len(frame):
            for t, d, r, p in zip(frame["task"].astype(str), frame["dataset"].astype(str),
                                  _revisions(frame), frame["protocol_id"].astype(str), strict=True):
                keys.add((t, d, r, p))
    names: dict[tuple[str, str], set[str]] = {}
    for t, d, r, _ in keys:
        names.setdefault((t, d), set()).add(r)
    tables = []
    for task, dataset, revision, protocol in sorted(keys):
        part = df[(df["task"].astype(str) == task) & (df["dataset"].astype(str) == dataset)
                  & (_revisions(df) == revision) & (df["protocol_id"].astype(str) == protocol)]
        run_part = runs[(runs["task"].astype(str) == task) & (runs["dataset"].astype(str) == dataset)
                        & (_revisions(runs) == revision)
                        & (runs["protocol_id"].astype(str) == protocol)] if len(runs) else runs
        has_param = part["param"].notna()
        group = []
        main = _build_one(task, dataset, protocol, part[~has_param], run_part, meta, metrics,
                          recorded=set(part["run_id"]), data=part)
        group.append(main)
        by_param = part[has_param]
        for family in _families(by_param):
            rows = by_param[by_param["metric"].isin(family)]
            group.append(_build_one(task, dataset, protocol, rows, run_part.iloc[0:0], meta, metrics,
                                    recorded=set(), part_label=", ".join(_column_order(family, metrics)),
                                    data=part))
        for table in group:
            table.dataset_revision = revision
            table.show_revision = len(names[(task, dataset)]) > 1
        tables += [t for t in group if t.rows]
    # Per task and dataset: the protocol with the most runs first (usually the current one),
    # and within a protocol the main table before its by-param tables.
    n_runs: dict[tuple[str, str, str, str], set[str]] = {}
    for t in tables:
        n_runs.setdefault((t.task, t.dataset, t.dataset_revision, t.protocol_id),
                          set()).update(r.run_id for r in t.rows)
    return sorted(tables, key=lambda t: (
        t.task, t.dataset, t.dataset_revision,
        -len(n_runs[(t.task, t.dataset, t.dataset_revision, t.protocol_id)]),
        t.protocol_id, t.part != "", t.part))


def _revisions(frame: pd.DataFrame) -> pd.Series:
    """The dataset revision of each row ("" where the frame does not say)."""
    if "dataset_revision" not in frame.columns:
        return pd.Series("", index=frame.index, dtype=str)
    return frame["dataset_revision"].map(lambda v: "" if v is None or v != v else str(v))


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


def _universe(part: pd.DataFrame) -> dict[tuple[str, str], int]:
    """(repr(param), metric) -> N: the utterances any row of the table recorded the metric for."""
    d = part[part["utterance_id"].notna()]
    if d.empty:
        return {}
    keyed = d.assign(_p=d["param"].map(repr))
    return {(str(p), str(m)): int(g["utterance_id"].nunique())
            for (p, m), g in keyed.groupby(["_p", "metric"], sort=False)}


def _selection_note(info: dict) -> str | None:
    """ "8 of 32 utterances of the dataset (--limit)" when the run covered only part of it."""
    sel, full = info.get("n_selected"), info.get("n_dataset")
    try:
        sel, full = int(sel), int(full)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if sel < full:
        return f"ran on {sel} of the dataset's {full} utterances (--limit)"
    return None


def _build_one(task, dataset, protocol, part, run_part, meta, metrics, recorded: set,
               part_label: str = "", data: pd.DataFrame | None = None) -> ResultTable:
    summary = summarize(part) if len(part) else pd.DataFrame(
        columns=["run_id", "tokenizer", "variant", "kind", "param", "metric", "mean", "ci_low",
                 "ci_high", "n", "n_total"])
    columns = [Column(m, metric_spec(m)) for m in _column_order(summary["metric"].unique(), metrics)]
    wanted = {c.metric for c in columns}
    reasons = _reasons(part) if len(part) else {}
    universe = _universe(part) if len(part) else {}
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
                family=_family(info, rec["tokenizer"]),
                selection_note=_selection_note(info))
            if rows[key].status != "complete":  # e.g. "running": still going, or interrupted
                rows[key].status_reason = (f"run status is {rows[key].status!r}: the figures may "
                                           "cover only part of the data")
        if rec["metric"] in wanted:
            rows[key].cells[rec["metric"]] = Cell(
                mean=_num(rec["mean"]), ci_low=_num(rec["ci_low"]), ci_high=_num(rec["ci_high"]),
                n=int(rec["n"]),
                n_total=max(int(rec["n_total"]), universe.get((repr(param), rec["metric"]), 0))
                if metric_level_utterance(rec["metric"]) else int(rec["n_total"]),
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
    table = ResultTable(task, dataset, protocol, columns, ordered, part=part_label, data=data)
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


PARTIAL_MARK = "†"  # a cell or row scored on other utterances than the rows it is compared with


def cell_parts(cell: Cell | None, column: Column) -> tuple[str, str, str]:
    """(mean, CI, n) texts of a cell; a gap is ('', '', '') and 'n/a' means nothing scored.

    n reads "n=scored/N" (N: the utterances of the table's set), with a dagger when the cell was
    scored on another utterance set than the rows compared for "best"."""
    if cell is None:
        return "", "", ""
    mark = PARTIAL_MARK if cell.partial else ""
    n = f"n={cell.n}/{cell.n_total}{mark}" if column.per_utterance else ""
    if not cell.scored:
        return "n/a", "", f"n=0/{cell.n_total}"
    ci = f"[{fmt_number(cell.ci_low)}, {fmt_number(cell.ci_high)}]" if cell.has_ci else ""
    return fmt_number(cell.mean), ci, n


def row_label(row: Row) -> str:
    """The row's label, with a dagger when the row has partial coverage (see its footnote)."""
    return f"{row.label} {PARTIAL_MARK}" if row.partial else row.label


def cell_text(cell: Cell | None, column: Column) -> str:
    return " ".join(p for p in cell_parts(cell, column) if p)


def row_status_text(row: Row) -> str:
    if row.status == "unsupported":
        return "not supported"
    if not row.cells and row.status != "complete":
        return row.status
    return ""
