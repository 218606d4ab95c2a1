"""Issue 13: datasets identified by content; transcripts and manifests read strictly."""

import os
import shutil

import pytest
import soundfile as sf

from tokbench.data import SAMPLE_DIR, DatasetError, open_dataset, read_folder, read_manifest, sample
from tokbench.data.recognise import recognise_folder
from tokbench.io.fingerprint import file_sha256

from .conftest import tone


def _wav(path, freq=220.0, seconds=0.5):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(freq, seconds), 16000)


def test_middle_of_file_edit_changes_the_revision(tmp_path):
    """A byte changed in the middle of a long file at the same size (beyond the old 64 KiB ends)."""
    _wav(tmp_path / "a.wav", seconds=10.0)  # 320 kB
    rev = read_folder(tmp_path).revision
    data = bytearray((tmp_path / "a.wav").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "a.wav").write_bytes(bytes(data))
    assert read_folder(tmp_path).revision != rev


def test_fingerprints_are_remembered_by_size_and_mtime(tmp_path, monkeypatch):
    _wav(tmp_path / "a.wav")
    first = file_sha256(tmp_path / "a.wav")
    calls = []
    import tokbench.io.fingerprint as fp

    real = fp.file_digest
    monkeypatch.setattr(fp, "file_digest", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert file_sha256(tmp_path / "a.wav") == first and calls == []  # from the index
    st = os.stat(tmp_path / "a.wav")
    os.utime(tmp_path / "a.wav", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert file_sha256(tmp_path / "a.wav") == first and len(calls) == 1  # re-hashed


def test_sidecar_transcripts_are_part_of_the_revision(tmp_path):
    _wav(tmp_path / "a.wav")
    (tmp_path / "a.txt").write_text("hello\n")
    rev = read_folder(tmp_path).revision
    (tmp_path / "a.txt").write_text("hullo\n")
    assert read_folder(tmp_path).revision != rev
    (tmp_path / "a.txt").unlink()
    (tmp_path / "transcripts.txt").write_text("a hello\n")
    rev = read_folder(tmp_path).revision
    (tmp_path / "transcripts.txt").write_text("a hullo\n")
    assert read_folder(tmp_path).revision != rev


def test_same_folder_name_different_content_are_different_datasets(tmp_path):
    _wav(tmp_path / "one" / "test" / "a.wav", 220)
    _wav(tmp_path / "two" / "test" / "a.wav", 330)
    a, b = read_folder(tmp_path / "one" / "test"), read_folder(tmp_path / "two" / "test")
    assert a.name != b.name and a.name.startswith("test@") and b.name.startswith("test@")
    shutil.copytree(tmp_path / "one" / "test", tmp_path / "copy" / "test")
    assert read_folder(tmp_path / "copy" / "test").name == a.name  # same content, same dataset


def test_transcripts_bom_tabs_and_spaces(tmp_path):
    for u in ("a", "b", "c"):
        _wav(tmp_path / f"{u}.wav")
    (tmp_path / "transcripts.txt").write_bytes("\ufeffa HELLO WORLD\nb\tTAB  TEXT\nc   many spaces\n"
                                               .encode("utf-8"))
    by = read_folder(tmp_path).by_id()
    assert by["a"].text == "HELLO WORLD" and by["b"].text == "TAB  TEXT"
    assert by["c"].text == "many spaces"


def test_duplicate_transcript_ids_name_both_lines(tmp_path):
    _wav(tmp_path / "a.wav")
    (tmp_path / "transcripts.txt").write_text("a one\nb two\na three\n")
    with pytest.raises(DatasetError, match=r"transcripts.txt:3: duplicate transcript id 'a' "
                                           r"\(also at .*transcripts.txt:1\)"):
        read_folder(tmp_path)


def test_unmatched_ids_and_missing_texts_are_counted_and_printed(tmp_path):
    _wav(tmp_path / "a.wav")
    _wav(tmp_path / "b.wav")
    (tmp_path / "transcripts.txt").write_text("a one\nzz nothing\nyy none\n")
    printed = []
    ds = open_dataset(str(tmp_path), log=printed.append)
    assert any("2 transcript ids match no audio" in p for p in printed)
    assert any("1 of 2 utterances" in p and "no transcript" in p for p in printed)
    assert len(ds.notes) == 2


def test_manifest_rows_are_validated_with_file_and_line(tmp_path):
    _wav(tmp_path / "x.wav")
    cases = {
        "list.jsonl": ('{"path": "x.wav"}\n["x.wav"]\n', r"list.jsonl:2: each row must be a JSON object"),
        "num.jsonl": ('{"path": 3}\n', r"num.jsonl:1: 'path' must be a string"),
        "text.jsonl": ('{"path": "x.wav", "text": 4.5}\n', r"text.jsonl:1: 'text' must be a string"),
        "nopath.jsonl": ('\n{"id": "x"}\n', r"nopath.jsonl:2: the row has no 'path'"),
        "nocol.csv": ("file,text\nx.wav,hi\n", r"nocol.csv:1: the CSV header must name a 'path'"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(DatasetError, match=message):
            read_manifest(tmp_path / name)
    (tmp_path / "latin.jsonl").write_bytes(b'{"path": "x.wav"}\n{"path": "x.wav", "text": "caf\xe9"}\n')
    with pytest.raises(DatasetError, match=r"latin.jsonl:2: not UTF-8"):
        read_manifest(tmp_path / "latin.jsonl")


def test_csv_manifest_with_a_bom_keeps_its_ids(tmp_path):
    _wav(tmp_path / "x.wav")
    (tmp_path / "m.csv").write_bytes("\ufeffid,path,text\nutt-1,x.wav,hi\n".encode("utf-8"))
    u = read_manifest(tmp_path / "m.csv").utterances[0]
    assert (u.id, u.text) == ("utt-1", "hi")


def test_text_with_a_manifest_is_an_error(tmp_path):
    _wav(tmp_path / "x.wav")
    (tmp_path / "m.jsonl").write_text('{"path": "x.wav"}\n')
    (tmp_path / "t.txt").write_text("x hi\n")
    with pytest.raises(DatasetError, match="--text .* applies to a folder"):
        open_dataset(str(tmp_path / "m.jsonl"), transcript=str(tmp_path / "t.txt"))


def test_a_copy_of_the_sample_set_is_recognised_as_it(tmp_path):
    copy = tmp_path / "my-sample"
    shutil.copytree(SAMPLE_DIR, copy)
    found = recognise_folder(copy)
    assert found is not None and found.name == "sample"
    ds = open_dataset(str(copy))
    assert (ds.name, ds.revision) == ("sample", sample().revision)
    # a changed file list is not the sample set
    lines = (copy / "manifest.jsonl").read_text().splitlines()
    (copy / "manifest.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    assert recognise_folder(copy) is None


def test_a_librispeech_split_laid_out_by_hand_is_recognised(tmp_path, monkeypatch):
    from tokbench.data import librispeech

    monkeypatch.setitem(librispeech.SPLITS, "test-clean",
                        librispeech.Split(librispeech.SPLITS["test-clean"].md5, None, 2))
    split = tmp_path / "data" / "LibriSpeech" / "test-clean"
    d = split / "1089" / "134686"
    _wav(d / "1089-134686-0000.flac")
    _wav(d / "1089-134686-0001.flac", 330)
    (d / "1089-134686.trans.txt").write_text("1089-134686-0000 HE HOPED\n1089-134686-0001 THERE\n")
    for path in (split, tmp_path / "data"):
        ds = open_dataset(str(path))
        assert ds.name == "librispeech-test-clean"
        assert ds.revision == read_folder(split, name="x").revision  # content, not location
    _wav(d / "1089-134686-0002.flac")  # one file more: not the published split
    assert recognise_folder(split) is None
