"""Datasets: utterances with audio paths, transcripts and speaker labels.

A dataset is an immutable list of :class:`Utterance` plus a ``revision`` (a content hash) that
goes into cache keys and results, so results from two versions of a dataset never mix.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tokbench.io.audio import LoadedAudio, load_audio
from tokbench.io.download import DownloadError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus")
TRANSCRIPT_FILES = ("transcripts.txt", "text", "transcript.txt")


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
                       self.info, self.prompt_candidates())

    def prompt_candidates(self) -> list[Utterance]:
        """The utterances prompts may be drawn from (see ``prompt_pool``)."""
        return self.utterances if self.prompt_pool is None else self.prompt_pool

    def describe(self) -> dict:
        pool = {} if self.prompt_pool is None else {"n_prompt_candidates": len(self.prompt_pool)}
        return {"name": self.name, "revision": self.revision, "n_utterances": len(self),
                "n_speakers": len(self.speakers()), **pool, **self.info}


_EDGE = 1 << 16  # bytes hashed at each end of a file


def content_revision(paths: Iterable[Path], root: Path, extra: str = "") -> str:
    """Hash of relative paths, sizes and the first and last 64 KiB of every file: cheap, stable
    across copies (no mtimes), and it changes when audio is re-rendered at the same length."""
    h = hashlib.sha256(extra.encode())
    for p in sorted(paths):
        rel = p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p)
        size = p.stat().st_size
        h.update(f"{rel}\0{size}\n".encode())
        with p.open("rb") as fh:
            h.update(fh.read(_EDGE))
            if size > 2 * _EDGE:
                fh.seek(-_EDGE, 2)
                h.update(fh.read(_EDGE))
    return h.hexdigest()[:12]


def read_manifest(path: str | Path, name: str | None = None) -> Dataset:
    """A JSONL or CSV manifest with columns id, path, text, speaker (paths relative to it)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"manifest {path} does not exist")
    rows: list[dict] = []
    if path.suffix == ".jsonl":
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{n}: not valid JSON ({exc})") from None
    elif path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    else:
        raise DatasetError(f"{path}: manifests must be .jsonl or .csv")
    utts = []
    for n, row in enumerate(rows, 1):
        if not row.get("path"):
            raise DatasetError(f"{path}: row {n} has no 'path'")
        audio = Path(row["path"])
        if not audio.is_absolute():
            audio = path.parent / audio
        utts.append(Utterance(
            id=str(row.get("id") or audio.stem),
            path=str(audio),
            text=(row.get("text") or None),
            speaker=(str(row["speaker"]) if row.get("speaker") not in (None, "") else None),
        ))
    if not utts:
        raise DatasetError(f"manifest {path} lists no utterances")
    audio_files = [Path(u.path) for u in utts if Path(u.path).is_file()]
    digest = content_revision(audio_files, path.parent, extra=path.read_text(encoding="utf-8"))
    return Dataset(name or path.stem, digest, utts, description=f"manifest {path}")


def _read_transcripts(files: Sequence[Path]) -> dict[str, str]:
    """'ID TEXT' lines (Kaldi text files, LibriSpeech *.trans.txt)."""
    out: dict[str, str] = {}
    for f in files:
        for line in f.read_text(encoding="utf-8").splitlines():
            key, _, text = line.strip().partition(" ")
            if key:
                out[key] = text.strip()
    return out


def read_folder(root: str | Path, transcript: str | Path | None = None, name: str | None = None) -> Dataset:
    """Every audio file under ``root``; transcripts from ``transcript`` (lines 'ID TEXT'),
    a transcripts.txt / *.trans.txt in the folder, or a ``<stem>.txt`` / ``<stem>.lab`` /
    ``<stem>.normalized.txt`` beside each file. Speakers are the first sub-folder, if any."""
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
    texts = _read_transcripts(tfiles)
    unique_stems = len({q.stem for q in audio}) == len(audio)
    utts = []
    for p in audio:
        text = texts.get(p.stem)
        if text is None:
            for suffix in (".normalized.txt", ".txt", ".lab"):
                side = p.with_name(p.stem + suffix)
                if side.is_file():
                    text = side.read_text(encoding="utf-8").strip()
                    break
        rel = p.relative_to(root)
        speaker = rel.parts[0] if len(rel.parts) > 1 else None
        utt_id = p.stem if unique_stems else rel.with_suffix("").as_posix()
        utts.append(Utterance(id=utt_id, path=str(p), text=text, speaker=speaker))
    extra = json.dumps(sorted(texts.items()))
    return Dataset(name or root.name, content_revision(audio, root, extra), utts,
                   description=f"folder {root}")
