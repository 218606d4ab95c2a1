"""Task ``bpe``: acoustic BPE and deduplication (``task``) over the merges of ``merges``.

The task class is imported on first use (PEP 562), so that the package's ``metrics`` module (its
metric declarations, read by ``tokbench list metrics`` and the validator) loads without it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BPEStudy"]


def __getattr__(name: str) -> Any:
    if name == "BPEStudy":
        from tokbench.tasks.bpe.task import BPEStudy

        return BPEStudy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
