"""Resemblyzer speaker embeddings and SECS on real (synthetic-voice) speech."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tokbench.data import SAMPLE_DIR
from tokbench.io.audio import load_audio, resample
from tokbench.metrics.base import NotComputable
from tokbench.metrics.speaker import cosine, secs, speaker_embedding

from .synth import speechlike

SENTENCES = ["The quick brown fox jumps over the lazy dog near the river bank.",
             "She sells sea shells by the sea shore every summer morning."]
ESPEAK_VOICES = ["en-us+m3", "en-us+f3"]


def _load16(path) -> np.ndarray:
    a = load_audio(path)
    return resample(a.wav, a.sample_rate, 16000)


def _from_sample_set() -> dict[str, list[np.ndarray]] | None:
    manifest = SAMPLE_DIR / "manifest.jsonl"
    if not manifest.is_file():
        return None
    by_speaker: dict[str, list[Path]] = {}
    for line in manifest.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            by_speaker.setdefault(rec["speaker"], []).append(SAMPLE_DIR / rec["path"])
    chosen = sorted(s for s, paths in by_speaker.items() if len(paths) >= 2)[:2]
    if len(chosen) < 2:
        return None
    return {s: [_load16(p) for p in sorted(by_speaker[s])[:2]] for s in chosen}


def _from_espeak(tmp: Path) -> dict[str, list[np.ndarray]] | None:
    if shutil.which("espeak-ng") is None:
        return None
    voices = {}
    for voice in ESPEAK_VOICES:
        wavs = []
        for i, text in enumerate(SENTENCES):
            out = tmp / f"{voice}-{i}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-s", "160", "-w", str(out), text],
                           check=True, capture_output=True)
            wavs.append(_load16(out))
        voices[voice] = wavs
    return voices


@pytest.fixture(scope="module")
def voices(tmp_path_factory):
    """Two voices x two different sentences, from the bundled sample set or else espeak-ng."""
    found = _from_sample_set() or _from_espeak(tmp_path_factory.mktemp("voices"))
    if found is None:
        pytest.skip("neither the bundled sample set nor espeak-ng is available")
    return found


def test_same_voice_is_more_similar_than_different_voices(voices):
    (a1, a2), (b1, b2) = voices.values()
    emb = {k: speaker_embedding(w) for k, w in {"a1": a1, "a2": a2, "b1": b1, "b2": b2}.items()}
    for e in emb.values():
        assert e.shape == (256,) and e.dtype == np.float32
        assert np.linalg.norm(e) == pytest.approx(1.0, abs=1e-4)
    same = min(cosine(emb["a1"], emb["a2"]), cosine(emb["b1"], emb["b2"]))
    different = max(cosine(x, y) for x in (emb["a1"], emb["a2"]) for y in (emb["b1"], emb["b2"]))
    assert same > different + 0.1, (same, different)
    assert secs(emb["a1"], a1) == pytest.approx(1.0, abs=1e-5)


def test_digital_silence_and_no_speech_are_not_computable():
    with pytest.raises(NotComputable, match="digital silence"):
        speaker_embedding(np.zeros(16000, np.float32))
    # A click in 2.5 s of silence: the VAD keeps nothing.
    click = np.zeros(40000, np.float32)
    click[20000:20050] = 0.01
    with pytest.raises(NotComputable, match="voice activity detection"):
        speaker_embedding(click)
    bad = speechlike(1.0)
    bad[10] = np.inf
    with pytest.raises(NotComputable, match="output holds NaN or infinite"):
        secs(np.ones(256, np.float32) / 16.0, bad)


def test_cosine():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    assert cosine(a, a * 3) == pytest.approx(1.0)
    assert cosine(a, b) == pytest.approx(0.0)
    assert cosine(a, -a) == pytest.approx(-1.0)
    with pytest.raises(NotComputable, match="zero"):
        cosine(a, np.zeros(2))
    with pytest.raises(ValueError, match="shapes"):
        cosine(a, np.ones(3))
