"""Task ``vc``: voice conversion with another speaker's prompt (``task``).

The task class is imported on first use (PEP 562), so that the package's ``metrics`` module (its
metric declarations, read by ``tokbench list metrics`` and the validator) loads without it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["VoiceConversion"]


def __getattr__(name: str) -> Any:
    if name == "VoiceConversion":
        from tokbench.tasks.vc.task import VoiceConversion

        return VoiceConversion
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
