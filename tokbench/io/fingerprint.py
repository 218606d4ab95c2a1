"""Full-content file fingerprints, remembered by (path, size, modification time).

A fingerprint is the SHA-256 of every byte of a file: an input edited in the middle, at the same
length, gets a new one. Hashing a large corpus on every run would cost minutes, so each digest
is kept in a small SQLite index (``$TOKBENCH_CACHE/fingerprints.sqlite``) under the file's
resolved path, size and ``st_mtime_ns``; a file whose size or modification time changed is hashed
again. (A tool that rewrites a file and then restores its old mtime at the same size defeats
this, as it defeats make and rsync; ``TOKBENCH_REHASH=1`` hashes everything again.)
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from tokbench.io.files import file_digest


def _index_path() -> Path:
    from tokbench.io.cache import cache_root

    return cache_root() / "fingerprints.sqlite"


class _Index:
    """path -> (size, mtime_ns, sha256); a lost or locked index only costs re-hashing."""

    def __init__(self, path: Path):
        self.conn: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(str(path), timeout=30)
            self.conn.execute("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, "
                              "size INTEGER, mtime_ns INTEGER, sha256 TEXT)")
        except sqlite3.Error:
            self.conn = None

    def get(self, path: str, size: int, mtime_ns: int) -> str | None:
        if self.conn is None:
            return None
        try:
            row = self.conn.execute("SELECT size, mtime_ns, sha256 FROM files WHERE path = ?",
                                    (path,)).fetchone()
        except sqlite3.Error:
            return None
        if row is None or row[0] != size or row[1] != mtime_ns:
            return None
        return str(row[2])

    def put(self, rows: list[tuple[str, int, int, str]]) -> None:
        if self.conn is None or not rows:
            return
        try:
            with self.conn:
                self.conn.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", rows)
        except sqlite3.Error:
            pass  # read-only cache: still correct, only slower next time

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def file_sha256s(paths: Iterable[str | Path]) -> dict[Path, str]:
    """SHA-256 of every byte of each file, from the index when size and mtime are unchanged."""
    rehash = os.environ.get("TOKBENCH_REHASH", "") not in ("", "0")
    index = _Index(_index_path())
    out: dict[Path, str] = {}
    new: list[tuple[str, int, int, str]] = []
    try:
        for p in paths:
            p = Path(p)
            key = str(p.resolve())
            st = p.stat()
            digest = None if rehash else index.get(key, st.st_size, st.st_mtime_ns)
            if digest is None:
                digest = file_digest(p, "sha256")
                new.append((key, st.st_size, st.st_mtime_ns, digest))
            out[p] = digest
        index.put(new)
    finally:
        index.close()
    return out


def file_sha256(path: str | Path) -> str:
    return file_sha256s([path])[Path(path)]


def content_fingerprint(paths: Iterable[Path], root: Path, extra: str = "") -> str:
    """SHA-256 over the relative path, size and full-content SHA-256 of every file (and
    ``extra``). Stable across copies and moves of ``root`` (no absolute paths, no mtimes)."""
    paths = sorted(set(paths))
    digests = file_sha256s(paths)
    h = hashlib.sha256(extra.encode())
    for p in paths:
        rel = p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p)
        h.update(f"{rel}\0{p.stat().st_size}\0{digests[p]}\n".encode())
    return h.hexdigest()
