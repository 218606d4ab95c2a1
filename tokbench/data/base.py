"""Datasets: utterances with audio paths, transcripts and speaker labels.

A dataset is an immutable list of :class:`Utterance` plus a ``revision`` (a content hash) that
goes into cache keys and results, so results from two versions of a dataset never mix.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tokbench.io.audio import LoadedAudio, load_audio
from tokbench.io.download import DownloadError
from tokbench.io.fingerprint import content_fingerprint, file_sha256

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus")
TRANSCRIPT_FILES = ("transcripts.txt", "text", "transcript.txt")
SHORT = 8  # hex digits of the fingerprint in the name of a folder or manifest dataset


class DatasetError(DownloadError):
    """A dataset could not be opened; the message says what to fix."""


def fetch_archive(url: str, archive: Path, into: Path, *, md5: str | None = None,
                  size: int | None = None) -> Path:
    """Download ``url`` to ``archive`` (checked, resumable) and extract it safely into ``into``;
    a failure is a :class:`DatasetError` naming the cause and the fix."""
    from tokbench.io.download import download, safe_extract

    try:
        path = download(url, archive, md5=md5, size=size)
        safe_extract(path, into)
    except DatasetError:
        raise
    except DownloadError as exc:
        raise DatasetError(str(exc)) from None
    return path


@dataclass(frozen=True)
class Utterance:
    id: str
    path: str
    text: str | None = None
    speaker: str | None = None


@dataclass
class Dataset:
    name: str
    revision: str
    utterances: list[Utterance]
    description: str = ""
    info: dict = field(default_factory=dict)
    # Utterances that may serve as speaker prompts (vc, prompt-driven decoding); None: the
    # dataset's own. A subset keeps the full dataset's pool, so --limit never shrinks prompts.
    prompt_pool: list[Utterance] | None = None
    # What reading the data noticed but did not stop for (ids without audio, utterances
    # without text): printed by ``open_dataset``.
    notes: list[str] = field(default_factory=list)
    # The size of the whole dataset when this is a ``subset`` (``--limit``), for "n of N".
    full_size: int | None = None

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for u in self.utterances:
            if u.id in seen:
                raise DatasetError(f"dataset {self.name}: duplicate utterance id {u.id!r}")
            seen.add(u.id)

    def __len__(self) -> int:
        return len(self.utterances)

    def __iter__(self):
        return iter(self.utterances)

    def by_id(self) -> dict[str, Utterance]:
        return {u.id: u for u in self.utterances}

    def load(self, utt: Utterance) -> LoadedAudio:
        return load_audio(utt.path)

    def speakers(self) -> list[str]:
        return sorted({u.speaker for u in self.utterances if u.speaker is not None})

    def subset(self, limit: int | None) -> Dataset:
        """The first ``limit`` utterances (in the dataset's stable order)."""
        if limit is None or limit >= len(self.utterances):
            return self
        return Dataset(self.name, self.revision, self.utterances[:limit], self.description,
                       self.info, self.prompt_candidates(), list(self.notes),
                       full_size=len(self.utterances))

    def prompt_candidates(self) -> list[Utterance]:
        """The utterances prompts may be drawn from (see ``prompt_pool``)."""
        return self.utterances if self.prompt_pool is None else self.prompt_pool

    def describe(self) -> dict:
        pool = {} if self.prompt_pool is None else {"n_prompt_candidates": len(self.prompt_pool)}
        full = {} if self.full_size is None else {"n_utterances_full": self.full_size}
        return {"name": self.name, "revision": self.revision, "n_utterances": len(self), **full,
                "n_speakers": len(self.speakers()), **pool, **self.info}


def content_revision(paths: Iterable[Path], root: Path, extra: str = "") -> str:
    """Short hash of the relative paths, sizes and full-content SHA-256 of every file (and
    ``extra``): stable across copies (no absolute paths, no mtimes), and it changes when any
    byte changes. Digests are remembered by (path, size, mtime), see ``tokbench.io.fingerprint``."""
    return content_fingerprint(paths, root, extra)[:12]


def _read_text(path: Path) -> str:
    """A text file as UTF-8 (a leading byte-order mark is dropped), or a DatasetError."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DatasetError(f"{path}:{line}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                           "save the file as UTF-8") from None


def _read_manifest_rows(path: Path) -> list[tuple[int, object]]:
    """(line number, row) of a .jsonl or .csv manifest; a row is what the line holds."""
    text = _read_text(path)
    rows: list[tuple[int, object]] = []
    if path.suffix == ".jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append((n, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{n}: not valid JSON ({exc})") from None
    elif path.suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        fields = [f.strip() for f in (reader.fieldnames or [])]
        if "path" not in fields:
            raise DatasetError(f"{path}:1: the CSV header must name a 'path' column "
                               f"(and optionally id, text, speaker); it has {fields}")
        reader.fieldnames = fields
        line_no = 1
        for row in reader:
            rows.append((line_no + 1, row))
            line_no = reader.line_num
    else:
        raise DatasetError(f"{path}: manifests must be .jsonl or .csv")
    return rows


def _manifest_field(path: Path, n: int, row: dict, key: str, required: bool = False) -> str | None:
    value = row.get(key)
    if value is None or value == "":
        if required:
            raise DatasetError(f"{path}:{n}: the row has no '{key}'")
        return None
    if key in ("id", "speaker") and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise DatasetError(f"{path}:{n}: '{key}' must be a string, got {type(value).__name__} "
                           f"{value!r}")
    return value


def read_manifest(path: str | Path, name: str | None = None) -> Dataset:
    """A JSONL or CSV manifest with fields id, path, text, speaker (paths relative to it).

    Every row is checked: an object with a string ``path`` and, where present, string ``text``,
    ``id`` and ``speaker`` (ids and speakers may be integers); errors name the file and line.
    The id defaults to the file stem. UTF-8, with or without a byte-order mark.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"manifest {path} does not exist")
    utts = []
    lines: dict[str, int] = {}
    for n, row in _read_manifest_rows(path):
        if not isinstance(row, dict):
            raise DatasetError(f"{path}:{n}: each row must be a JSON object with a 'path', "
                               f"got {type(row).__name__}")
        rel = _manifest_field(path, n, row, "path", required=True)
        assert rel is not None
        audio = Path(rel)
        if not audio.is_absolute():
            audio = path.parent / audio
        utt_id = _manifest_field(path, n, row, "id") or audio.stem
        if utt_id in lines:
            raise DatasetError(f"{path}:{n}: duplicate utterance id {utt_id!r} "
                               f"(first on line {lines[utt_id]})")
        lines[utt_id] = n
        text = _manifest_field(path, n, row, "text")
        utts.append(Utterance(id=utt_id, path=str(audio), text=text.strip() if text else None,
                              speaker=_manifest_field(path, n, row, "speaker")))
    if not utts:
        raise DatasetError(f"manifest {path} lists no utterances")
    audio_files = [Path(u.path) for u in utts if Path(u.path).is_file()]
    digest = content_revision(audio_files, path.parent, extra=_read_text(path))
    ds = Dataset(name or f"{path.stem}@{digest[:SHORT]}", digest, utts,
                 description=f"manifest {path}")
    without = sum(1 for u in utts if not u.text)
    if without:
        ds.notes.append(f"{without} of {len(utts)} utterances in {path} have no text "
                        "(WER/CER are not computed for them)")
    return ds


