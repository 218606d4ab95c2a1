"""LibriTTS test-clean (Zen et al., 2019; 24 kHz, CC BY 4.0) and ``libritts-test-b``.

``libritts-test-b`` is "test set B" of UniCATS (Du et al., AAAI 2024): 500 utterances of 37
LibriTTS test-clean speakers unseen in training, the set the Guo et al. review (arXiv 2502.06490)
uses for reconstruction and voice conversion. The list ships with tokbench
(``lists/libritts-test-b.utt2prompt``, checked against :data:`TEST_B_SHA256`): the official
``testsetB_utt2prompt`` file, one ``<utterance> <UniCATS prompt utterance>`` pair per line, taken
byte for byte from https://cpdu.github.io/unicats/resources/testsetB_utt2prompt (the GitHub
Pages source, repository cpdu/unicats, commit 06af055dd45027d7e6e801dc97704c983ade21af). The
second column is UniCATS's own TTS prompt (read by :func:`read_utt2prompt`); tokbench draws its
prompts with :mod:`tokbench.data.prompts` from the whole of test-clean (the prompt candidates).

Audio comes from the official OpenSLR source (resource 60) into the tokbench cache, checked
against the published MD5, and is extracted safely. Transcripts are LibriTTS's normalised texts
(``<id>.normalized.txt``). Audio stays at 24 kHz; tasks resample to each tokenizer's rate and
score at 16 kHz like every other dataset.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tokbench.data.base import Dataset, DatasetError, fetch_archive, read_folder
from tokbench.io.cache import cache_root
from tokbench.io.files import file_digest

URL = "https://www.openslr.org/resources/60/test-clean.tar.gz"
MD5 = "7bed3bdb047c4c197f1ad3bc412db59f"  # as published with torchaudio's LIBRITTS and elsewhere
LIBRITTS_CITATION = ("H. Zen, V. Dang, R. Clark, Y. Zhang, R. J. Weiss, Y. Jia, Z. Chen, Y. Wu. "
                     "LibriTTS: A Corpus Derived from LibriSpeech for Text-to-Speech. "
                     "Interspeech 2019")
TEST_B_LIST = Path(__file__).parent / "lists" / "libritts-test-b.utt2prompt"
TEST_B_SHA256 = "d86c4a418372dac4ab3590bfd048546809c89ab1d1dcd2980c8b05c357087fe0"
TEST_B_SOURCE = "https://cpdu.github.io/unicats/resources/testsetB_utt2prompt"
TEST_B_CITATION = ("C. Du, Y. Guo, F. Shen, Z. Liu, Z. Liang, X. Chen, S. Wang, H. Zhang, K. Yu. "
                   "UniCATS: A Unified Context-Aware Text-to-Speech Framework with Contextual "
                   "VQ-Diffusion and Vocoding. AAAI 2024 (test set B)")
N_TEST_B = 500


def libritts_test_clean_folder(root: str | Path | None = None, url: str = URL,
                               md5: str | None = MD5) -> Path:
    """``<root>/LibriTTS/test-clean``, downloaded and extracted on first use
    (root defaults to ``$TOKBENCH_CACHE/datasets/libritts``)."""
    root = Path(root) if root else cache_root() / "datasets" / "libritts"
    split = root / "LibriTTS" / "test-clean"
    if not split.is_dir():
        archive = fetch_archive(url, root / "test-clean.tar.gz", root / "extracted", md5=md5)
        extracted = root / "extracted" / "LibriTTS" / "test-clean"
        if not extracted.is_dir():
            raise DatasetError(f"{archive} does not hold LibriTTS/test-clean")
        split.parent.mkdir(parents=True, exist_ok=True)
        os.replace(extracted, split)
    return split


def read_utt2prompt(path: str | Path, sha256: str | None = None) -> list[tuple[str, str]]:
    """``(utterance, prompt)`` pairs of a UniCATS list file, checked against ``sha256``."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"utterance list {path} does not exist")
    if sha256 is not None and file_digest(path, "sha256") != sha256:
        raise DatasetError(f"{path} has SHA-256 {file_digest(path, 'sha256')}, expected {sha256}: "
                           "the shipped list was modified; restore it from the tokbench sources")
    pairs = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise DatasetError(f"{path}:{n}: expected '<utterance> <prompt>', got {line!r}")
        pairs.append((parts[0], parts[1]))
    return pairs


def libritts_test_b(root: str | Path | None = None, url: str = URL, md5: str | None = MD5,
                    utt_list: str | Path = TEST_B_LIST, list_sha256: str | None = TEST_B_SHA256,
                    expected: int | None = N_TEST_B) -> Dataset:
    """UniCATS test set B over LibriTTS test-clean (module docstring). ``root`` may point at an
    existing copy (a folder holding ``LibriTTS/test-clean``)."""
    split = libritts_test_clean_folder(root, url, md5)
    full = read_folder(split, name="libritts-test-clean")
    pairs = read_utt2prompt(utt_list, list_sha256)
    by_id = full.by_id()
    missing = [u for u, _ in pairs if u not in by_id]
    if missing:
        raise DatasetError(f"{split} lacks {len(missing)} of the {len(pairs)} listed utterances "
                           f"(first: {missing[0]}): the copy is incomplete; delete it to download "
                           "again")
    utts = [by_id[u] for u, _ in pairs]
    if expected is not None and len(utts) != expected:
        raise DatasetError(f"{utt_list} lists {len(utts)} utterances, expected {expected}")
    untranscribed = [u.id for u in utts if not u.text]
    if untranscribed:
        raise DatasetError(f"{len(untranscribed)} listed utterances have no .normalized.txt "
                           f"transcript (first: {untranscribed[0]})")
    list_digest = hashlib.sha256(Path(utt_list).read_bytes()).hexdigest()
    revision = hashlib.sha256(f"{full.revision}:{list_digest}".encode()).hexdigest()[:12]
    return Dataset(
        "libritts-test-b", revision, utts,
        description="UniCATS test set B: 500 LibriTTS test-clean utterances, 37 unseen speakers",
        info={"source": url, "md5": md5, "list": TEST_B_SOURCE, "list_sha256": list_digest,
              "citation": TEST_B_CITATION, "corpus_citation": LIBRITTS_CITATION,
              "license": "CC BY 4.0", "sample_rate": 24000,
              "prompt_candidates": "all of LibriTTS test-clean"},
        prompt_pool=full.utterances,
    )
