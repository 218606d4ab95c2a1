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

# 2: outputs longer than one frame are no longer cut.
# 3: silent/constant outputs get pystoi's STOI/ESTOI (ESTOI seeded); references without speech
# (Silero VAD) make reference-based metrics null; PESQ null beyond PESQ_MAX_SECONDS; Harvest in
# windows beyond PITCH_WINDOW_SECONDS; new metrics (DNSMOS, SI-SDR, SDR, STFT distance, MCD,
# log-F0 RMSE, WavLM speaker similarity, dWER/dCER, UTMOS) and ASR back-ends (issue 17).
PROTOCOL_VERSION = "3"
SCORING_SAMPLE_RATE = 16_000

# --- Settings of the metrics (the one place each constant is defined; modules import them) ---
# PESQ segfaults on inputs of 240 s or more (the pesq package, v0.0.4): longer inputs are null.
PESQ_MAX_SECONDS = 200.0
# WORLD Harvest's memory grows superlinearly with length: contours of longer signals are computed
# over windows of this length with PITCH_CONTEXT_SECONDS of context each side, and joined.
PITCH_WINDOW_SECONDS = 20.0
PITCH_CONTEXT_SECONDS = 1.0
ESTOI_SEED = 0  # pystoi's ESTOI adds tiny noise from numpy's global generator: seeded here
VAD_SETTINGS: dict[str, Any] = {"package": "silero-vad (ONNX, CPU)", "threshold": 0.5, "min_segment_ms": 250,
                "min_speech_seconds": 0.25}
DNSMOS_SETTINGS: dict[str, Any] = {"package": "speechmos (official ONNX models) + onnxruntime",
                   "p835": "dnsmos_models/sig_bak_ovr.onnx", "p808": "dnsmos_models/model_v8.onnx",
                   "personalized": False, "input_seconds": 9.01, "hop_seconds": 1.0,
                   "short_input": "repeated to 9.01 s", "aggregation": "mean over windows"}
SDR_SETTINGS: dict[str, Any] = {"package": "fast-bss-eval", "si_sdr": "zero_mean=False (Le Roux et al. 2019)",
                "sdr": "BSS Eval v4 SDR, filter_length 512 (as mir_eval bss_eval_sources)"}
MSTFT_SETTINGS: dict[str, Any] = {"window_lengths": [2048, 512], "hop": "window/4", "window": "hann (periodic)",
                  "center": "reflect", "mag_weight": 1.0, "log_weight": 1.0, "power": 2.0,
                  "clamp": 1e-5, "log": "log10", "definition": "audiotools MultiScaleSTFTLoss"}
MCD_SETTINGS: dict[str, Any] = {"definition": "VERSA mcd_f0 (dtw=False)", "scale": "int16", "low_cut_hz": 70,
                "f0": "harvest 40-800 Hz, 5 ms", "envelope": "pyworld cheaptrick, fft 1024",
                "mcep": "pysptk sp2mc, order 39, alpha 0.466", "coefficients": "c0..c39",
                "frames": "first min(len) frames, no alignment"}
# The commit as two independent public projects pin it (not verifiable from this machine: no Hub).
WAVLM_SV: dict[str, Any] = {"model": "microsoft/wavlm-base-plus-sv",
            "revision": "feb593a6c23c1cc3d9510425c29b0a14d2b07b1e",
            "class": "transformers WavLMForXVector", "similarity": "cosine of x-vector embeddings",
            "input": "16 kHz, feature extractor normalisation"}

UTMOS_SETTINGS: dict[str, Any] = {
    "model": "UTMOS22 strong learner (sarulab-speech/UTMOS22, epoch=3-step=7459), no phoneme encoder",
    "checkpoint": "https://github.com/tarepan/SpeechMOS/releases/download/v1.0.0/utmos22_strong_step7459_v1.pt",
    "implementation": "tokbench.metrics.utmos (transformers Wav2Vec2Model + BLSTM head)",
    "input": "16 kHz, raw waveform (no normalisation), one utterance at a time",
    "score": "2 x mean over frames + 3", "max_seconds": 60.0, "silent_output": "not computable"}

# The speaker verifier of Seed-TTS-eval's SIM (UniSpeech downstreams/speaker_verification).
ECAPA_SV: dict[str, Any] = {
    "model": "WavLM-large + ECAPA-TDNN speaker verifier (microsoft/UniSpeech speaker_verification, "
             "ECAPA_TDNN_SMALL feat_dim=1024 feat_type=wavlm_large), as Seed-TTS-eval's SIM",
    "checkpoint": "wavlm_large_finetune.pth",
    # the UniSpeech README's "WavLM large" row with the pre-trained model not fixed (Google Drive
    # file id 18rekjal9NPo0VquVtali-80yy63252RX); no checksum is published
    "source": "https://drive.google.com/file/d/18rekjal9NPo0VquVtali-80yy63252RX/view?usp=sharing",
    "implementation": "tokbench.metrics.ecapa_speaker (transformers WavLMModel + ECAPA-TDNN head)",
    "wavlm": {"normalize_waveform": True, "max_distance": 800},  # WavLM-Large's pre-training config
    "features": "softmax(feature_weight)-weighted sum of all hidden states (the input of each "
                "layer, then the layer-normed output) + 1e-6, instance norm",
    "input": "16 kHz, one utterance at a time", "similarity": "cosine of the 256-d embeddings",
    "min_seconds": 0.5, "max_seconds": 60.0}

BASE_PROTOCOL: dict[str, Any] = {
    "version": PROTOCOL_VERSION,
    "scoring_sample_rate": SCORING_SAMPLE_RATE,
    "resampler": RESAMPLER,
    "length": ("within one frame of the tokenizer (score: 20 ms) the output is trimmed or "
               "zero-padded to the input length; beyond it a shorter output is zero-padded and a "
               "longer one is kept whole, scored against the reference zero-padded to its "
               "length; length_ratio recorded"),
    "pesq": {"package": "pesq", "wb": "16 kHz", "nb": "8 kHz (same resampler)",
             "max_seconds": PESQ_MAX_SECONDS},
    "stoi": {"package": "pystoi", "stoi": "extended=False", "estoi": "extended=True",
             "estoi_seed": ESTOI_SEED, "silent_output": "library value"},
    "secs": {"model": "resemblyzer VoiceEncoder", "preprocess": "preprocess_wav", "similarity": "cosine"},
    "pitch": {"method": "WORLD harvest (pyworld)", "hop_ms": 5.0, "f0_floor": 40.0,
              "f0_ceil": 800.0, "gross_error": 0.2, "window_seconds": PITCH_WINDOW_SECONDS,
              "context_seconds": PITCH_CONTEXT_SECONDS, "rmse": "cents over frames voiced in both"},
    "mel": {"n_fft": 1024, "hop": 256, "n_mels": 80, "fmax": 8000, "power": 1.0,
            "log": "natural", "floor": 1e-5, "filters": "slaney"},
    # model and decoding come from tokbench.metrics.asr.asr_protocol (one source for both)
    "asr": {"package": "openai-whisper", "language": "en",
            "normaliser": "whisper EnglishTextNormalizer"},
    "reference_vad": VAD_SETTINGS,
    "dnsmos": DNSMOS_SETTINGS,
    "sdr": SDR_SETTINGS,
    "mstft": MSTFT_SETTINGS,
    "mcd": MCD_SETTINGS,
    "spk_sim_wavlm": WAVLM_SV,
    "utmos": UTMOS_SETTINGS,
    "spk_sim_ecapa": ECAPA_SV,
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
