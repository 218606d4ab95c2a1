"""Where and how a process runs: its device, its GPU under torchrun, its progress display."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def rank_device(device: str) -> str:
    """Under torchrun each process of a node takes its own GPU (LOCAL_RANK), not GPU 0."""
    if device == "cuda" and "LOCAL_RANK" in os.environ:
        import torch

        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
        torch.cuda.set_device(device)
    return device


def progress_display(enabled: bool) -> Callable[..., Iterable]:
    def progress(iterable: Iterable, total: int | None = None, desc: str = "") -> Iterable:
        if not enabled:
            return iterable
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit="utt", dynamic_ncols=True, leave=False)

    return progress
