"""How much a token sequence changes: unit edit distance (Gat et al., 2023) and code change rate.

- ``ued``: Levenshtein distance (insertions, deletions, substitutions, each cost 1) between the
  original's and the perturbed audio's token sequences, divided by the original's length. 0 =
  identical; random sequences over K codes give about 1 - 1/K or a little less (an edit
  distance never exceeds the longer length, and chance matches shorten it).
- ``ued_dedup``: the same after collapsing consecutive repeats in both sequences (what a speech
  LM over deduplicated units sees), divided by the collapsed original's length.
- ``code_change_rate``: for perturbations that keep the time axis (gain, additive noise, a
  sub-frame shift), the share of the original's frames whose code differs at the same frame
  index; frames one side lacks count as changed.

The distance is rapidfuzz's (bit-parallel Levenshtein, C++); sequences are any 1-D integer arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def dedup(seq: np.ndarray) -> np.ndarray:
    """``seq`` with every run of equal consecutive values collapsed to one value."""
    seq = np.asarray(seq)
    if len(seq) == 0:
        return seq
    keep = np.ones(len(seq), dtype=bool)
    keep[1:] = seq[1:] != seq[:-1]
    return seq[keep]


def edit_distance(a: np.ndarray, b: np.ndarray) -> int:
    """Levenshtein distance between two integer sequences (unit costs)."""
    from rapidfuzz.distance import Levenshtein

    return int(Levenshtein.distance(np.asarray(a).tolist(), np.asarray(b).tolist()))


@dataclass(frozen=True)
class Change:
    """Edit counts of one (original, perturbed) pair; the rates are ratios of these."""

    distance: int
    length: int  # original's length
    distance_dedup: int
    length_dedup: int
    changed: int  # frames whose code differs at the same index (time-aligned comparison)
    perturbed_length: int

    @property
    def ued(self) -> float | None:
        return self.distance / self.length if self.length else None

    @property
    def ued_dedup(self) -> float | None:
        return self.distance_dedup / self.length_dedup if self.length_dedup else None

    @property
    def code_change_rate(self) -> float | None:
        return self.changed / self.length if self.length else None


def frame_ids(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two ``[Q, F]`` code arrays as 1-D sequences of frame ids (one id per distinct frame of
    either), so that two frames are equal only if every codebook's code is."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"frame_ids needs two [Q, F] arrays with the same Q, got {a.shape}, {b.shape}")
    both = np.concatenate([a, b], axis=1).T
    if len(both) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    _, inverse = np.unique(both, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    return inverse[: a.shape[1]], inverse[a.shape[1]:]


def change(original: np.ndarray, perturbed: np.ndarray) -> Change:
    """Edit counts between an original and a perturbed 1-D token sequence."""
    a, b = np.asarray(original), np.asarray(perturbed)
    da, db = dedup(a), dedup(b)
    n = min(len(a), len(b))
    changed = int(np.count_nonzero(a[:n] != b[:n])) + max(0, len(a) - n)
    return Change(edit_distance(a, b), len(a), edit_distance(da, db), len(da), changed, len(b))
