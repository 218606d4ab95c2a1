"""Deterministic train / dev / test splits for tasks that train something (e.g. the probe).

Splits depend only on the item ids, the group labels, the fractions and a seed: never on the
order in which a dataset lists its files, nor on Python's hash seed. Each id's place in the
shuffled order is the SHA-256 of ``"<seed>:<id>"``.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class SplitError(ValueError):
    """The items cannot be split as asked (too few of them); the message says how many there are."""


def stable_order(ids: Iterable[str], seed: int) -> list[str]:
    """``ids`` in a pseudo-random order fixed by ``seed`` (the same on every machine)."""
    return sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))  # half up (Python's round() is half-to-even)


def split_sizes(n: int, dev_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """(train, dev, test) counts for ``n`` items: at least one test and one train item; at least
    one dev item when ``dev_fraction`` > 0 and three or more items exist."""
    if n < 2:
        raise SplitError(f"cannot split {n} item(s) into train and test: at least 2 are needed")
    n_test = min(max(1, _round(n * test_fraction)), n - 1)
    rest = n - n_test
    n_dev = _round(n * dev_fraction)
    if dev_fraction > 0 and n_dev == 0 and rest >= 2:
        n_dev = 1
    n_dev = min(n_dev, rest - 1)
    return rest - n_dev, n_dev, n_test


def id_digest(ids: Iterable[str]) -> str:
    """Short hash of a set of ids (order-free), to recognise a split without listing it."""
    h = hashlib.sha256()
    for i in sorted(ids):
        h.update(i.encode() + b"\0")
    return h.hexdigest()[:12]


@dataclass(frozen=True)
class Split:
    train: tuple[str, ...]
    dev: tuple[str, ...]
    test: tuple[str, ...]
    excluded: Mapping[str, str] = field(default_factory=dict)  # id -> why it is in no part
    how: str = ""  # e.g. "within speaker" or "by utterance"
    seed: int = 0

    def describe(self) -> dict[str, Any]:
        """Sizes, seed and digests (for records); :meth:`to_dict` has the full lists."""
        return {"how": self.how, "seed": self.seed, "n_train": len(self.train),
                "n_dev": len(self.dev), "n_test": len(self.test), "n_excluded": len(self.excluded),
                "digest": {"train": id_digest(self.train), "dev": id_digest(self.dev),
                           "test": id_digest(self.test)}}

    def to_dict(self) -> dict[str, Any]:
        return {**self.describe(), "train": list(self.train), "dev": list(self.dev),
                "test": list(self.test), "excluded": dict(self.excluded)}


def split_items(
    ids: Sequence[str], *, dev_fraction: float, test_fraction: float, seed: int
) -> Split:
    """Split items independently of any grouping (e.g. a content probe: by utterance)."""
    order = stable_order(ids, seed)
    n_train, n_dev, n_test = split_sizes(len(order), dev_fraction, test_fraction)
    return Split(train=tuple(order[n_test + n_dev:]), dev=tuple(order[n_test:n_test + n_dev]),
                 test=tuple(order[:n_test]), how="by item", seed=seed)


def split_within_groups(
    groups: Mapping[str, str], *, dev_fraction: float, test_fraction: float, seed: int
) -> Split:
    """Split each group's items (``groups``: id -> group, e.g. speaker) so that every group
    appears in train and test (closed-set identification). Groups with one item are excluded."""
    members: dict[str, list[str]] = defaultdict(list)
    for item, group in groups.items():
        members[group].append(item)
    train: list[str] = []
    dev: list[str] = []
    test: list[str] = []
    excluded: dict[str, str] = {}
    for group in sorted(members):
        order = stable_order(members[group], seed)
        if len(order) < 2:
            for item in order:
                excluded[item] = f"group {group!r} has only {len(order)} item(s); 2 are needed"
            continue
        n_train, n_dev, n_test = split_sizes(len(order), dev_fraction, test_fraction)
        test += order[:n_test]
        dev += order[n_test:n_test + n_dev]
        train += order[n_test + n_dev:]
    return Split(tuple(train), tuple(dev), tuple(test), excluded, how="within group", seed=seed)


def cap_per_group(groups: Mapping[str, str | None], cap: int, seed: int) -> list[str]:
    """At most ``cap`` ids per group (a seeded choice); ids whose group is None are all kept.
    ``cap`` <= 0 keeps everything. Returns ids in the mapping's order."""
    if cap <= 0:
        return list(groups)
    members: dict[str, list[str]] = defaultdict(list)
    for item, group in groups.items():
        if group is not None:
            members[group].append(item)
    keep = {i for ids in members.values() for i in stable_order(ids, seed)[:cap]}
    return [i for i, g in groups.items() if g is None or i in keep]


def split_groups(
    groups: Mapping[str, str | None], *, dev_fraction: float, test_fraction: float, seed: int
) -> Split:
    """Split whole groups (``groups``: id -> group, e.g. speaker): every group's items land in
    one part, so test speakers are unseen in training (e.g. a token LM). The groups are ordered
    by the hash of ``"<seed>:<group>"`` and counted by :func:`split_sizes`; an id whose group is
    None is a group of its own."""
    members: dict[str, list[str]] = defaultdict(list)
    for item, group in groups.items():
        members[f"speaker:{group}" if group is not None else f"item:{item}"].append(item)
    order = stable_order(members, seed)
    try:
        n_train, n_dev, n_test = split_sizes(len(order), dev_fraction, test_fraction)
    except SplitError as exc:
        raise SplitError(f"{exc} (groups, e.g. speakers)") from None

    def items(part: list[str]) -> tuple[str, ...]:
        return tuple(i for g in part for i in sorted(members[g]))

    return Split(train=items(order[n_test + n_dev:]), dev=items(order[n_test:n_test + n_dev]),
                 test=items(order[:n_test]), how="by group", seed=seed)
