"""The evaluation protocol (docs/protocol.md): every setting that changes what a number means.

The settings are recorded in every run; ``protocol_id`` (a hash of them) is a column of
``load_results`` so that figures made under different protocols are never averaged or compared.
Bump ``PROTOCOL_VERSION`` when a metric's implementation changes what it returns.
"""

from __future__ import annotations

import copy
from typing import Any

from tokbench.io.audio import RESAMPLER
from tokbench.options import stable_hash

PROTOCOL_VERSION = "2"  # 2: outputs longer than one frame are no longer cut
SCORING_SAMPLE_RATE = 16_000

BASE_PROTOCOL: dict[str, Any] = {
    "version": PROTOCOL_VERSION,
    "scoring_sample_rate": SCORING_SAMPLE_RATE,
    "resampler": RESAMPLER,
    "length": ("within one frame of the tokenizer (score: 20 ms) the output is trimmed or "
               "zero-padded to the input length; beyond it a shorter output is zero-padded and a "
               "longer one is kept whole, scored against the reference zero-padded to its "
               "length; length_ratio recorded"),
    "pesq": {"package": "pesq", "wb": "16 kHz", "nb": "8 kHz (same resampler)"},
    "stoi": {"package": "pystoi", "stoi": "extended=False", "estoi": "extended=True"},
    "secs": {"model": "resemblyzer VoiceEncoder", "preprocess": "preprocess_wav", "similarity": "cosine"},
    "pitch": {"method": "WORLD harvest (pyworld)", "hop_ms": 5.0, "f0_floor": 40.0,
              "f0_ceil": 800.0, "gross_error": 0.2},
    "mel": {"n_fft": 1024, "hop": 256, "n_mels": 80, "fmax": 8000, "power": 1.0,
            "log": "natural", "floor": 1e-5, "filters": "slaney"},
    # model and decoding come from tokbench.metrics.asr.asr_protocol (one source for both)
    "asr": {"package": "openai-whisper", "language": "en",
            "normaliser": "whisper EnglishTextNormalizer"},
    "bootstrap": {"samples": 1000, "seed": 0, "level": 0.95},
}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def protocol_settings(**overrides: Any) -> dict[str, Any]:
    """The base protocol with a task's protocol-relevant settings merged in (e.g. asr.model)."""
    return _merge(BASE_PROTOCOL, overrides)


def protocol_id(settings: dict[str, Any]) -> str:
    return stable_hash(settings, length=10)
