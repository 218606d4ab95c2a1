"""Task ``probe``: lightweight heads on frozen tokens (``task``); heads live in ``heads``.

The task class is imported on first use (PEP 562), so that the package's ``metrics`` module (its
metric declarations, read by ``tokbench list metrics`` and the validator) loads without it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Probe"]


def __getattr__(name: str) -> Any:
    if name == "Probe":
        from tokbench.tasks.probe.task import Probe

        return Probe
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
