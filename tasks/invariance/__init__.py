"""Task ``invariance``: token stability under perturbations (``task``); the perturbations
themselves live in ``perturbations``."""

from tokbench.tasks.invariance.task import Invariance

__all__ = ["Invariance"]
