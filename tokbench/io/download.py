"""Fetching corpora from their official source: resumable download, checksum, safe extraction."""

from __future__ import annotations

import os
import shutil
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from tokbench.io.files import file_digest

CHUNK = 1 << 20  # download block size


class DownloadError(Exception):
    """A download or an extraction failed (network, size, checksum, unsafe archive member);
    the message says what to do."""


def download(
    url: str,
    dest: Path,
    *,
    md5: str | None = None,
    size: int | None = None,
    opener: Callable[..., object] = urllib.request.urlopen,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Download ``url`` to ``dest``, resuming a partial ``dest.part`` with an HTTP Range request,
    then verify size and MD5. A verified ``dest`` is returned without any network access."""
    dest = Path(dest)
    if dest.is_file() and (md5 is None or file_digest(dest, "md5") == md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    response: object | None = None
    if size is None or have < size:
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            response = opener(request, timeout=60)
        except urllib.error.HTTPError as exc:
            if not (exc.code == 416 and have):  # 416 on a resume: the part is already whole
                raise DownloadError(
                    f"cannot download {url} ({exc}); download it by hand and place it at {dest}"
                ) from None
            response = None
        except (urllib.error.URLError, OSError) as exc:
            raise DownloadError(
                f"cannot download {url} ({exc}); download it by hand and place it at {dest}"
            ) from None
    if response is not None:
        _receive(response, part, have, size, progress)
    if size is not None and part.stat().st_size != size:
        raise DownloadError(f"{url}: got {part.stat().st_size} bytes, expected {size}; run again to resume")
    if md5 is not None:
        got = file_digest(part, "md5")
        if got != md5:
            part.unlink()
            raise DownloadError(f"{url}: MD5 {got} does not match the published {md5}; "
                               "the partial file was removed, run again")
    os.replace(part, dest)
    return dest


def _receive(response: object, part: Path, have: int, size: int | None,
             progress: Callable[[int, int | None], None] | None) -> None:
    with response:  # type: ignore[attr-defined]
        status = getattr(response, "status", 200)
        mode = "ab" if have and status == 206 else "wb"  # the server may ignore Range
        if mode == "wb":
            have = 0
        with part.open(mode) as fh:
            while block := response.read(CHUNK):  # type: ignore[attr-defined]
                fh.write(block)
                have += len(block)
                if progress:
                    progress(have, size)


def _is_safe(member: tarfile.TarInfo, root: Path) -> str | None:
    """Why ``member`` must not be extracted, or None."""
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        return "its path leaves the extraction folder"
    if member.issym() or member.islnk():
        return "links are not extracted"
    if not (member.isfile() or member.isdir()):
        return "only files and folders are extracted"
    target = (root / member.name).resolve()
    if not target.is_relative_to(root.resolve()):
        return "its path leaves the extraction folder"
    return None


PARTIAL_MARKER = ".tokbench-partial"


def _archive_identity(archive: Path) -> str:
    st = Path(archive).stat()
    return f"{Path(archive).resolve()}\t{st.st_size}\t{st.st_mtime_ns}\n"


def _check_own(folder: Path, marker: str) -> None:
    """Refuse to touch ``folder`` unless tokbench made it (it holds ``marker``) or it is empty."""
    if folder.exists() and not (folder / marker).is_file() and not (
            folder.is_dir() and not any(folder.iterdir())):
        raise DownloadError(
            f"{folder} exists and was not made by tokbench: nothing in it is deleted; move it "
            "away, or point tokbench at it if it already holds the extracted data")


def _remove_own(folder: Path, marker: str) -> None:
    """Remove ``folder`` only if tokbench made it (it holds ``marker``) or it is empty."""
    _check_own(folder, marker)
    if (folder / marker).is_file():
        shutil.rmtree(folder)
    elif folder.is_dir():
        folder.rmdir()


def safe_extract(archive: Path, dest: Path, marker: str = ".extracted") -> Path:
    """Extract a tar archive into ``dest``, refusing absolute paths, '..', links and devices.
    Extraction goes to a temporary folder first, so a crash never leaves a half tree behind.
    ``dest`` is reused only if it was extracted from this very archive (its marker records the
    archive's path, size and time); a folder tokbench did not make is never deleted."""
    dest = Path(dest)
    if (dest / marker).is_file() and (dest / marker).read_text() == _archive_identity(archive):
        return dest
    tmp = dest.with_name(dest.name + ".partial")
    _check_own(dest, marker)  # before any work: a folder of the user's is never replaced
    _remove_own(tmp, PARTIAL_MARKER)
    tmp.mkdir(parents=True)
    (tmp / PARTIAL_MARKER).write_text("")
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for m in members:
            why = _is_safe(m, tmp)
            if why:
                shutil.rmtree(tmp, ignore_errors=True)
                raise DownloadError(f"{archive}: refusing to extract {m.name!r}: {why}")
        tar.extractall(tmp, members=members, filter="data")
    (tmp / marker).write_text(_archive_identity(archive))
    (tmp / PARTIAL_MARKER).unlink()
    _remove_own(dest, marker)
    os.replace(tmp, dest)
    return dest
