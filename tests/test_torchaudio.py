"""The torchaudio functions the tokenizer adapters rely on, checked in the installed environment
(scripts/install_torchaudio.sh; why: docs/torchaudio.md). On a CPU torch torchaudio may be a
CUDA build with its compiled extension removed: only its pure-Python parts work, so every
function an adapter's model code calls is listed here and exercised.

| who | what it calls |
|---|---|
| SpeechTokenizer (``speechtokenizer`` package) | ``import torchaudio`` (its ``__init__`` imports the trainer, which imports torchaudio) |
| Higgs Audio v2 tokenizer (transformers) | ``torchaudio.functional.resample`` 24 kHz -> 16 kHz before its semantic HuBERT |

tokbench itself never loads or resamples audio through torchaudio (soundfile + soxr).
"""

from __future__ import annotations

import math

import pytest
import torch

# An ImportError means torchaudio is absent (skip); a broken build (the compiled extension
# left in place beside a CPU torch) raises OSError and fails here, as it should.
torchaudio = pytest.importorskip("torchaudio")

#: every torchaudio entry point the adapters' model code uses (keep in step with the table above)
USED = ["functional.resample"]


@pytest.mark.parametrize("path", USED)
def test_each_used_function_exists(path):
    obj = torchaudio
    for part in path.split("."):
        obj = getattr(obj, part)
    assert callable(obj)


def test_resample_24k_to_16k_keeps_a_tone():
    # Higgs Audio v2 resamples its 24 kHz input to 16 kHz for the semantic encoder
    sr_in, sr_out, f = 24_000, 16_000, 440.0
    t_in = torch.arange(sr_in, dtype=torch.float64) / sr_in
    x = torch.sin(2 * math.pi * f * t_in).to(torch.float32)[None]
    y = torchaudio.functional.resample(x, sr_in, sr_out)
    assert y.shape == (1, sr_out)
    t_out = torch.arange(sr_out, dtype=torch.float64) / sr_out
    ref = torch.sin(2 * math.pi * f * t_out).to(torch.float32)
    mid = slice(200, sr_out - 200)  # away from the zero-padded edges
    err = (y[0, mid] - ref[mid]).abs().max().item()
    assert err < 1e-2, err


def test_package_imports_with_torchaudio():
    # The authors' package imports torchaudio through its trainer at import time.
    pytest.importorskip("speechtokenizer")
    import speechtokenizer

    assert hasattr(speechtokenizer, "SpeechTokenizer")
