"""Task ``lm``: a small causal LM trained on the tokens (``task``); the model, its windows and
trainer live in ``model``.

The task class is imported on first use (PEP 562), so that the package's ``metrics`` module (its
metric declarations, read by ``tokbench list metrics`` and the validator) loads without it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TokenLM"]


def __getattr__(name: str) -> Any:
    if name == "TokenLM":
        from tokbench.tasks.lm.task import TokenLM

        return TokenLM
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
