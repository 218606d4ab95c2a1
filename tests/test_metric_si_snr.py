"""si_snr: known answers (its own golden test; the kit's conformance test covers the rest)."""

import numpy as np
import pytest

from tokbench.metrics import NotComputable
from tokbench.metrics.distortion import si_sdr
from tokbench.metrics.si_snr import si_snr


def _pair(snr_db: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref = rng.standard_normal(16000)
    ref -= ref.mean()
    noise = rng.standard_normal(16000)
    noise -= noise.mean()
    noise -= np.dot(noise, ref) / np.dot(ref, ref) * ref  # orthogonal to the reference
    noise *= np.sqrt(np.dot(ref, ref) / np.dot(noise, noise) / 10 ** (snr_db / 10))
    return ref, ref + noise


@pytest.mark.parametrize("snr", [-5.0, 0.0, 10.0, 27.5])
def test_an_orthogonal_error_gives_the_snr_it_was_made_with(snr):
    ref, out = _pair(snr)
    assert si_snr(ref, out) == pytest.approx(snr, abs=1e-9)


def test_scale_and_offset_do_not_change_it_unlike_si_sdr():
    ref, out = _pair(10.0)
    assert si_snr(ref, 0.3 * out + 0.2) == pytest.approx(10.0, abs=1e-9)
    # si_sdr keeps the mean: the same offset costs it
    assert si_sdr(ref, 0.3 * out + 0.2) < si_sdr(ref, 0.3 * out) - 1.0


def test_a_scaled_copy_and_a_constant_output_are_not_computable():
    ref, _ = _pair(10.0)
    with pytest.raises(NotComputable, match="infinity"):
        si_snr(ref, 2.0 * ref)
    with pytest.raises(NotComputable, match="constant"):
        si_snr(ref, np.full_like(ref, 0.5))
