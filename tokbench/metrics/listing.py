"""What ``tokbench list metrics`` prints, from the declarations alone (no metric runs, no model
loads): a table of every metric, and ``--describe NAME``: everything its declaration says."""

from __future__ import annotations

import json
from typing import Any

from tokbench.metrics.kit import Metric, MetricSpec, all_metrics, declaration_of, registry


def metric_rows() -> list[dict[str, str]]:
    """One row per declared metric, in listing order."""
    from tokbench.metrics.selection import default_selection

    default = set(default_selection())
    rows = []
    for spec in all_metrics():
        decl = declaration_of(spec.name)
        groups = ", ".join(spec.groups) + (" (default)" if spec.name in default else "")
        rows.append({"metric": spec.name, "better": f"{spec.direction} {spec.arrow}".strip(),
                     "range": spec.range_text(), "unit": spec.unit, "level": spec.level,
                     "aggregation": spec.aggregation, "group": groups,
                     "runs": _runs(decl), "description": spec.description})
    return rows


def broken_modules() -> dict[str, str]:
    """Metric modules that failed to import (their metrics are missing), with why."""
    registry.names()
    return dict(registry.broken)


def _runs(decl: Metric) -> str:
    return {"worker": "worker", "model": "model", "recorded": "by the run"}[decl.where]


def _needs(decl: Metric, name: str) -> str:
    n = decl.needs_for(name)
    parts = ["the output"]
    if n.reference:
        parts.append("the reference audio")
    if n.transcript:
        parts.append("the reference transcript")
    text = ", ".join(parts)
    if n.speech:
        text += "; speech only"
    if n.sample_rate:
        text += f"; built for {n.sample_rate} Hz audio"
    return text


def describe(name: str) -> list[tuple[str, str]]:
    """(field, text) pairs of everything metric ``name``'s declaration says. Raises
    :class:`tokbench.registry.UnknownNameError` (with a suggestion) for an unknown name."""
    spec: MetricSpec = registry.get(name)
    decl = declaration_of(name)
    rows: list[tuple[str, str]] = [
        ("metric", spec.name), ("measures", spec.description),
        ("better", {"higher": "higher", "lower": "lower"}.get(spec.direction,
                                                              "no direction (descriptive)")),
        ("unit", spec.unit or "-"), ("chart range", spec.range_text() or "none"),
        ("valid values", _valid(spec)), ("level", spec.level),
        ("aggregation", spec.aggregation + (f" x {spec.scale:g}" if spec.scale != 1 else "")),
        ("category", spec.category),
        ("groups", ", ".join(spec.groups) or "none (not selectable with --metrics)"),
        ("default", "yes" if spec.default else "no"),
        ("needs", _needs(decl, name) if decl.where != "recorded" else "recorded by the run"),
        ("runs on", decl.device),
        ("declared in", decl.module + ("" if decl.origin == "builtin" else f" ({decl.origin})")),
    ]
    others = [n for n in decl.names if n != name]
    if others:
        rows.append(("computed with", ", ".join(others)))
    if decl.implementation:
        rows.append(("implementation", decl.implementation))
    if decl.packages:
        rows.append(("packages", ", ".join(decl.packages)))
    if decl.protocol:
        rows.append(("protocol", json.dumps(decl.protocol, sort_keys=True, default=str)))
    rows.append(("weights", _weights(decl)))
    if decl.license:
        rows.append(("licence", decl.license))
    if decl.citation:
        rows.append(("citation", decl.citation))
    return rows


def _valid(spec: MetricSpec) -> str:
    lo, hi = spec.valid_range
    inf = float("inf")
    if lo in (None, -inf) and hi in (None, inf):
        return "any finite number"
    return f"[{'-inf' if lo in (None, -inf) else f'{lo:g}'}, {'inf' if hi in (None, inf) else f'{hi:g}'}]"


def _weights(decl: Metric) -> str:
    if decl.weights is None:
        return "none to fetch"
    try:
        assets: list[Any] = decl.weights("describe")
    except Exception as exc:  # listing must never fail on one metric's assets
        return f"could not be listed: {type(exc).__name__}: {exc}"
    return "; ".join(f"{a.source} ({a.checksum})" if a.checksum else a.source for a in assets)
