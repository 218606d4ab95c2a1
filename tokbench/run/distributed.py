"""Sharding over processes started by torchrun (or anything that sets RANK and WORLD_SIZE)."""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")


def rank_and_world() -> tuple[int, int]:
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is outside WORLD_SIZE={world}")
    return rank, world


def shard(items: list[T], rank: int, world: int) -> list[T]:
    """Every world-th item starting at rank: balanced for length-sorted lists."""
    return items[rank::world]


def barrier() -> None:
    """Wait for all ranks (no-op for a single process)."""
    _, world = rank_and_world()
    if world == 1:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    dist.barrier()
