"""Task ``invariance``: token stability under perturbations (``task``); the perturbations
themselves live in ``perturbations``.

The task class is imported on first use (PEP 562), so that the package's ``metrics`` module (its
metric declarations, read by ``tokbench list metrics`` and the validator) loads without it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Invariance"]


def __getattr__(name: str) -> Any:
    if name == "Invariance":
        from tokbench.tasks.invariance.task import Invariance

        return Invariance
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
