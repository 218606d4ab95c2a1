"""Datasets: the bundled ``sample`` set, downloadable corpora, folders and manifests.

``open_dataset(spec)`` accepts a registered name (``tokbench list datasets``), a folder of
audio, or a JSONL/CSV manifest.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from tokbench.data.base import Dataset, DatasetError, Utterance, read_folder, read_manifest
from tokbench.registry import UnknownNameError, datasets, register

SAMPLE_DIR = Path(__file__).parent / "sample"


def sample() -> Dataset:
    """The bundled synthetic speech set (espeak-ng voices; see data/sample/README.md)."""
    manifest = SAMPLE_DIR / "manifest.jsonl"
    if not manifest.is_file():
        raise DatasetError(f"the bundled sample set is missing ({manifest}); "
                           "run `python scripts/make_sample_set.py` to make it")
    ds = read_manifest(manifest, name="sample")
    ds.description = "bundled synthetic speech (espeak-ng), 16 kHz, several voices"
    return ds


register(datasets, "sample", "tokbench.data:sample",
         "bundled synthetic speech with transcripts and speaker labels (offline)")
register(datasets, "librispeech-test-clean", "tokbench.data.librispeech:librispeech_test_clean",
         "LibriSpeech test-clean, 2,620 utterances, 16 kHz (downloaded from OpenSLR on first use)")
register(datasets, "librispeech-train-clean-100",
         "tokbench.data.librispeech:librispeech_train_clean_100",
         "LibriSpeech train-clean-100, 28,539 utterances, 251 speakers (OpenSLR, on first use)")
register(datasets, "libritts-test-b", "tokbench.data.libritts:libritts_test_b",
         "UniCATS test set B: 500 LibriTTS test-clean utterances of 37 unseen speakers, 24 kHz "
         "(the review's recon/vc set; audio from OpenSLR on first use)")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def open_dataset(spec: str, transcript: str | None = None,
                 log: Callable[[str], None] | None = _stderr, **kwargs) -> Dataset:
    """A registered dataset by name, or a folder / manifest path.

    A folder that holds a registered dataset (see :func:`tokbench.data.recognise.recognise_folder`)
    is opened as that dataset, so its results share tables with the registered one. What reading
    noticed (transcript ids without audio, utterances without text) goes to ``log``.
    """
    ds = _open(spec, transcript, **kwargs)
    for note in ds.notes:
        if log is not None:
            log(f"dataset {ds.name}: {note}")
    return ds


def _open(spec: str, transcript: str | None, **kwargs) -> Dataset:
    if spec in datasets:
        if transcript is not None:
            raise DatasetError(f"--text applies to a folder of audio; {spec} is a registered "
                               "dataset with its own transcripts")
        entry = datasets.get(spec)
        return entry.load()(**{**dict(entry.options), **kwargs})
    path = Path(spec).expanduser()
    if path.is_dir():
        if transcript is None:
            from tokbench.data.recognise import open_recognised

            known = open_recognised(path)
            if known is not None:
                return known
        return read_folder(path, transcript=transcript)
    if path.is_file() and path.suffix in (".jsonl", ".csv"):
        if transcript is not None:
            raise DatasetError(f"--text {transcript} applies to a folder of audio; the manifest "
                               f"{path} carries its own texts (add a 'text' field to its rows)")
        return read_manifest(path)
    if path.exists():
        raise DatasetError(f"{path}: a dataset is a folder of audio or a .jsonl/.csv manifest")
    if "/" in spec or os.sep in spec or spec.startswith(("~", ".")):  # meant as a path
        what = "manifest" if path.suffix in (".jsonl", ".csv") else "folder"
        raise DatasetError(f"the {what} {path} does not exist; pass an existing folder of audio "
                           "or .jsonl/.csv manifest, or a registered dataset (`tokbench list "
                           "datasets`)")
    try:
        datasets.get(spec)
    except UnknownNameError as exc:
        raise DatasetError(f"{exc}; or pass a folder of audio or a .jsonl/.csv manifest") from None
    raise AssertionError("unreachable")


__all__ = ["Dataset", "DatasetError", "Utterance", "open_dataset", "read_folder", "read_manifest", "sample"]
