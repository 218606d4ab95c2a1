"""Registered datasets from an existing extracted copy (``--data-dir``, ``$TOKBENCH_DATA_DIR``),
and the archives a registered dataset is fetched from (for ``tokbench prefetch``).

A copy is recognised by its file list, not by a folder's name: for LibriSpeech, every chapter
folder ``<speaker>/<chapter>/`` holds ``<speaker>-<chapter>.trans.txt`` and one
``<speaker>-<chapter>-<NNNN>.flac`` per transcript line and nothing else; the number of
utterances and speakers is the published one; the speakers are the ones ``SPEAKERS.TXT`` lists
for the split (when the copy has it); and the published archive MD5 is checked when the archive
lies beside the copy. OpenSLR publishes checksums of the archives only, so an extracted copy
without its archive is identified by content instead: its revision is the same content hash a
download gets, so results on it are the registered dataset's results.

A copy is read where it is: nothing is written into ``--data-dir``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tokbench.data.base import Dataset, DatasetError
from tokbench.io.cache import cache_root

DATA_DIR_ENV = "TOKBENCH_DATA_DIR"


@dataclass(frozen=True)
class Archive:
    """A file a dataset is made from: official URL, published checksum and size, cache path."""

    url: str
    md5: str | None
    size: int | None  # bytes, where published / confirmed
    path: Path  # where the loader keeps it
    extracted: Path  # the folder the loader reads once it is extracted


@dataclass
class Recognition:
    """An extracted copy found under a folder: the loader's root and what was checked."""

    root: Path  # what the dataset loader takes as root (holds e.g. LibriSpeech/<split>)
    folder: Path  # the split folder itself
    checks: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- LibriSpeech
# Published sizes of the splits (Panayotov et al. 2015, Table 1): utterances, speakers.
LIBRISPEECH_COUNTS: dict[str, tuple[int, int]] = {
    "test-clean": (2620, 40),
    "train-clean-100": (28539, 251),
}
_LS_UTT = re.compile(r"^(\d+)-(\d+)-(\d{4})$")


def _candidates(path: Path, corpus: str, split: str) -> list[Path]:
    """``path`` may be the split folder, the corpus folder or the folder above it."""
    return [path / corpus / split, path / split, path]


def locate(path: Path, corpus: str, split: str) -> Path | None:
    """The ``<corpus>/<split>`` folder at or under ``path``, or None."""
    for c in _candidates(Path(path).expanduser(), corpus, split):
        if c.is_dir() and c.name == split and c.parent.name == corpus:
            return c
    return None


