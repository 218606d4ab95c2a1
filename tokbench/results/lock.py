"""One process per run and rank: a lock file with its holder's pid and host.

Two processes running the same configuration into the same results folder would both compute
everything. The first takes ``.lock.rank<k>`` in the run folder (created exclusively); a second
one is told who holds it and exits, or waits with ``--wait``. A lock whose holder is a dead
process on this host is stale and taken over. A run whose ``run.json`` says "running" while no
live process holds its lock was interrupted (killed, or the machine went down).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any


class RunLockedError(RuntimeError):
    """Another live process is running this configuration (the message names it)."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def lock_path(run_dir: Path, rank: int) -> Path:
    return run_dir / f".lock.rank{rank}"


def read_holder(path: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def holder_alive(holder: dict[str, Any] | None) -> bool:
    """Whether the lock's holder is a live process. A holder on another host is assumed alive
    (its pid cannot be checked from here)."""
    if not holder:
        return False
    if holder.get("host") != socket.gethostname():
        return True
    pid = holder.get("pid")
    return isinstance(pid, int) and _alive(pid)


class RunLock:
    def __init__(self, run_dir: Path, rank: int = 0):
        self.path = lock_path(run_dir, rank)
        self._held = False

    def acquire(self, wait: bool = False, poll_seconds: float = 2.0,
                log: Any = None) -> RunLock:
        told = False
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = read_holder(self.path)
                if holder is None and self._young():
                    # being written by its holder right now: look again in a moment
                    time.sleep(0.05)
                    continue
                if not holder_alive(holder):
                    self.path.unlink(missing_ok=True)  # stale: its process is gone
                    continue
                who = f"pid {holder.get('pid')} on {holder.get('host')}" if holder else "another process"
                if not wait:
                    raise RunLockedError(
                        f"{self.path.parent} is being run by {who} (since "
                        f"{holder.get('since', '?') if holder else '?'}); wait for it, pass --wait "
                        "to wait here, or use another --out") from None
                if log is not None and not told:
                    log(f"waiting for {who}, which is running {self.path.parent}")
                    told = True
                time.sleep(poll_seconds)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                           "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, fh)
            self._held = True
            return self

    def _young(self) -> bool:
        try:
            return time.time() - self.path.stat().st_mtime < 2.0
        except OSError:
            return False

    def release(self) -> None:
        if self._held:
            self.path.unlink(missing_ok=True)
            self._held = False

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def effective_status(run_dir: Path, info: dict[str, Any]) -> str:
    """``run.json``'s status, except that a "running" run no live process holds is
    "interrupted"."""
    status = str(info.get("status", "unknown"))
    if status != "running":
        return status
    locks = list(Path(run_dir).glob(".lock.rank*"))
    if any(holder_alive(read_holder(p)) for p in locks):
        return "running"
    return "interrupted"
