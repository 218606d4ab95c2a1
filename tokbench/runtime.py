"""Where and how a process runs: its device, its GPU under torchrun, its progress display."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str) -> str:
    """``device`` if this machine can run on it; else an error that says why and what to do."""
    from tokbench.options import OptionError

    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else "a CUDA build, but no GPU is visible"
            raise OptionError(f"--device {device}: this torch ({torch.__version__}) is {build}; "
                              "use --device cpu, or install a CUDA build of torch on a GPU machine")
    elif device != "cpu" and not device.startswith("mps"):
        raise OptionError(f"--device {device}: expected cpu, cuda or cuda:N")
    return device


def rank_device(device: str) -> str:
    """Under torchrun each process of a node takes its own GPU (LOCAL_RANK), not GPU 0."""
    check_device(device)
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


@contextlib.contextmanager
def cpu_threads(n: int, device: str) -> Iterator[None]:
    """``torch.set_num_threads(n)`` for the block on CPU (n <= 0 or a GPU: unchanged), e.g. the
    training loops of the probe and lm tasks."""
    import torch

    if n <= 0 or not device.startswith("cpu"):
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
