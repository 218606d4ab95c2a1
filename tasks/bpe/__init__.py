"""Task ``bpe``: acoustic BPE and deduplication (``task``) over the merges of ``merges``."""

from tokbench.tasks.bpe.task import BPEStudy

__all__ = ["BPEStudy"]
