"""Notices said once per process: a model that is not available, a setting that changes numbers.

A run of many utterances (or a sweep of many runs in one process) would otherwise repeat the same
line for every batch, task and run. :func:`once` prints a notice the first time its key is seen
and remembers the reason it gave, so the run's closing account can point back to it
(:func:`said`) instead of printing the same long reason again.
"""

from __future__ import annotations

from collections.abc import Callable

_said: dict[str, str] = {}  # key -> the reason the notice gave


def once(key: str, message: str, log: Callable[[str], None], reason: str | None = None) -> bool:
    """``log(message)`` unless a notice with ``key`` was said in this process; True if said
    now. ``reason`` (default: the message) is remembered for :func:`said`."""
    if key in _said:
        return False
    _said[key] = reason or message
    log(message)
    return True


def said(reason: str) -> bool:
    """Whether a notice of this process gave ``reason``."""
    return reason in _said.values()


def forget() -> None:
    """Forget every notice (tests; a long-lived process that wants them said again)."""
    _said.clear()
