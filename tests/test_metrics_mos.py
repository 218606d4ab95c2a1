"""DNSMOS (P.835 SIG/BAK/OVRL and P.808) equals direct ``speechmos`` calls on real speech."""

from __future__ import annotations

import numpy as np
import pytest

from tokbench.data import open_dataset
from tokbench.io.audio import resample
from tokbench.metrics import dnsmos
from tokbench.metrics.base import NotComputable


@pytest.fixture(scope="module")
def sample16():
    ds = open_dataset("sample")
    out = []
    for utt in ds.utterances:
        a = ds.load(utt)
        out.append((utt.id, resample(a.wav, a.sample_rate, 16000).astype(np.float64)))
    return out


def test_dnsmos_equals_speechmos_on_the_sample_set(sample16):
    from speechmos import dnsmos as speechmos_dnsmos

    assert len(sample16) >= 4
    for utt_id, wav in sample16[:4]:  # 4 utterances keep the test fast; all agree (checked by hand)
        ours = dnsmos.dnsmos(wav)
        ref = speechmos_dnsmos.run(wav, 16000)
        for name, theirs in (("dnsmos_sig", "sig_mos"), ("dnsmos_bak", "bak_mos"),
                             ("dnsmos_ovrl", "ovrl_mos"), ("dnsmos_p808", "p808_mos")):
            assert ours[name] == pytest.approx(float(ref[theirs]), abs=1e-6), (utt_id, name)
            assert 1.0 <= ours[name] <= 5.0


def test_dnsmos_of_a_long_clip_uses_the_official_windows(sample16):
    """A clip over 9.01 s is scored over 1 s hops (not repeated): still equal to speechmos."""
    from speechmos import dnsmos as speechmos_dnsmos

    wav = np.concatenate([w for _, w in sample16[:3]])
    assert len(wav) > 9.5 * 16000
    ours = dnsmos.dnsmos(wav)
    assert ours["dnsmos_ovrl"] == pytest.approx(float(speechmos_dnsmos.run(wav, 16000)["ovrl_mos"]),
                                                abs=1e-6)


def test_noise_scores_lower_than_speech(sample16):
    speech = dnsmos.dnsmos(sample16[0][1])
    noise = dnsmos.dnsmos(0.1 * np.random.default_rng(0).standard_normal(4 * 16000))
    assert noise["dnsmos_bak"] < speech["dnsmos_bak"]
    assert noise["dnsmos_ovrl"] < speech["dnsmos_ovrl"]


def test_unusable_input_is_not_computable_with_the_reason():
    with pytest.raises(NotComputable, match="digital silence"):
        dnsmos.dnsmos(np.zeros(16000))
    with pytest.raises(NotComputable, match=r"\[-1, 1\]"):
        dnsmos.dnsmos(np.full(16000, 2.0))
    s = dnsmos.dnsmos_scores(np.zeros(16000))
    assert s.values == dict.fromkeys(dnsmos.METRICS) and "silence" in s.reasons["dnsmos_sig"]
