"""One on-disk cache for tokens, decoded audio and reference-side features.

Keys hash everything that determines the cached value: the adapter name, its resolved
revision, its options, the dataset and its revision, the resampler and the protocol version
(plus whatever the caller adds), so one model's outputs can never be served as another's.
Location: ``$TOKBENCH_CACHE`` or ``~/.cache/tokbench``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tokbench.io.audio import RESAMPLER
from tokbench.io.files import atomic_write as _atomic_write
from tokbench.options import stable_hash
from tokbench.protocol import PROTOCOL_VERSION

if TYPE_CHECKING:  # torch is imported where tensors are cached: metric workers need no torch
    import torch


def cache_root() -> Path:
    env = os.environ.get("TOKBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tokbench"


class Cache:
    def __init__(self, root: str | Path | None = None, enabled: bool = True):
        self.root = Path(root) if root is not None else cache_root()
        self.enabled = enabled

    @staticmethod
    def key(**parts: Any) -> str:
        """Hash of ``parts`` plus the resampler and protocol version."""
        return stable_hash({**parts, "_resampler": RESAMPLER, "_protocol": PROTOCOL_VERSION}, 32)

    def path(self, kind: str, key: str, suffix: str) -> Path:
        return self.root / kind / key[:2] / f"{key}{suffix}"

    # Tensors (tokens, decoded audio): torch.save of plain tensors, loaded with weights_only.
    def load_tensors(self, kind: str, key: str) -> dict[str, torch.Tensor] | None:
        p = self.path(kind, key, ".pt")
        if not self.enabled or not p.is_file():
            return None
        import torch

        try:
            return torch.load(p, map_location="cpu", weights_only=True)
        except Exception:  # a torn or foreign file is a miss, and gets rewritten
            return None

    def save_tensors(self, kind: str, key: str, tensors: dict[str, torch.Tensor]) -> None:
        if self.enabled:
            import torch

            _atomic_write(self.path(kind, key, ".pt"), lambda fh: torch.save(tensors, fh))

    # Arrays (F0 contours, embeddings).
    def load_array(self, kind: str, key: str) -> np.ndarray | None:
        p = self.path(kind, key, ".npy")
        if not self.enabled or not p.is_file():
            return None
        try:
            return np.load(p, allow_pickle=False)
        except (ValueError, OSError):
            return None

    def save_array(self, kind: str, key: str, array: np.ndarray) -> None:
        if self.enabled:
            _atomic_write(self.path(kind, key, ".npy"), lambda fh: np.save(fh, array, allow_pickle=False))

    # JSON (transcriptions, small records).
    def load_json(self, kind: str, key: str) -> Any | None:
        p = self.path(kind, key, ".json")
        if not self.enabled or not p.is_file():
            return None
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            return None

    def save_json(self, kind: str, key: str, value: Any) -> None:
        if self.enabled:
            data = json.dumps(value, allow_nan=False, sort_keys=True).encode()
            _atomic_write(self.path(kind, key, ".json"), lambda fh: fh.write(data))
