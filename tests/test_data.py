import json

import numpy as np
import pytest
import soundfile as sf

from tokbench.data import DatasetError, open_dataset, read_folder, read_manifest, sample

from .conftest import tone


def _write(path, seconds=0.5, sr=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(220, seconds, sr), sr)


def test_folder_with_transcript_file_and_speakers(tmp_path):
    _write(tmp_path / "spkA" / "a1.wav")
    _write(tmp_path / "spkA" / "a2.flac")
    _write(tmp_path / "spkB" / "b1.wav", sr=24000)
    (tmp_path / "transcripts.txt").write_text("a1 HELLO WORLD\nb1 good night\n")
    (tmp_path / "spkA" / "a2.txt").write_text("side car text\n")
    ds = read_folder(tmp_path)
    by = ds.by_id()
    assert sorted(by) == ["a1", "a2", "b1"]
    assert by["a1"].text == "HELLO WORLD" and by["a2"].text == "side car text"
    assert by["b1"].speaker == "spkB" and ds.speakers() == ["spkA", "spkB"]
    assert ds.load(by["b1"]).sample_rate == 24000
    rev = ds.revision
    _write(tmp_path / "spkB" / "b2.wav")
    assert read_folder(tmp_path).revision != rev  # new content, new revision


def test_folder_librispeech_layout(tmp_path):
    d = tmp_path / "1089" / "134686"
    _write(d / "1089-134686-0000.flac")
    (d / "1089-134686.trans.txt").write_text("1089-134686-0000 HE HOPED THERE WOULD BE STEW\n")
    ds = read_folder(tmp_path)
    assert ds.utterances[0].text == "HE HOPED THERE WOULD BE STEW"
    assert ds.utterances[0].speaker == "1089"


def test_manifests_jsonl_and_csv(tmp_path):
    _write(tmp_path / "audio" / "x.wav")
    rows = [{"id": "x", "path": "audio/x.wav", "text": "hi", "speaker": "s1"}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "m.csv").write_text("id,path,text,speaker\nx,audio/x.wav,hi,s1\n")
    for name in ("m.jsonl", "m.csv"):
        ds = open_dataset(str(tmp_path / name))
        u = ds.utterances[0]
        assert (u.id, u.text, u.speaker) == ("x", "hi", "s1")
        assert ds.load(u).sample_rate == 16000
    (tmp_path / "dup.jsonl").write_text(json.dumps(rows[0]) + "\n" + json.dumps(rows[0]) + "\n")
    with pytest.raises(DatasetError, match="duplicate"):
        read_manifest(tmp_path / "dup.jsonl")
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    with pytest.raises(DatasetError, match="broken.jsonl:1"):
        read_manifest(tmp_path / "broken.jsonl")


def test_unknown_dataset_names_suggest(tmp_path):
    with pytest.raises(DatasetError, match="did you mean 'sample'"):
        open_dataset("sampel")
    with pytest.raises(DatasetError, match="no audio"):
        read_folder(tmp_path)


def test_sample_set_loads_through_the_registry():
    ds = open_dataset("sample")
    assert ds.name == "sample" and len(ds) >= 24 and len(ds.speakers()) >= 6
    assert ds.revision == sample().revision
    first = ds.load(ds.utterances[0])
    assert first.sample_rate == 16000 and np.isfinite(first.wav).all()
    assert ds.subset(3).utterances == ds.utterances[:3]


def test_revision_changes_when_audio_changes_at_the_same_length(tmp_path):
    sf.write(tmp_path / "a.wav", tone(220, 0.5), 16000)
    rev = read_folder(tmp_path).revision
    sf.write(tmp_path / "a.wav", tone(330, 0.5), 16000)  # same size, other content
    assert read_folder(tmp_path).revision != rev
    (tmp_path / "m.jsonl").write_text(json.dumps({"id": "a", "path": "a.wav"}) + "\n")
    mrev = read_manifest(tmp_path / "m.jsonl").revision
    sf.write(tmp_path / "a.wav", tone(440, 0.5), 16000)
    assert read_manifest(tmp_path / "m.jsonl").revision != mrev
