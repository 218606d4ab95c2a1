"""Checks of the bundled `sample` speech set (made by scripts/make_sample_set.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SAMPLE_DIR = Path(__file__).parents[1] / "tokbench/data/sample"
MANIFEST = SAMPLE_DIR / "manifest.jsonl"


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    lines = MANIFEST.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_manifest_and_audio(rows):
    assert len(rows) >= 24
    assert len({r["speaker"] for r in rows}) >= 6
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "ids must be unique"
    for r in rows:
        assert set(r) >= {"id", "path", "text", "speaker"}
        assert r["text"].strip(), r["id"]
        assert not any(ch.isdigit() for ch in r["text"]), "text must be spelled out as spoken"
        assert r["path"] == f"{r['id']}.flac"
        path = SAMPLE_DIR / r["path"]
        assert path.is_file(), path
        info = sf.info(str(path))
        assert info.format == "FLAC"
        assert info.samplerate == 16000, path
        assert info.channels == 1, path
        assert info.subtype == "PCM_16", path
        assert 1.0 <= info.duration <= 8.0, (path, info.duration)


def test_audio_is_clean(rows):
    for r in rows:
        x, _ = sf.read(str(SAMPLE_DIR / r["path"]), dtype="float32")
        peak = float(np.abs(x).max())
        assert 0.5 < peak <= 1.0, (r["id"], peak)  # normalised, not clipped or silent


def test_no_stray_files(rows):
    listed = {r["path"] for r in rows}
    on_disk = {p.name for p in SAMPLE_DIR.glob("*.flac")}
    assert on_disk == listed


def test_total_size_under_3mb():
    total = sum(p.stat().st_size for p in SAMPLE_DIR.rglob("*") if p.is_file())
    assert total < 3 * 1024 * 1024, total


@pytest.fixture(scope="module")
def embeddings(rows) -> np.ndarray:
    import resemblyzer
    import torch

    # One thread: on a busy 2-core machine torch's default (2 threads) made each
    # embedding ~40x slower (about 10 s instead of 0.25 s) through thread contention.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        encoder = resemblyzer.VoiceEncoder("cpu", verbose=False)
        embs = []
        for r in rows:
            wav, sr = sf.read(str(SAMPLE_DIR / r["path"]), dtype="float32")
            embs.append(encoder.embed_utterance(resemblyzer.preprocess_wav(wav, source_sr=sr)))
    finally:
        torch.set_num_threads(threads)
    return np.stack(embs)


def test_voices_are_told_apart(rows, embeddings):
    """Each voice's mean within-voice similarity beats its mean similarity to any other voice."""
    speakers = sorted({r["speaker"] for r in rows})
    members = {s: [i for i, r in enumerate(rows) if r["speaker"] == s] for s in speakers}
    sim = embeddings @ embeddings.T  # embeddings are L2-normalised
    for s in speakers:
        idx = members[s]
        assert len(idx) >= 2, s
        block = sim[np.ix_(idx, idx)]
        within = (block.sum() - np.trace(block)) / (len(idx) * (len(idx) - 1))
        between = {t: float(sim[np.ix_(idx, members[t])].mean()) for t in speakers if t != s}
        closest = max(between, key=between.get)
        # clear margin, not just a tie-break
        assert within > between[closest] + 0.05, (s, float(within), closest, between[closest])
