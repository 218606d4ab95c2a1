"""Recognising a registered dataset laid out by hand (an extracted LibriSpeech split passed as a
folder, ``--data-dir``, a copy of the bundled sample set).

Such a folder is opened as the registered dataset, under its name: its figures share tables
with the registered runs and with published figures, instead of becoming a dataset called
``test-clean``. Recognition checks what the dataset's publisher fixes:

- ``sample``: the folder holds a ``manifest.jsonl`` byte-identical to the bundled one (the file
  list); the audio then enters the revision by content like any dataset.
- LibriSpeech splits: OpenSLR publishes only the archive's MD5, no per-file checksums, so a
  split is recognised by its file list as the archive lays it out: every audio file is
  ``<speaker>/<chapter>/<speaker>-<chapter>-<nnnn>.flac`` with its chapter's ``.trans.txt``, and
  the number of utterances is the published one. The folder may be the split itself, or hold
  ``LibriSpeech/<split>`` or ``<split>``.

The dataset revision is always the content fingerprint, so a recognised copy whose bytes differ
from the download (re-encoded, edited) keeps the name but gets another revision, and its tables
say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tokbench.data.base import Dataset, read_folder, read_manifest
from tokbench.io.files import file_digest

_LIBRISPEECH_FILE = re.compile(r"^(\d+)/(\d+)/\1-\2-\d{4}\.flac$")


@dataclass(frozen=True)
class Recognised:
    """A folder found to hold registered dataset ``name``; ``folder`` is where its files are."""

    name: str
    folder: Path
    how: str  # what matched, for messages and run.json


def _sample(path: Path) -> Recognised | None:
    from tokbench.data import SAMPLE_DIR

    bundled = SAMPLE_DIR / "manifest.jsonl"
    mine = path / "manifest.jsonl"
    if not (bundled.is_file() and mine.is_file()):
        return None
    if file_digest(mine) != file_digest(bundled):
        return None
    return Recognised("sample", path, "manifest.jsonl identical to the bundled sample set's")


def _librispeech(path: Path) -> Recognised | None:
    from tokbench.data.librispeech import SPLITS

    for split, info in SPLITS.items():
        for folder in (path, path / "LibriSpeech" / split, path / split):
            if folder.name != split or not folder.is_dir():
                continue
            flacs = sorted(folder.rglob("*.flac"))
            if len(flacs) != info.utterances:
                continue
            ok = True
            for f in flacs:
                rel = f.relative_to(folder).as_posix()
                m = _LIBRISPEECH_FILE.match(rel)
                if m is None or not (f.parent / f"{m.group(1)}-{m.group(2)}.trans.txt").is_file():
                    ok = False
                    break
            if ok:
                return Recognised(f"librispeech-{split}", folder,
                                  f"LibriSpeech {split} layout with its {info.utterances} "
                                  "utterances and chapter transcripts")
    return None


def recognise_folder(path: str | Path) -> Recognised | None:
    """The registered dataset ``path`` holds, or None (see the module docstring)."""
    path = Path(path).expanduser()
    if not path.is_dir():
        return None
    for check in (_sample, _librispeech):
        found = check(path)
        if found is not None:
            return found
    return None


def open_recognised(path: str | Path) -> Dataset | None:
    """``path`` opened as the registered dataset it holds (named as it), or None."""
    found = recognise_folder(path)
    if found is None:
        return None
    if found.name == "sample":
        ds = read_manifest(found.folder / "manifest.jsonl", name="sample")
    else:
        ds = read_folder(found.folder, name=found.name)
    ds.description = f"{found.name} (recognised in {found.folder}: {found.how})"
    ds.info = {**ds.info, "recognised": {"folder": str(found.folder), "how": found.how}}
    return ds