def _find_split(path: Path, corpus: str, split: str, flag: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DatasetError(f"{flag} {path} is not a folder")
    found = locate(path, corpus, split)
    if found is not None:
        return found
    raise DatasetError(f"{flag} {path}: no {corpus}/{split} folder there (give the folder that "
                       f"holds {corpus}/, {corpus}/ itself, or {corpus}/{split})")


def recognise_librispeech(path: Path, split: str, flag: str = "--data-dir") -> Recognition:
    """Check that ``path`` holds an extracted LibriSpeech ``split`` (module docstring)."""
    from tokbench.data.librispeech import SPLITS
    from tokbench.io.files import file_digest

    if split not in LIBRISPEECH_COUNTS:
        raise DatasetError(f"unknown LibriSpeech split {split!r}")
    n_utts, n_speakers = LIBRISPEECH_COUNTS[split]
    folder = _find_split(path, "LibriSpeech", split, flag)
    problems: list[str] = []
    speakers: set[str] = set()
    n_audio = 0
    for chapter in sorted(p for p in folder.glob("*/*") if p.is_dir()):
        spk, chap = chapter.parent.name, chapter.name
        speakers.add(spk)
        trans = chapter / f"{spk}-{chap}.trans.txt"
        if not trans.is_file():
            problems.append(f"{chapter.relative_to(folder)} has no {trans.name}")
            continue
        listed = [line.split(" ", 1)[0] for line in trans.read_text(encoding="utf-8").splitlines()
                  if line.strip()]
        audio = {p.stem for p in chapter.glob("*.flac")}
        n_audio += len(audio)
        for utt in listed:
            m = _LS_UTT.match(utt)
            if not m or m.group(1) != spk or m.group(2) != chap:
                problems.append(f"{trans.relative_to(folder)} lists {utt!r}, not a "
                                f"{spk}-{chap}-NNNN utterance")
        missing = sorted(set(listed) - audio)
        extra = sorted(audio - set(listed))
        if missing:
            problems.append(f"{chapter.relative_to(folder)} lacks {len(missing)} listed file(s), "
                            f"first {missing[0]}.flac")
        if extra:
            problems.append(f"{chapter.relative_to(folder)} has {len(extra)} unlisted file(s), "
                            f"first {extra[0]}.flac")
        others = sorted(p.name for p in chapter.iterdir()
                        if p.suffix != ".flac" and p.name != trans.name)
        if others:
            problems.append(f"{chapter.relative_to(folder)} holds files LibriSpeech does not: "
                            f"{', '.join(others[:3])}")
    if n_audio != n_utts:
        problems.append(f"{n_audio} utterances, the published {split} has {n_utts}")
    if len(speakers) != n_speakers:
        problems.append(f"{len(speakers)} speakers, the published {split} has {n_speakers}")
    checks = [f"{n_audio} utterances of {len(speakers)} speakers, each listed in its chapter's "
              "transcript file"]
    speakers_txt = folder.parent / "SPEAKERS.TXT"
    if speakers_txt.is_file():
        in_split = {line.split("|")[0].strip() for line in
                  speakers_txt.read_text(encoding="utf-8", errors="replace").splitlines()
                  if "|" in line and not line.startswith(";")
                  and line.split("|")[2].strip() == split}
        if in_split != speakers:
            problems.append(f"the speakers differ from the {len(in_split)} SPEAKERS.TXT lists for "
                            f"{split} (e.g. {sorted(in_split ^ speakers)[0]})")
        else:
            checks.append("speakers match SPEAKERS.TXT")
    else:
        checks.append("no SPEAKERS.TXT beside the split (not checked)")
    for archive in (folder.parent.parent / f"{split}.tar.gz", folder.parent / f"{split}.tar.gz"):
        if archive.is_file():
            got = file_digest(archive, "md5")
            if got != SPLITS[split].md5:
                problems.append(f"{archive} has MD5 {got}, the published one is {SPLITS[split].md5}")
            else:
                checks.append(f"archive {archive.name} matches the published MD5")
            break
    else:
        checks.append("archive not present: identified by content (OpenSLR publishes archive "
                      "checksums only)")
    if problems:
        raise DatasetError(f"{flag} {path} is not LibriSpeech {split} as published: "
                           + "; ".join(problems[:5])
                           + (f"; and {len(problems) - 5} more" if len(problems) > 5 else ""))
    return Recognition(root=folder.parent.parent, folder=folder, checks=checks)


def _open_librispeech(split: str) -> Callable[[Recognition], Dataset]:
    def open_copy(rec: Recognition) -> Dataset:
        from tokbench.data.librispeech import librispeech

        return librispeech(split, root=rec.root, expected=LIBRISPEECH_COUNTS[split][0])

    return open_copy


# ---------------------------------------------------------------------------- LibriTTS
def recognise_libritts_test_clean(path: Path, flag: str = "--data-dir") -> Recognition:
    """``LibriTTS/test-clean``: ``<speaker>/<chapter>/<id>.wav`` each with ``<id>.normalized.txt``.
    The test-b loader then checks that all 500 listed utterances are there."""
    folder = _find_split(path, "LibriTTS", "test-clean", flag)
    wavs = sorted(folder.glob("*/*/*.wav"))
    if not wavs:
        raise DatasetError(f"{flag} {path}: {folder} holds no <speaker>/<chapter>/*.wav files")
    untranscribed = [w for w in wavs if not w.with_name(w.stem + ".normalized.txt").is_file()]
    if untranscribed:
        raise DatasetError(f"{flag} {path}: {len(untranscribed)} wav files have no .normalized.txt "
                           f"(first {untranscribed[0].relative_to(folder)})")
    return Recognition(root=folder.parent.parent, folder=folder,
                       checks=[f"{len(wavs)} transcribed utterances"])


def _open_test_b(rec: Recognition) -> Dataset:
    from tokbench.data.libritts import libritts_test_b

    return libritts_test_b(root=rec.root)


@dataclass(frozen=True)
class LocalCopy:
    corpus: str  # the copy's folder is <corpus>/<split>
    split: str
    recognise: Callable[[Path, str], Recognition]
    open: Callable[[Recognition], Dataset]
    archive: Callable[[], Archive]


def _ls_archive(split: str) -> Callable[[], Archive]:
    def archive() -> Archive:
        from tokbench.data.librispeech import BASE_URL, SPLITS

        root = cache_root() / "datasets" / "librispeech"
        return Archive(f"{BASE_URL}/{split}.tar.gz", SPLITS[split].md5, SPLITS[split].size,
                       root / f"{split}.tar.gz", root / "LibriSpeech" / split)

    return archive


def _tts_archive() -> Archive:
    from tokbench.data.libritts import MD5, URL

    root = cache_root() / "datasets" / "libritts"
    return Archive(URL, MD5, None, root / "test-clean.tar.gz", root / "LibriTTS" / "test-clean")


LOCAL_COPIES: dict[str, LocalCopy] = {
    "librispeech-test-clean": LocalCopy(
        "LibriSpeech", "test-clean", lambda p, flag: recognise_librispeech(p, "test-clean", flag), _open_librispeech("test-clean"),
        _ls_archive("test-clean")),
    "librispeech-train-clean-100": LocalCopy(
        "LibriSpeech", "train-clean-100", lambda p, flag: recognise_librispeech(p, "train-clean-100", flag),
        _open_librispeech("train-clean-100"), _ls_archive("train-clean-100")),
    "libritts-test-b": LocalCopy("LibriTTS", "test-clean", recognise_libritts_test_clean, _open_test_b, _tts_archive),
}


def dataset_archive(name: str) -> Archive | None:
    """The archive a registered dataset is downloaded from, or None (bundled or not a download)."""
    copy = LOCAL_COPIES.get(name)
    return copy.archive() if copy else None


def recognise(name: str, path: Path, flag: str = "--data-dir") -> Recognition:
    copy = LOCAL_COPIES.get(name)
    if copy is None:
        raise DatasetError(f"{flag} cannot point {name!r} at a local copy: only "
                           f"{', '.join(LOCAL_COPIES)} can be")
    return copy.recognise(Path(path), flag)


def open_dataset_at(spec: str, data_dir: str | Path | None = None,
                    transcript: str | None = None) -> Dataset:
    """:func:`tokbench.data.open_dataset`, with a registered dataset read from an extracted copy.

    ``data_dir`` (``--data-dir``) must hold the dataset, or this raises saying what is wrong.
    Without it, ``$TOKBENCH_DATA_DIR`` is searched: a dataset found there is used, one that is
    not there is opened as usual (downloaded into the cache on first use).
    """
    from tokbench.data import open_dataset
    from tokbench.registry import datasets

    explicit = data_dir is not None
    folder: Path | None = None
    if data_dir is not None:
        folder = Path(data_dir)
    elif os.environ.get(DATA_DIR_ENV):
        folder = Path(os.environ[DATA_DIR_ENV])
    if folder is None or (not explicit and spec not in LOCAL_COPIES):
        return open_dataset(spec, transcript=transcript)
    if spec not in datasets:
        raise DatasetError(f"--data-dir points a registered dataset at a local copy; {spec!r} is "
                           "not one (`tokbench list datasets`): pass the folder as --dataset instead")
    flag = "--data-dir" if explicit else f"${DATA_DIR_ENV}"
    if not explicit and locate(folder, LOCAL_COPIES[spec].corpus, LOCAL_COPIES[spec].split) is None:
        return open_dataset(spec, transcript=transcript)  # not in that folder: as usual
    rec = recognise(spec, folder, flag)
    ds = LOCAL_COPIES[spec].open(rec)
    ds.info = {**ds.info, "local_copy": {"path": str(rec.folder), "checks": rec.checks}}
    return ds
