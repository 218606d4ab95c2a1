"""Metrics: each module of this package declares its metrics and computes them (the metric kit,
:mod:`tokbench.metrics.kit`); tasks declare their own in their package's ``metrics`` module.

Reports, radar charts, comparisons and the validator read the declarations (direction, range,
unit, level, aggregation); nothing guesses from a metric's name. A name never changes meaning:
a new definition gets a new name. ``tokbench list metrics [--describe NAME]`` lists them.
"""

from __future__ import annotations

from tokbench.metrics.base import NotComputable
from tokbench.metrics.kit import (
    Aggregation,
    Category,
    Direction,
    Level,
    Metric,
    MetricSpec,
    ModelContext,
    Needs,
    SignalInput,
    all_metrics,
    declaration_of,
    declarations,
    declare,
    get_metric,
    registry,
    valid_range,
)

__all__ = ["NotComputable", "Aggregation", "Category", "Direction", "Level", "Metric", "MetricSpec",
           "ModelContext", "Needs", "SignalInput", "all_metrics", "declaration_of",
           "declarations", "declare", "get_metric", "registry", "valid_range"]
