"""Shared fixtures. Tests are offline, deterministic and need no GPU."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own tokbench cache so no test sees another's cached values."""
    monkeypatch.setenv("TOKBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run far faster on one torch thread than on two contended ones on a shared,
    busy 2-core machine (measured ~10x less wall time at load ~10); restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """Adapter class -> (folder, checkpoint) of its tiny checkpoint (``build_tiny_checkpoint``,
    declared beside the adapter), built once per test session."""
    built: dict[type, tuple] = {}

    def get(cls: type) -> tuple:
        if cls not in built:
            folder = tmp_path_factory.mktemp(cls.__name__)
            built[cls] = folder, cls.build_tiny_checkpoint(folder)
        return built[cls]

    return get


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def tone(freq: float = 220.0, seconds: float = 1.0, sr: int = 16000, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
