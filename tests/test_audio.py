import numpy as np
import pytest
import soundfile as sf

from tokbench.io.audio import AudioError, fit_length, load_audio, resample

from .conftest import tone


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_resample_to_16k_keeps_a_tone(sr):
    x = tone(440.0, 1.0, sr)
    y = resample(x, sr, 16000)
    assert y.dtype == np.float32
    assert abs(len(y) - 16000) <= 1
    ref = tone(440.0, 1.0, 16000)[: len(y)]
    core = slice(800, len(y) - 800)  # ignore filter edges
    err = np.sqrt(np.mean((y[core] - ref[core]) ** 2)) / np.sqrt(np.mean(ref[core] ** 2))
    assert err < 0.01  # soxr HQ is far better than 1% error on a pure tone


def test_resample_identity_and_errors():
    x = tone()
    assert resample(x, 16000, 16000) is x or np.array_equal(resample(x, 16000, 16000), x)
    with pytest.raises(ValueError):
        resample(np.zeros((2, 10), np.float32), 16000, 8000)


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg"])
def test_load_formats(tmp_path, fmt):
    x = tone(220.0, 0.5, 22050)
    path = tmp_path / f"a.{fmt}"
    sf.write(path, x, 22050)
    got = load_audio(path)
    assert got.sample_rate == 22050 and got.channels == 1 and not got.downmixed
    assert len(got.wav) == len(x)
    tol = 0.05 if fmt == "ogg" else 1e-3
    assert np.max(np.abs(got.wav - x)) < tol


def test_stereo_is_averaged_and_recorded(tmp_path):
    left, right = tone(220.0, 0.5, 16000), tone(330.0, 0.5, 16000)
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    got = load_audio(tmp_path / "s.wav")
    assert got.channels == 2 and got.downmixed
    np.testing.assert_allclose(got.wav, (left + right) / 2, atol=1e-6)


def test_unreadable_and_empty_files_raise_clear_errors(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00not really audio")
    with pytest.raises(AudioError, match="bad.wav: unreadable"):
        load_audio(bad)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="no samples"):
        load_audio(empty)
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "missing.wav")


def test_fit_length_trims_and_pads():
    x = np.arange(10, dtype=np.float32)
    y, m = fit_length(x, 8)
    assert len(y) == 8 and m == 2
    y, m = fit_length(x, 12)
    assert len(y) == 12 and m == -2 and y[-2:].sum() == 0
    y, m = fit_length(x, 10)
    assert m == 0 and np.array_equal(y, x)