def read_transcripts(files: Sequence[Path]) -> tuple[dict[str, str], dict[str, str]]:
    """``ID<whitespace>TEXT`` lines (Kaldi text files, LibriSpeech *.trans.txt; tabs or spaces,
    UTF-8 with or without a byte-order mark). Returns (texts, where) with ``where[id]`` =
    "file:line". A duplicate id, in one file or across files, is an error naming both lines."""
    out: dict[str, str] = {}
    where: dict[str, str] = {}
    for f in files:
        for n, line in enumerate(_read_text(f).splitlines(), 1):
            parts = line.strip().split(maxsplit=1)
            if not parts:
                continue
            key = parts[0]
            if key in out:
                raise DatasetError(f"{f}:{n}: duplicate transcript id {key!r} (also at "
                                   f"{where[key]}); keep one line per utterance")
            out[key] = parts[1].strip() if len(parts) > 1 else ""
            where[key] = f"{f}:{n}"
    return out, where


def _sidecar(p: Path) -> Path | None:
    for suffix in (".normalized.txt", ".txt", ".lab"):
        side = p.with_name(p.stem + suffix)
        if side.is_file():
            return side
    return None


def read_folder(root: str | Path, transcript: str | Path | None = None, name: str | None = None) -> Dataset:
    """Every audio file under ``root``; transcripts from ``transcript`` (lines 'ID TEXT'),
    a transcripts.txt / *.trans.txt in the folder, or a ``<stem>.txt`` / ``<stem>.lab`` /
    ``<stem>.normalized.txt`` beside each file. Speakers are the first sub-folder, if any.

    The revision covers every byte of the audio and of the transcript files read. Without a
    ``name`` the dataset is called ``<folder>@<fingerprint>``: two folders called ``test``
    holding different audio are two datasets. Transcript ids that match no audio and utterances
    without text are counted in ``notes``."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder")
    audio = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not audio:
        raise DatasetError(f"{root} holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
    if transcript is not None:
        tfiles = [Path(transcript)]
        if not tfiles[0].is_file():
            raise DatasetError(f"transcript file {transcript} does not exist")
    else:
        tfiles = [root / n for n in TRANSCRIPT_FILES if (root / n).is_file()]
        tfiles += sorted(root.rglob("*.trans.txt"))
    texts, _ = read_transcripts(tfiles)
    unique_stems = len({q.stem for q in audio}) == len(audio)
    utts = []
    sidecars: list[Path] = []
    matched: set[str] = set()
    for p in audio:
        rel = p.relative_to(root)
        utt_id = p.stem if unique_stems else rel.with_suffix("").as_posix()
        key = p.stem if p.stem in texts else utt_id
        text = texts.get(key)
        if text is not None:
            matched.add(key)
        else:
            side = _sidecar(p)
            if side is not None:
                sidecars.append(side)
                text = _read_text(side).strip()
        speaker = rel.parts[0] if len(rel.parts) > 1 else None
        utts.append(Utterance(id=utt_id, path=str(p), text=text or None, speaker=speaker))
    files = [*audio, *sidecars, *(t for t in tfiles if t.is_relative_to(root))]
    # A transcript file outside the folder enters by content (its location does not matter).
    outside = [t for t in tfiles if not t.is_relative_to(root)]
    extra = json.dumps([file_sha256(t) for t in outside])
    revision = content_revision(files, root, extra)
    ds = Dataset(name or f"{root.name}@{revision[:SHORT]}", revision, utts,
                 description=f"folder {root}")
    unmatched = sorted(set(texts) - matched)
    if unmatched:
        ds.notes.append(f"{len(unmatched)} transcript ids match no audio file under {root} "
                        f"(first: {', '.join(unmatched[:3])})")
    without = sum(1 for u in utts if not u.text)
    if without:
        ds.notes.append(f"{without} of {len(utts)} utterances under {root} have no transcript "
                        "(WER/CER are not computed for them)")
    return ds
