"""Crash-safe file writes: whole files are replaced atomically, records are appended line by line."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Write through a temporary file in the same folder, fsync, then rename over ``path``.
    The file gets the permissions of an ordinary new file (the umask), not mkstemp's 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_digest(path: str | Path, algorithm: str = "sha256", into=None) -> str:
    """Hex digest of a file's bytes, read in 1 MiB blocks (or feed them ``into`` a hash object)."""
    h = into if into is not None else hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def dumps(value: Any, indent: int | None = None) -> str:
    """JSON without NaN/Infinity (they are not JSON): such floats must be None by now."""
    return json.dumps(value, allow_nan=False, indent=indent, sort_keys=indent is not None)


def atomic_write_json(path: str | Path, value: Any) -> None:
    data = (dumps(value, indent=2) + "\n").encode()
    atomic_write(path, lambda fh: fh.write(data))


def finite_or_none(value: Any) -> float | None:
    """A float for JSON, or None for NaN/inf/None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """Records of a JSONL file; a torn last line (a crash mid-write) is skipped."""
    path = Path(path)
    if not path.is_file():
        return
    with path.open("rb") as fh:
        lines = fh.read().split(b"\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:  # torn tail: the process died mid-write
                return
            raise ValueError(f"{path}: line {i + 1} is not valid JSON") from None


def repair_jsonl_tail(path: str | Path) -> None:
    """Cut a torn last line so that appends start on a fresh line."""
    path = Path(path)
    if not path.is_file():
        return
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n") + 1
    with path.open("r+b") as fh:
        fh.truncate(cut)
