"""The evaluation protocol (docs/protocol.md): every setting that changes what a number means.

The settings are recorded in every run; ``protocol_id`` (a hash of them) is a column of
``load_results`` so that figures made under different protocols are never averaged or compared.
They are the engine's own (here) and those each metric module declares (the metric kit).
Bump ``PROTOCOL_VERSION`` when a metric's implementation changes what it returns.
"""

from __future__ import annotations

import copy
from typing import Any

from tokbench.io.audio import RESAMPLER
from tokbench.options import stable_hash

# 2: outputs longer than one frame are no longer cut.
# 3: silent/constant outputs get pystoi's STOI/ESTOI (ESTOI seeded); references without speech
# (Silero VAD) make reference-based metrics null; PESQ null beyond PESQ_MAX_SECONDS; Harvest in
# windows beyond PITCH_WINDOW_SECONDS; new metrics (DNSMOS, SI-SDR, SDR, STFT distance, MCD,
# log-F0 RMSE, WavLM speaker similarity, dWER/dCER, UTMOS) and ASR back-ends (issue 17).
PROTOCOL_VERSION = "3"
SCORING_SAMPLE_RATE = 16_000

# The reference VAD: the scorer's gate for metrics that need speech in the reference.
VAD_SETTINGS: dict[str, Any] = {"package": "silero-vad (ONNX, CPU)", "threshold": 0.5, "min_segment_ms": 250,
                "min_speech_seconds": 0.25}

# The engine's own settings; each metric module adds its own (``declare(..., protocol=...)``).
ENGINE_PROTOCOL: dict[str, Any] = {
    "version": PROTOCOL_VERSION,
    "scoring_sample_rate": SCORING_SAMPLE_RATE,
    "resampler": RESAMPLER,
    "length": ("within one frame of the tokenizer (score: 20 ms) the output is trimmed or "
               "zero-padded to the input length; beyond it a shorter output is zero-padded and a "
               "longer one is kept whole, scored against the reference zero-padded to its "
               "length; length_ratio recorded"),
    "reference_vad": VAD_SETTINGS,
    "bootstrap": {"samples": 1000, "seed": 0, "level": 0.95},
}


def base_protocol() -> dict[str, Any]:
    """The engine's settings and every declared metric's (a plug-in metric module's included:
    the protocol says what every number a run can hold means)."""
    from tokbench.metrics.kit import declarations

    out = copy.deepcopy(ENGINE_PROTOCOL)
    for metric in declarations():
        for key, value in metric.protocol.items():
            if key in out and out[key] != value:
                raise ValueError(f"protocol key {key!r} of {metric.module} is already set by "
                                 "another declaration: use a key of its own")
            out[key] = copy.deepcopy(value)
    return out


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
    return _merge(base_protocol(), overrides)


def protocol_id(settings: dict[str, Any]) -> str:
    return stable_hash(settings, length=10)
