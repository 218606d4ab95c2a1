"""DNSMOS P.835 (SIG, BAK, OVRL) and P.808: non-intrusive MOS predictors (no reference needed).

The official ONNX models as the ``speechmos`` wheel ships them (MIT; ``dnsmos_models/
sig_bak_ovr.onnx`` and ``dnsmos_models/model_v8.onnx``), run with onnxruntime at 16 kHz with the
official chunking of Microsoft's ``dnsmos_local.py``, as ``speechmos.dnsmos.run`` does it:

- a clip shorter than 9.01 s is repeated (appended to itself) until it is at least that long;
- windows of 9.01 s every 1 s (``floor(len / 16000 - 9.01) + 1`` of them);
- P.835: the raw window waveform into ``sig_bak_ovr.onnx``, then the official polynomials
  (non-personalised) map its three outputs to SIG, BAK, OVRL;
- P.808: a 120-band mel spectrogram in dB (n_fft 321, hop 160, ``(power_to_db(ref=max) + 40)
  / 40``) of the window minus its last 160 samples into ``model_v8.onnx``;
- each score is the mean over the windows.

Our code differs from ``speechmos`` only in loading the sessions once per process with one
thread each (the pool provides the parallelism) and in rejecting unusable input with a reason;
the values are equal (tests/test_metrics_mos.py checks them on the sample set).
"""

from __future__ import annotations

import functools
import importlib.metadata
from pathlib import Path
from typing import Any

import numpy as np

from tokbench.metrics.base import NotComputable, Scores
from tokbench.metrics.inputs import as_signal, require_sound
from tokbench.metrics.kit import MetricSpec, Needs, declare
from tokbench.protocol import SCORING_SAMPLE_RATE

DNSMOS_SETTINGS: dict[str, Any] = {
    "package": "speechmos (official ONNX models) + onnxruntime",
    "p835": "dnsmos_models/sig_bak_ovr.onnx", "p808": "dnsmos_models/model_v8.onnx",
    "personalized": False, "input_seconds": 9.01, "hop_seconds": 1.0,
    "short_input": "repeated to 9.01 s", "aggregation": "mean over windows"}

METRICS = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808")
INPUT_SECONDS: float = DNSMOS_SETTINGS["input_seconds"]
# The official (non-personalised) polynomials of dnsmos_local.py, highest power first.
_POLY_SIG = np.poly1d([-0.08397278, 1.22083953, 0.0052439])
_POLY_BAK = np.poly1d([-0.13166888, 1.60915514, -0.39604546])
_POLY_OVR = np.poly1d([-0.06766283, 1.11546468, 0.04602535])


def package_version() -> str:
    try:
        return importlib.metadata.version("speechmos")
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def model_dir() -> Path:
    """The folder of the official ONNX models inside the installed ``speechmos`` package."""
    import importlib.util

    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        raise NotComputable("DNSMOS needs the speechmos package (pip install speechmos)")
    return Path(next(iter(spec.submodule_search_locations))) / "dnsmos_models"


@functools.lru_cache(maxsize=1)
def sessions() -> tuple[Any, Any]:
    """(P.835, P.808) onnxruntime sessions of this process, loaded on first use."""
    import onnxruntime as ort

    folder = model_dir()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    p835 = ort.InferenceSession(str(folder / Path(DNSMOS_SETTINGS["p835"]).name), opts,
                                providers=providers)
    p808 = ort.InferenceSession(str(folder / Path(DNSMOS_SETTINGS["p808"]).name), opts,
                                providers=providers)
    return p835, p808


def _p808_features(seg: np.ndarray) -> np.ndarray:
    import librosa

    mel = librosa.feature.melspectrogram(y=seg, sr=SCORING_SAMPLE_RATE, n_fft=321, hop_length=160,
                                         n_mels=120)
    return ((librosa.power_to_db(mel, ref=np.max) + 40) / 40).T


def dnsmos(wav16: np.ndarray, role: str = "output") -> dict[str, float]:
    """The four DNSMOS scores of a 16 kHz signal (see the module docstring)."""
    audio = as_signal(wav16, role, np.float64)
    require_sound(audio, role)
    if np.max(np.abs(audio)) > 1.0:
        raise NotComputable(f"DNSMOS takes samples in [-1, 1]; the {role} peaks at "
                            f"{np.max(np.abs(audio)):.3g}")
    fs = SCORING_SAMPLE_RATE
    need = int(INPUT_SECONDS * fs)
    while len(audio) < need:
        audio = np.append(audio, audio)
    n_windows = int(np.floor(len(audio) / fs) - INPUT_SECONDS) + 1
    p835, p808 = sessions()
    sig, bak, ovr, mos808 = [], [], [], []
    for k in range(n_windows):
        seg = audio[int(k * fs): int((k + INPUT_SECONDS) * fs)]
        if len(seg) < need:
            continue
        raw = p835.run(None, {"input_1": seg.astype(np.float32)[None]})[0][0]
        feats = _p808_features(seg[:-160]).astype(np.float32)[None]
        mos808.append(p808.run(None, {"input_1": feats})[0][0][0])
        sig.append(_POLY_SIG(raw[0]))
        bak.append(_POLY_BAK(raw[1]))
        ovr.append(_POLY_OVR(raw[2]))
    return {"dnsmos_sig": float(np.mean(sig)), "dnsmos_bak": float(np.mean(bak)),
            "dnsmos_ovrl": float(np.mean(ovr)), "dnsmos_p808": float(np.mean(mos808))}


def dnsmos_scores(wav16: np.ndarray, names: tuple[str, ...] = METRICS) -> Scores:
    """The selected DNSMOS metrics of the output as :class:`Scores`."""
    scores = Scores()
    scores.compute(tuple(names), lambda: dnsmos(wav16))
    return scores


def _mos(name: str, what: str) -> MetricSpec:
    return MetricSpec(name, what, "higher", "MOS", lo=1.0, hi=5.0, valid_lo=0.0, valid_hi=6.0,
                      groups=("mos",))


declare(
    _mos("dnsmos_sig", "DNSMOS P.835 speech quality (SIG), official ONNX model, non-intrusive"),
    _mos("dnsmos_bak", "DNSMOS P.835 background noise quality (BAK), non-intrusive"),
    _mos("dnsmos_ovrl", "DNSMOS P.835 overall quality (OVRL), non-intrusive"),
    _mos("dnsmos_p808", "DNSMOS P.808 overall MOS, official ONNX model, non-intrusive"),
    where="worker",
    compute=lambda x: dnsmos_scores(x.output, tuple(m for m in METRICS if x.wants(m))),
    needs=Needs(speech=True, sample_rate=SCORING_SAMPLE_RATE), protocol={"dnsmos": DNSMOS_SETTINGS},
    # not onnxruntime: its import starts a thread, and a process with threads is not safe to
    # fork from (it costs only ~0.05 s in each worker)
    preload=("tokbench.metrics.dnsmos",), packages=("speechmos", "onnxruntime"),
    citation="Reddy et al., ICASSP 2022 (DNSMOS P.835); Reddy et al., ICASSP 2021 (P.808)",
    implementation="Microsoft's dnsmos_local.py as speechmos.dnsmos.run computes it, with the "
                   "official ONNX models", license="MIT (speechmos, the ONNX models)",
)
