"""What a task adds to the report, found through the task registry by the task name the results
store: the engine names no task.

A task's report module is ``report`` in the task's own package: for a task registered as
``pkg.task:Class`` (or as ``pkg:Class`` where ``pkg`` is a package) it is ``pkg.report``; a task
that is a single module has none. The module may define:

- ``CHARTS``: ``{name: (caption, figure)}``, charts of the task's main table;
- ``PARAM_CHARTS``: ``{metric: {name: (caption, figure)}}``, charts of the task's tables by param
  that hold ``metric``;

where ``figure(table, colours=None)`` returns a matplotlib figure or raises
``tokbench.report.charts.ChartUnavailable`` with the reason. Importing a report module must not
load the task class (a task package imports it lazily), so reports never import torch.
"""

from __future__ import annotations

import importlib
import importlib.util
from functools import cache
from types import ModuleType
from typing import Any

from tokbench.registry import UnknownNameError, package_module, tasks

REPORT_MODULE = "report"


def report_module_name(target: str) -> str | None:
    """The report module of a task registered under ``target`` (``module:Class``), or None for a
    single-module task (or a file target)."""
    return package_module(target, REPORT_MODULE)


@cache
def task_report(task: str) -> ModuleType | None:
    """The report module of the task called ``task`` in the results (None: the task adds
    nothing, or is not registered here, e.g. ``score`` or a task of a package not installed)."""
    try:
        entry = tasks.get(task)
    except UnknownNameError:
        return None
    name = report_module_name(entry.target)
    if name is None:
        return None
    try:
        if importlib.util.find_spec(name) is None:
            return None
    except (ImportError, ValueError):
        return None
    return importlib.import_module(name)


def task_charts(task: str) -> dict[str, Any]:
    """The charts a task adds to its main table: ``{name: (caption, figure)}``."""
    return dict(getattr(task_report(task), "CHARTS", {}))


def task_param_charts(task: str, metrics: set[str]) -> dict[str, Any]:
    """The charts a task adds to one of its tables by param holding ``metrics``."""
    by_metric = getattr(task_report(task), "PARAM_CHARTS", {})
    return {name: chart for metric, charts in by_metric.items() if metric in metrics
            for name, chart in charts.items()}
