"""One on-disk cache for tokens, decoded audio and reference-side features.

Keys hash everything that determines the cached value: the adapter name, its resolved
revision, its options and code version, the dataset and its revision, the resampler, the
versions of the libraries computing the value and the protocol version (plus whatever the
caller adds), so one model's outputs can never be served as another's.
Location: ``$TOKBENCH_CACHE`` or ``~/.cache/tokbench``.

Every entry carries its own key and a SHA-256 checksum of its value, verified on read (and a
caller's ``check`` of the value's shape and range): an entry stored under another key (a file
copied from another utterance), edited or planted by hand, torn, empty, or of the wrong shape is
a miss. It is reported (``Cache.rejected`` and a line on stderr), moved aside to
``<kind>/rejected/`` (never deleted: the cache may not have written it) and recomputed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tokbench.io.audio import RESAMPLER
from tokbench.io.files import atomic_write as _atomic_write
from tokbench.options import stable_hash
from tokbench.protocol import PROTOCOL_VERSION

if TYPE_CHECKING:  # torch is imported where tensors are cached: metric workers need no torch
    import torch

FORMAT = 2  # the entry layout below; entries of other layouts are misses
# Libraries every cached value passes through (decoding, resampling, arrays): in every key.
KEY_LIBRARIES = ("numpy", "soxr", "torch")


def cache_root() -> Path:
    env = os.environ.get("TOKBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tokbench"


def _versions(names: tuple[str, ...]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


_KEY_VERSIONS = _versions(KEY_LIBRARIES)


class CacheEntryError(ValueError):
    """A cached value failed its ``check``: raised by checks, turned into a miss by the cache."""


def _tensor_checksum(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\n".encode())
        h.update(t.numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _array_checksum(array: np.ndarray) -> str:
    a = np.ascontiguousarray(array)
    return hashlib.sha256(f"{a.dtype.str}\0{a.shape}\n".encode() + a.tobytes()).hexdigest()


def _json_checksum(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, allow_nan=False).encode()).hexdigest()


def _report(message: str) -> None:
    print(f"tokbench cache: {message}", file=sys.stderr)


class Cache:
    def __init__(self, root: str | Path | None = None, enabled: bool = True,
                 adapter_code: str | None = None):
        self.root = Path(root) if root is not None else cache_root()
        self.enabled = enabled
        # The code version of the adapter whose tokens this run caches (tokbench.identity).
        self.adapter_code = adapter_code
        # Entries refused on read in this process: (path, why). Also printed to stderr.
        self.rejected: list[tuple[str, str]] = []

    @staticmethod
    def key(**parts: Any) -> str:
        """Hash of ``parts`` plus the resampler, protocol version and core library versions."""
        return stable_hash({**parts, "_resampler": RESAMPLER, "_protocol": PROTOCOL_VERSION,
                            "_libraries": _KEY_VERSIONS}, 32)

    def path(self, kind: str, key: str, suffix: str) -> Path:
        return self.root / kind / key[:2] / f"{key}{suffix}"

    def _reject(self, p: Path, why: str) -> None:
        """Report a refused entry and move it aside so the recomputed value can take its place."""
        self.rejected.append((str(p), why))
        aside = p.parent.parent / "rejected" / f"{p.name}.{time.time_ns()}"
        try:
            aside.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, aside)
            where = f"moved to {aside}"
        except OSError:
            where = "left in place"
        _report(f"refused {p} ({why}); recomputing, the entry was {where}")

    def _check(self, p: Path, value: Any, check: Callable[[Any], None] | None) -> bool:
        if check is None:
            return True
        try:
            check(value)
        except (CacheEntryError, ValueError, TypeError, KeyError, IndexError) as exc:
            self._reject(p, f"its value fails the check: {exc}")
            return False
        return True

    # Tensors (tokens, decoded audio): torch.save of plain tensors, loaded with weights_only.
    def load_tensors(self, kind: str, key: str,
                     check: Callable[[dict[str, torch.Tensor]], None] | None = None,
                     ) -> dict[str, torch.Tensor] | None:
        p = self.path(kind, key, ".pt")
        if not self.enabled or not p.is_file():
            return None
        import torch

        try:
            entry = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:  # torn, empty or foreign: a miss, reported and rewritten
            self._reject(p, f"unreadable ({type(exc).__name__})")
            return None
        if not (isinstance(entry, dict) and entry.get("format") == FORMAT
                and isinstance(entry.get("tensors"), dict)):
            self._reject(p, "not a tokbench cache entry")
            return None
        if entry.get("key") != key:
            self._reject(p, f"it was stored under another key ({str(entry.get('key'))[:12]})")
            return None
        tensors = entry["tensors"]
        if not all(isinstance(t, torch.Tensor) for t in tensors.values()) \
                or _tensor_checksum(tensors) != entry.get("checksum"):
            self._reject(p, "its checksum does not match its contents")
            return None
        return tensors if self._check(p, tensors, check) else None

    def save_tensors(self, kind: str, key: str, tensors: dict[str, torch.Tensor]) -> None:
        import torch

        if self.enabled:
            entry = {"format": FORMAT, "key": key, "checksum": _tensor_checksum(tensors),
                     "tensors": tensors}
            _atomic_write(self.path(kind, key, ".pt"), lambda fh: torch.save(entry, fh))

    # Arrays (F0 contours, embeddings): .npz with the array, its key and checksum.
    def load_array(self, kind: str, key: str,
                   check: Callable[[np.ndarray], None] | None = None) -> np.ndarray | None:
        p = self.path(kind, key, ".npz")
        if not self.enabled or not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                value, stored_key, checksum = z["value"], str(z["key"]), str(z["checksum"])
        except Exception as exc:
            self._reject(p, f"unreadable ({type(exc).__name__})")
            return None
        if stored_key != key:
            self._reject(p, f"it was stored under another key ({stored_key[:12]})")
            return None
        if _array_checksum(value) != checksum:
            self._reject(p, "its checksum does not match its contents")
            return None
        return value if self._check(p, value, check) else None

    def save_array(self, kind: str, key: str, array: np.ndarray) -> None:
        if self.enabled:
            array = np.asarray(array)
            buf = io.BytesIO()
            np.savez(buf, value=array, key=np.array(key), checksum=np.array(_array_checksum(array)))
            data = buf.getvalue()
            _atomic_write(self.path(kind, key, ".npz"), lambda fh: fh.write(data))

    # JSON (transcriptions, small records).
    def load_json(self, kind: str, key: str, check: Callable[[Any], None] | None = None) -> Any | None:
        p = self.path(kind, key, ".json")
        if not self.enabled or not p.is_file():
            return None
        try:
            entry = json.loads(p.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:
            self._reject(p, f"unreadable ({type(exc).__name__})")
            return None
        if not (isinstance(entry, dict) and entry.get("format") == FORMAT and "value" in entry):
            self._reject(p, "not a tokbench cache entry")
            return None
        if entry.get("key") != key:
            self._reject(p, f"it was stored under another key ({str(entry.get('key'))[:12]})")
            return None
        if _json_checksum(entry["value"]) != entry.get("checksum"):
            self._reject(p, "its checksum does not match its contents")
            return None
        return entry["value"] if self._check(p, entry["value"], check) else None

    def save_json(self, kind: str, key: str, value: Any) -> None:
        if self.enabled:
            entry = {"format": FORMAT, "key": key, "checksum": _json_checksum(value), "value": value}
            data = json.dumps(entry, allow_nan=False, sort_keys=True).encode()
            _atomic_write(self.path(kind, key, ".json"), lambda fh: fh.write(data))

    def __getstate__(self) -> dict:
        # Workers get the path and settings; their rejections are printed in their own stderr.
        return {**self.__dict__, "rejected": []}
