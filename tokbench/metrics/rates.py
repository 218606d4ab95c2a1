"""Token rate and bitrates measured from the actual token tensors (DESIGN.md section 4).

- ``bitrate_nominal`` comes from the tokenizer: ``TokenizerMeta.bitrate_nominal``
  (frame_rate x sum of log2(codebook size)).
- ``bitrate_entropy`` = frame_rate x sum over codebooks of the empirical unigram entropy in
  bits, over the whole corpus: count codes per utterance with :func:`codebook_counts`, add the
  counts up with :func:`sum_counts`, then call :func:`bitrate_entropy` once.
- ``token_rate`` = tokens (all codebooks) per second of audio, per utterance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tokbench.metrics.base import NotComputable
from tokbench.metrics.bootstrap import entropy_bits


def codebook_counts(codes: Any, sizes: Sequence[int]) -> list[np.ndarray]:
    """Code counts of one utterance: ``codes`` is [Q, F] (valid frames only: slice off the
    padding first), numpy or torch; ``sizes[q]`` is codebook q's size. Returns one int64 array
    of length ``sizes[q]`` per codebook. A code outside [0, size) is a ValueError."""
    c = np.asarray(codes.cpu() if hasattr(codes, "cpu") else codes)
    if c.ndim != 2:
        raise ValueError(f"codes must be [Q, F], got shape {c.shape}")
    if c.shape[0] != len(sizes):
        raise ValueError(f"codes have {c.shape[0]} codebooks but {len(sizes)} sizes were given")
    if c.size and not np.issubdtype(c.dtype, np.integer):
        raise ValueError(f"codes must be integers, got {c.dtype}")
    counts = []
    for q, size in enumerate(sizes):
        row = c[q].astype(np.int64, copy=False)
        if row.size and (row.min() < 0 or row.max() >= size):
            raise ValueError(f"codebook {q}: codes must lie in [0, {size}), found "
                             f"[{row.min()}, {row.max()}]")
        counts.append(np.bincount(row, minlength=int(size)).astype(np.int64))
    return counts


def sum_counts(per_utterance: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
    """Element-wise sum of several :func:`codebook_counts` results (corpus counts)."""
    if not per_utterance:
        raise NotComputable("no utterance was tokenized")
    total = [np.array(c, dtype=np.int64, copy=True) for c in per_utterance[0]]
    for counts in per_utterance[1:]:
        if len(counts) != len(total) or any(len(a) != len(b) for a, b in zip(counts, total, strict=True)):
            raise ValueError("code counts of different codebook layouts cannot be added")
        for a, b in zip(total, counts, strict=True):
            a += b
    return total


def bitrate_entropy(frame_rate: float, counts_per_codebook: Sequence[np.ndarray]) -> float:
    """frame_rate (Hz) x sum over codebooks of the unigram entropy (bits) of its code counts.
    Uniform counts over K codes give frame_rate x log2(K) per codebook. NotComputable if a
    codebook has no counts."""
    if frame_rate <= 0:
        raise ValueError(f"frame_rate must be positive, got {frame_rate}")
    if len(counts_per_codebook) == 0:
        raise NotComputable("no codebooks")
    bits = 0.0
    for q, counts in enumerate(counts_per_codebook):
        counts = np.asarray(counts)
        if counts.sum() <= 0:
            raise NotComputable(f"codebook {q} has no codes counted (no frames)")
        bits += entropy_bits(counts)
    return float(frame_rate * bits)


def token_rate(n_tokens: int, seconds: float) -> float:
    """Tokens per second of audio; ``n_tokens`` counts every codebook (Q x valid frames).
    NotComputable for audio of zero duration."""
    if n_tokens < 0:
        raise ValueError(f"n_tokens must be non-negative, got {n_tokens}")
    if not seconds > 0:
        raise NotComputable(f"the audio lasts {seconds} s: no rate")
    return float(n_tokens / seconds)
