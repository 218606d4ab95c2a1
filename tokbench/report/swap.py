"""Build a folder elsewhere and swap it in whole, so that a killed build never leaves a page
pointing at deleted or half-written files.

``staged_folder(out, owned)`` yields a fresh temporary folder beside ``out`` (same file system,
so renames are atomic); when the block ends without error the temporary folder replaces
``out`` in one step (Linux ``renameat2(RENAME_EXCHANGE)``; elsewhere two renames, with the old
folder kept until the new one is in place). On error, or if the process is killed, ``out`` is
untouched. Entries of the old ``out`` that the builder does not write (``owned`` lists what it
writes) are moved into the new folder, never deleted; a temporary folder left by a killed build
is removed by the next build only if it holds nothing but owned entries.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from tokbench.io.files import atomic_write

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
STAGE_TAG = ".tokbench-stage-"


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux >= 3.15, glibc >= 2.28); False if unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    return False  # e.g. EINVAL on a file system without exchange: fall back to two renames


def _only_owned(folder: Path, owned: Collection[str]) -> bool:
    """Nothing but what the builder writes (and atomic_write's ``.<name>.*.tmp`` files)."""
    return all(p.name in owned or (p.name.startswith(".") and p.name.endswith(".tmp"))
               for p in folder.iterdir())


def _remove_stale_stages(out: Path, owned: Collection[str]) -> None:
    for stale in out.parent.glob(f".{out.name}{STAGE_TAG}*"):
        if stale.is_dir() and _only_owned(stale, owned):
            shutil.rmtree(stale, ignore_errors=True)


def swap_in(new: Path, out: Path, owned: Collection[str]) -> None:
    """Replace folder ``out`` by ``new``; entries of ``out`` not in ``owned`` move into ``new``."""
    if not out.exists():
        os.rename(new, out)
        return
    for entry in out.iterdir():
        if entry.name not in owned and not (new / entry.name).exists():
            os.rename(entry, new / entry.name)
    if _exchange(new, out):
        shutil.rmtree(new, ignore_errors=True)  # now the old site
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}{STAGE_TAG}old-", dir=out.parent))
    os.rename(out, old / "site")
    os.rename(new, out)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_folder(out: Path, owned: Collection[str]) -> Iterator[Path]:
    """A temporary folder beside ``out`` that replaces ``out`` when the block succeeds."""
    out = Path(os.path.abspath(out))  # "." or "site/" have a usable parent and name
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_stages(out, {*owned, "site"})
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}{STAGE_TAG}", dir=out.parent))
    os.chmod(stage, 0o777 & ~_umask())  # mkdtemp makes 0700; the site should follow the umask
    try:
        yield stage
        swap_in(stage, out, owned)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_public(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """``atomic_write`` with the file's mode following the umask (a temporary file is 0600;
    a chart or a page is for others to read)."""
    mode = 0o666 & ~_umask()

    def chmod_then_write(fh: IO[bytes]) -> None:
        os.fchmod(fh.fileno(), mode)
        write(fh)

    atomic_write(path, chmod_then_write)
