"""SI-SDR, SDR, multi-resolution STFT distance and MCD against their definitions and direct
library calls (mir_eval, torch.stft, pyworld + pysptk)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tokbench.metrics import distortion
from tokbench.metrics.base import NotComputable

from .synth import add_noise, speechlike


@pytest.fixture(scope="module")
def pair():
    ref = speechlike(2.0, seed=3).astype(np.float64)
    return ref, add_noise(ref.astype(np.float32), 12.0, seed=5).astype(np.float64)


def test_si_sdr_is_the_closed_form_and_scale_invariant(pair):
    ref, hyp = pair
    a = np.dot(hyp, ref) / np.dot(ref, ref)
    expected = 10 * np.log10(np.sum((a * ref) ** 2) / np.sum((a * ref - hyp) ** 2))
    assert distortion.si_sdr(ref, hyp) == pytest.approx(expected, abs=1e-6)
    assert distortion.si_sdr(ref, 0.3 * hyp) == pytest.approx(expected, abs=1e-6)
    for fn in (distortion.si_sdr, distortion.sdr):  # an exact copy: +inf, null with the reason
        with pytest.raises(NotComputable, match="scaled copy"):
            fn(ref, 0.5 * ref)


def test_sdr_equals_mir_eval_on_speech():
    """On real speech fast-bss-eval's SDR equals mir_eval's bss_eval_sources (to 1e-6 dB). On
    synthetic signals with stretches of exact digital zeros the two solve an ill-conditioned
    system differently (up to ~1 dB apart): documented in docs/metrics.md."""
    import warnings

    import mir_eval

    from tokbench.data import open_dataset
    from tokbench.io.audio import resample

    ds = open_dataset("sample")
    rng = np.random.default_rng(0)
    for utt in ds.utterances[:2]:
        a = ds.load(utt)
        ref = resample(a.wav, a.sample_rate, 16000).astype(np.float64)
        hyp = ref + 0.02 * rng.standard_normal(len(ref))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = mir_eval.separation.bss_eval_sources(ref[None], hyp[None])[0][0]
        assert distortion.sdr(ref, hyp) == pytest.approx(expected, abs=1e-6)


def test_silent_output_sdr_is_not_computable(pair):
    ref, _ = pair
    for fn in (distortion.si_sdr, distortion.sdr):
        with pytest.raises(NotComputable, match="silent output"):
            fn(ref, np.zeros_like(ref))


def test_mstft_distance_equals_a_torch_stft_computation(pair):
    ref, hyp = pair
    total = 0.0
    for w in (2048, 512):
        win = torch.hann_window(w, periodic=True, dtype=torch.float64)
        m = [torch.stft(torch.from_numpy(x), w, w // 4, window=win, center=True, pad_mode="reflect",
                        return_complex=True).abs() for x in (ref, hyp)]
        logs = [torch.log10(torch.clamp(x, min=1e-5) ** 2) for x in m]
        total += float((m[1] - m[0]).abs().mean() + (logs[1] - logs[0]).abs().mean())
    assert distortion.mstft_distance(ref, hyp) == pytest.approx(total, rel=1e-9)
    assert distortion.mstft_distance(ref, ref) == 0.0
    assert distortion.mstft_distance(ref, add_noise(ref.astype(np.float32), 0.0)) > total


def test_mcd_equals_the_versa_pipeline_called_directly(pair):
    import pysptk
    import pyworld
    from scipy.signal import firwin, lfilter

    ref, hyp = pair

    def mcep(x):
        x = lfilter(firwin(255, 70 / 8000, pass_zero=False), 1, x * 32767)
        f0, t = pyworld.harvest(x, 16000, f0_floor=40.0, f0_ceil=800.0, frame_period=5.0)
        return pysptk.sp2mc(pyworld.cheaptrick(x, f0, t, 16000, fft_size=1024), 39, 0.466)

    a, b = mcep(ref), mcep(hyp)
    n = min(len(a), len(b))
    expected = np.mean(10 / np.log(10) * np.sqrt(2 * np.sum((b[:n] - a[:n]) ** 2, axis=1)))
    assert distortion.mcd(ref, hyp) == pytest.approx(expected, rel=1e-9)
    assert distortion.mcd(ref, ref) == 0.0
