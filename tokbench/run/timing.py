"""Timing model calls: GPU work is synchronised around the clock so seconds are real."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: str) -> tuple[Any, float]:
    """Run ``fn`` and return (result, seconds), synchronising the GPU around it."""
    _sync(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = fn()
    _sync(device)
    return out, time.perf_counter() - t0
