"""LibriSpeech test-clean (Panayotov et al., 2015): 2,620 utterances, 40 speakers, 16 kHz, CC BY 4.0.

Fetched from the official OpenSLR source (resource 12) into the tokbench cache, checked against
the published MD5 and size, and extracted safely.
"""

from __future__ import annotations

import os
from pathlib import Path

from tokbench.cache import cache_root
from tokbench.data.base import Dataset, DatasetError, read_folder
from tokbench.data.download import download, safe_extract

URL = "https://www.openslr.org/resources/12/test-clean.tar.gz"
MD5 = "32fa31d27d2e1cad72775fee3f4849a9"
SIZE = 346_663_984
N_UTTERANCES = 2620
CITATION = ("V. Panayotov, G. Chen, D. Povey, S. Khudanpur. LibriSpeech: an ASR corpus based on "
            "public domain audio books. ICASSP 2015.")


def librispeech_test_clean(root: str | Path | None = None, url: str = URL, md5: str | None = MD5,
                           size: int | None = SIZE, expected: int | None = N_UTTERANCES) -> Dataset:
    """The test-clean split, downloaded on first use (``$TOKBENCH_CACHE/datasets/librispeech``).

    ``root`` may point at an existing copy (a folder holding ``LibriSpeech/test-clean``)."""
    root = Path(root) if root else cache_root() / "datasets" / "librispeech"
    split = root / "LibriSpeech" / "test-clean"
    if not split.is_dir():
        archive = download(url, root / "test-clean.tar.gz", md5=md5, size=size)
        safe_extract(archive, root / "extracted")
        extracted = root / "extracted" / "LibriSpeech"
        if not (extracted / "test-clean").is_dir():
            raise DatasetError(f"{archive} does not hold LibriSpeech/test-clean")
        (root / "LibriSpeech").mkdir(parents=True, exist_ok=True)
        os.replace(extracted / "test-clean", split)
    ds = read_folder(split, name="librispeech-test-clean")
    if expected is not None and len(ds) != expected:
        raise DatasetError(f"{split} holds {len(ds)} utterances, expected {expected}: "
                           "the copy is incomplete; delete it to download again")
    ds.description = "LibriSpeech test-clean (OpenSLR 12)"
    ds.info = {"source": url, "md5": md5, "citation": CITATION, "license": "CC BY 4.0"}
    return ds
