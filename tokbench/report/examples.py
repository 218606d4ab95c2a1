"""Audio examples (``--set keep_audio=N``) gathered for the leaderboard, labelled by utterance id.

A run keeps its examples under ``<run>/examples/<folder>/`` as WAV files whose stem says what
they are (recon: ``original``, ``reconstruction``; vc: ``source``, ``prompt``, ``converted``;
any other stem is shown under its own name). The folder name is a file-system-safe form of the
utterance id, so the label is the utterance id itself: from the folder's ``example.json`` (the
runner writes it), else (older runs) found by mapping the ids the run recorded to their folders
with the store's rule (``RunStore.examples_dir``); a folder neither names keeps its folder
name, marked as such.

Files are copied into the site by content (``audio/<sha256 prefix>.wav``): the original of
one utterance, kept by every run, is stored and downloaded once, and the page can tell whether
two runs' prompts are the same recording.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tokbench.io.files import file_digest

# Stems in display order: inputs first, then what the tokenizer produced.
INPUT_ROLES = ("original", "source", "prompt")
OUTPUT_ROLES = ("reconstruction", "converted")


def example_folder(run_path: Path, utterance_id: str) -> Path:
    """Where a run keeps one utterance's examples: the store's own rule."""
    from tokbench.results.store import example_folder_name

    return run_path / "examples" / example_folder_name(utterance_id)


def folder_labels(run_path: Path, utterance_ids: Iterable[str]) -> dict[str, list[str]]:
    """Example folder name -> the recorded utterance ids that map to it (sorted)."""
    out: dict[str, list[str]] = {}
    for uid in sorted(set(utterance_ids)):
        out.setdefault(example_folder(run_path, uid).name, []).append(uid)
    return out


def _declared_id(folder: Path) -> list[str]:
    """The utterance id the runner wrote beside the examples (``example.json``), if readable."""
    try:
        uid = json.loads((folder / "example.json").read_text(encoding="utf-8")).get("utterance_id")
    except (OSError, ValueError, AttributeError):
        return []
    return [str(uid)] if isinstance(uid, str) and uid else []


def role_order(role: str) -> tuple[int, str]:
    roles = (*INPUT_ROLES, *OUTPUT_ROLES)
    return (roles.index(role), "") if role in roles else (len(roles), role)


def collect_examples(runs: Iterable[Mapping[str, Any]], run_index: Mapping[str, int],
                     utterance_ids: Mapping[str, Iterable[str]], site: Path) -> list[dict[str, Any]]:
    """Copy every run's kept WAV files into ``site/audio`` and describe them for the page.

    ``runs``: ``runs_table`` rows; ``utterance_ids``: run id -> the utterance ids it recorded.
    Each entry: run index, task, dataset, utterance id (the label), and per role the copied
    file's path relative to the site and its content hash.
    """
    out = []
    for info in runs:
        folder = Path(info["run_path"]) / "examples"
        if not folder.is_dir():
            continue
        labels = folder_labels(Path(info["run_path"]), utterance_ids.get(info["run_id"], ()))
        for utt_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            wavs = sorted((p for p in utt_dir.glob("*.wav") if p.is_file()),
                          key=lambda p: role_order(p.stem))
            if not wavs:
                continue
            ids = _declared_id(utt_dir) or labels.get(utt_dir.name, [])
            note = None
            if not ids:
                note = "no recorded utterance id maps to this folder: labelled by folder name"
            elif len(ids) > 1:
                note = ("these utterance ids share one example folder, which holds the last one "
                        f"written: {', '.join(ids)}")
            files = {}
            for wav in wavs:
                digest = file_digest(wav)
                rel = Path("audio") / f"{digest[:20]}.wav"
                if not (site / rel).is_file():
                    (site / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(wav, site / rel)
                files[wav.stem] = {"src": rel.as_posix(), "sha256": digest}
            out.append({"run": run_index[info["run_id"]], "task": info.get("task"),
                        "dataset": info.get("dataset"),
                        "utterance_id": " / ".join(ids) if ids else utt_dir.name,
                        "note": note, "files": files, "roles": list(files)})
    return out

