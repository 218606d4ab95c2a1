"""``libritts-test-b``: the shipped UniCATS list, and the loader on a small archive in the
LibriTTS layout (made here; the real one is downloaded from OpenSLR on first use)."""

from __future__ import annotations

import hashlib
import io
import tarfile

import numpy as np
import pytest
import soundfile as sf

from tokbench.data import DatasetError
from tokbench.data.libritts import (
    MD5,
    N_TEST_B,
    TEST_B_LIST,
    TEST_B_SHA256,
    URL,
    libritts_test_b,
    read_utt2prompt,
)
from tokbench.registry import datasets

IDS = ["121_121726_000005_000001", "121_127105_000037_000000", "1089_134686_000002_000001",
       "1089_134686_000032_000008", "1089_134691_000004_000000"]


def test_the_shipped_list_is_unicats_test_set_b():
    pairs = read_utt2prompt(TEST_B_LIST, TEST_B_SHA256)
    assert len(pairs) == N_TEST_B == 500 and len({u for u, _ in pairs}) == 500
    assert len({u.split("_")[0] for u, _ in pairs}) == 37  # unseen speakers of test-clean
    assert all(u.split("_")[0] == p.split("_")[0] for u, p in pairs)  # prompts: same speaker
    assert pairs[0] == ("1089_134686_000002_000001", "1089_134686_000032_000008")
    assert pairs[-1] == ("908_31957_000019_000001", "908_157963_000010_000001")
    assert hashlib.sha256(TEST_B_LIST.read_bytes()).hexdigest() == TEST_B_SHA256
    assert URL == "https://www.openslr.org/resources/60/test-clean.tar.gz" and len(MD5) == 32
    assert "libritts-test-b" in datasets


def _archive(tmp_path, ids=IDS):
    """LibriTTS/test-clean/<speaker>/<chapter>/<id>.wav (24 kHz) with its transcripts."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for n, utt in enumerate(ids):
            spk, chapter = utt.split("_")[:2]
            folder = f"LibriTTS/test-clean/{spk}/{chapter}"
            wav = io.BytesIO()
            t = np.arange(24000 + 2400 * n) / 24000
            sf.write(wav, (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 24000, format="WAV")
            add(f"{folder}/{utt}.wav", wav.getvalue())
            add(f"{folder}/{utt}.normalized.txt", f"Normalized text {n}.".encode())
            add(f"{folder}/{utt}.original.txt", f"ORIGINAL text {n}".encode())
        add("LibriTTS/test-clean/121/121726/121_121726.trans.tsv", b"ignored\tby\tthe loader\n")
    path = tmp_path / "test-clean.tar.gz"
    path.write_bytes(buf.getvalue())
    return path


def test_loader_on_a_small_archive(tmp_path):
    archive = _archive(tmp_path)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    listing = tmp_path / "list"
    listing.write_text(f"{IDS[2]} {IDS[3]}\n{IDS[0]} {IDS[1]}\n")
    root = tmp_path / "root"
    ds = libritts_test_b(root, url=archive.as_uri(), md5=md5, utt_list=listing, list_sha256=None,
                         expected=2)
    assert ds.name == "libritts-test-b" and [u.id for u in ds.utterances] == [IDS[2], IDS[0]]
    assert [u.speaker for u in ds.utterances] == ["1089", "121"]
    assert ds.utterances[0].text == "Normalized text 2."  # the normalised transcript
    audio = ds.load(ds.utterances[1])
    assert audio.sample_rate == 24000 and len(audio.wav) == 24000
    # prompts come from all of test-clean, not only the listed utterances
    assert {u.id for u in ds.prompt_candidates()} == set(IDS)
    info = ds.describe()
    assert info["n_prompt_candidates"] == 5 and info["md5"] == md5
    assert info["list_sha256"] == hashlib.sha256(listing.read_bytes()).hexdigest()
    # a second call finds the extracted copy: no download (the URL is not even readable now)
    archive.unlink()
    again = libritts_test_b(root, url=archive.as_uri(), md5=md5, utt_list=listing,
                            list_sha256=None, expected=2)
    assert again.revision == ds.revision
    other = tmp_path / "list2"
    other.write_text(f"{IDS[0]} {IDS[1]}\n{IDS[2]} {IDS[3]}\n")
    assert libritts_test_b(root, utt_list=other, list_sha256=None, expected=2).revision != ds.revision


def test_loader_errors_name_the_problem(tmp_path):
    archive = _archive(tmp_path, IDS[:2])
    root = tmp_path / "root"
    listing = tmp_path / "list"
    listing.write_text(f"{IDS[0]} {IDS[1]}\n{IDS[4]} {IDS[3]}\n")
    with pytest.raises(DatasetError, match="lacks 1 of the 2 listed utterances"):
        libritts_test_b(root, url=archive.as_uri(), md5=None, utt_list=listing, list_sha256=None)
    with pytest.raises(DatasetError, match="expected 0" + "0" * 63):
        libritts_test_b(root, utt_list=listing, list_sha256="0" * 64)
    listing.write_text(f"{IDS[0]}\n")
    with pytest.raises(DatasetError, match="expected '<utterance> <prompt>'"):
        libritts_test_b(root, utt_list=listing, list_sha256=None)
    with pytest.raises(DatasetError, match="MD5"):
        libritts_test_b(tmp_path / "fresh", url=archive.as_uri(), md5="0" * 32)
