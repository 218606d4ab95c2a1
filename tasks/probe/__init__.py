"""Task ``probe``: lightweight heads on frozen tokens (``task``); heads live in ``heads``."""

from tokbench.tasks.probe.task import Probe

__all__ = ["Probe"]
