"""LibriSpeech (Panayotov et al., 2015), CC BY 4.0, 16 kHz: test-clean (the standard
reconstruction set, 2,620 utterances) and train-clean-100 (28,539 utterances, e.g. for probes).

Fetched from the official OpenSLR source (resource 12) into the tokbench cache, checked against
the published MD5 (and size where known), and extracted safely.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tokbench.data.base import Dataset, DatasetError, fetch_archive, read_folder
from tokbench.io.cache import cache_root

BASE_URL = "https://www.openslr.org/resources/12"
CITATION = ("V. Panayotov, G. Chen, D. Povey, S. Khudanpur. LibriSpeech: an ASR corpus based on "
            "public domain audio books. ICASSP 2015.")


@dataclass(frozen=True)
class Split:
    md5: str  # OpenSLR's published md5sum (also repeated in many public loaders)
    size: int | None  # archive bytes, where confirmed
    utterances: int


SPLITS = {
    "test-clean": Split("32fa31d27d2e1cad72775fee3f4849a9", 346_663_984, 2620),
    "train-clean-100": Split("2a93770f6d5c6c964bc36631d331a522", None, 28539),
}
URL = f"{BASE_URL}/test-clean.tar.gz"  # kept for callers of the test-clean loader
MD5, SIZE, N_UTTERANCES = SPLITS["test-clean"].md5, SPLITS["test-clean"].size, 2620


def librispeech(split: str, root: str | Path | None = None, url: str | None = None,
                md5: str | None = "published", size: int | None | str = "published",
                expected: int | None | str = "published") -> Dataset:
    """A LibriSpeech split, downloaded on first use (``$TOKBENCH_CACHE/datasets/librispeech``).

    ``root`` may point at an existing copy (a folder holding ``LibriSpeech/<split>``)."""
    if split not in SPLITS:
        raise DatasetError(f"unknown LibriSpeech split {split!r}; known: {', '.join(SPLITS)}")
    info = SPLITS[split]
    url = url or f"{BASE_URL}/{split}.tar.gz"
    md5 = info.md5 if md5 == "published" else md5
    size = info.size if size == "published" else size
    expected = info.utterances if expected == "published" else expected
    root = Path(root) if root else cache_root() / "datasets" / "librispeech"
    folder = root / "LibriSpeech" / split
    if not folder.is_dir():
        staging = root / f"extracted-{split}"
        archive = fetch_archive(url, root / f"{split}.tar.gz", staging, md5=md5, size=size)
        extracted = staging / "LibriSpeech" / split
        if not extracted.is_dir():
            raise DatasetError(f"{archive} does not hold LibriSpeech/{split}")
        (root / "LibriSpeech").mkdir(parents=True, exist_ok=True)
        os.replace(extracted, folder)
    ds = read_folder(folder, name=f"librispeech-{split}")
    if expected is not None and len(ds) != expected:
        raise DatasetError(f"{folder} holds {len(ds)} utterances, expected {expected}: "
                           "the copy is incomplete; delete it to download again")
    ds.description = f"LibriSpeech {split} (OpenSLR 12)"
    ds.info = {"source": url, "md5": md5, "citation": CITATION, "license": "CC BY 4.0"}
    return ds


def librispeech_test_clean(root: str | Path | None = None, url: str = URL, md5: str | None = MD5,
                           size: int | None = SIZE, expected: int | None = N_UTTERANCES) -> Dataset:
    """The test-clean split (the standard reconstruction set)."""
    return librispeech("test-clean", root, url, md5, size, expected)


def librispeech_train_clean_100(root: str | Path | None = None) -> Dataset:
    """The train-clean-100 split (251 speakers): training data for probes and k-means."""
    return librispeech("train-clean-100", root)
