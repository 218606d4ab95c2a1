"""PESQ (wide- and narrow-band) and STOI/ESTOI of an output signal against its reference.

Both functions take 1-D float signals at 16 kHz of equal length (the recon task fits the output
to the input length first) and return :class:`Scores`; a value that cannot be computed is
``None`` with a reason, never one of the packages' error values (``pesq``'s ``on_error`` return
codes, ``pystoi``'s 1e-5). Plain top-level functions: safe to call from worker processes.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from tokbench.io.audio import resample
from tokbench.metrics.base import NotComputable, Scores
from tokbench.metrics.inputs import as_pair, require_sound
from tokbench.metrics.kit import MetricSpec, Needs, SignalInput, declare
from tokbench.protocol import SCORING_SAMPLE_RATE

PESQ_NB_RATE = 8_000
PESQ_MIN_SECONDS = 0.25  # the pesq package refuses shorter buffers (BufferTooShortError)
# PESQ segfaults on inputs of 240 s or more (the pesq package, v0.0.4): longer inputs are null.
PESQ_MAX_SECONDS = 200.0
ESTOI_SEED = 0  # pystoi's ESTOI adds tiny noise from numpy's global generator: seeded here


def pesq_score(ref: np.ndarray, hyp: np.ndarray, sample_rate: int, mode: str) -> float:
    """One PESQ value (``mode`` 'wb' at 16 kHz or 'nb' at 8 kHz); NotComputable on the
    package's errors (too short, no utterance found, silent output)."""
    from pesq import BufferTooShortError, PesqError
    from pesq import pesq as _pesq

    ref, hyp = as_pair(ref, hyp)
    require_sound(ref, "reference")
    require_sound(hyp, "output")
    seconds = len(ref) / sample_rate
    if seconds > PESQ_MAX_SECONDS:
        # The pesq package segfaults at 240 s and more (taking the worker process down).
        raise NotComputable(
            f"PESQ {mode}: the signal lasts {seconds:.1f} s, longer than the {PESQ_MAX_SECONDS:g} s "
            "the protocol scores with PESQ (the pesq package crashes at 240 s and more)")
    try:
        return float(_pesq(sample_rate, ref, hyp, mode, on_error=PesqError.RAISE_EXCEPTION))
    except BufferTooShortError:
        raise NotComputable(
            f"PESQ {mode}: signal of {len(ref) / sample_rate:.3f} s is shorter than the "
            f"{PESQ_MIN_SECONDS} s PESQ needs (BufferTooShortError)"
        ) from None
    except PesqError as exc:  # NoUtterancesError, ...
        raise NotComputable(f"PESQ {mode}: {type(exc).__name__}: {_text(exc)}") from None
    except ValueError as exc:
        # A (near-)silent output makes the package fail with "cannot convert float NaN to
        # integer" (seen with all-zero and with 1e-30-scaled outputs).
        if "NaN" not in str(exc):
            raise
        raise NotComputable(f"PESQ {mode}: output too quiet to align ({exc})") from None


def pesq_nb(ref16: np.ndarray, hyp16: np.ndarray) -> float:
    """``pesq_nb``: P.862 on both 16 kHz signals resampled to 8 kHz with the protocol's
    resampler."""
    ref, hyp = as_pair(ref16, hyp16, np.float32)
    return pesq_score(resample(ref, SCORING_SAMPLE_RATE, PESQ_NB_RATE),
                      resample(hyp, SCORING_SAMPLE_RATE, PESQ_NB_RATE), PESQ_NB_RATE, "nb")


def pesq_scores(ref16: np.ndarray, hyp16: np.ndarray) -> Scores:
    """``pesq_wb`` (P.862.2 at 16 kHz) and ``pesq_nb`` (:func:`pesq_nb`)."""
    scores = Scores()
    scores.compute("pesq_wb", lambda: pesq_score(ref16, hyp16, SCORING_SAMPLE_RATE, "wb"))
    scores.compute("pesq_nb", lambda: pesq_nb(ref16, hyp16))
    return scores


def stoi_score(ref16: np.ndarray, hyp16: np.ndarray, extended: bool = False) -> float:
    """STOI (``extended=False``) or ESTOI of 16 kHz signals.

    A silent or constant output is a result: pystoi's value (0 for a silent output: nothing is
    intelligible). ESTOI adds tiny noise from numpy's global generator, which is seeded with
    ``ESTOI_SEED`` for the call (and restored after), so ESTOI is deterministic. NotComputable
    for an all-zero reference and for input with fewer than 30 STFT frames left after pystoi's
    silent-frame removal (where pystoi warns and returns 1e-5)."""
    from pystoi import stoi as _stoi

    ref, hyp = as_pair(ref16, hyp16)
    require_sound(ref, "reference")
    # catch_warnings and the global generator are process-wide state: fine in worker
    # processes, not thread-safe.
    state = np.random.get_state()
    try:
        np.random.seed(ESTOI_SEED)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = _stoi(ref, hyp, SCORING_SAMPLE_RATE, extended=extended)
    finally:
        np.random.set_state(state)
    for w in caught:
        if "Not enough STFT frames" in str(w.message):
            raise NotComputable(
                "too little non-silent audio for STOI: fewer than 30 STFT frames (about "
                "0.4 s) left after removing silent frames (pystoi would return 1e-5)"
            )
    return float(value)


def stoi_scores(ref16: np.ndarray, hyp16: np.ndarray) -> Scores:
    """``stoi`` (classic) and ``estoi`` (extended) of 16 kHz signals."""
    scores = Scores()
    scores.compute("stoi", lambda: stoi_score(ref16, hyp16, extended=False))
    scores.compute("estoi", lambda: stoi_score(ref16, hyp16, extended=True))
    return scores


def _text(exc: Exception) -> str:
    msg = exc.args[0] if exc.args else ""
    return msg.decode(errors="replace") if isinstance(msg, bytes) else str(msg)


def _pesq_of(x: SignalInput) -> Scores:
    scores = Scores()
    if x.wants("pesq_wb"):
        scores.compute("pesq_wb", lambda: pesq_score(x.reference, x.output, SCORING_SAMPLE_RATE,
                                                     "wb"))
    if x.wants("pesq_nb"):
        scores.compute("pesq_nb", lambda: pesq_nb(x.reference, x.output))
    return scores


def _pesq_direct(ref16: np.ndarray, hyp16: np.ndarray) -> Mapping[str, float]:
    from pesq import pesq as _pesq

    return {"pesq_wb": float(_pesq(SCORING_SAMPLE_RATE, ref16.astype(np.float64),
                                   hyp16.astype(np.float64), "wb"))}


def _stoi_of(x: SignalInput) -> Scores:
    scores = Scores()
    if x.wants("stoi"):
        scores.compute("stoi", lambda: stoi_score(x.reference, x.output, extended=False))
    if x.wants("estoi"):
        scores.compute("estoi", lambda: stoi_score(x.reference, x.output, extended=True))
    return scores


def _stoi_direct(ref16: np.ndarray, hyp16: np.ndarray) -> Mapping[str, float]:
    from pystoi import stoi as _stoi

    return {"stoi": float(_stoi(ref16.astype(np.float64), hyp16.astype(np.float64),
                                SCORING_SAMPLE_RATE, extended=False))}


_SPEECH_REFERENCE = Needs(reference=True, speech=True, sample_rate=SCORING_SAMPLE_RATE)

declare(
    MetricSpec("pesq_wb", "wide-band PESQ (ITU-T P.862.2) at 16 kHz", "higher", "MOS-LQO",
               lo=1.0, hi=4.644, valid_hi=4.65, groups=("signal",), default=True),
    MetricSpec("pesq_nb", "narrow-band PESQ (P.862) on signals resampled to 8 kHz", "higher",
               "MOS-LQO", lo=1.0, hi=4.55, valid_hi=4.56, groups=("signal",), default=True),
    where="worker", compute=_pesq_of, needs=_SPEECH_REFERENCE,
    protocol={"pesq": {"package": "pesq", "wb": "16 kHz", "nb": "8 kHz (same resampler)",
                       "max_seconds": PESQ_MAX_SECONDS}},
    preload=("pesq",), packages=("pesq",),
    citation="ITU-T Rec. P.862 (2001) and P.862.2 (2007)",
    implementation="pesq (ludlows/PESQ, the ITU reference C code); errors are not-computable, "
                   "never its on_error values",
    agreement=_pesq_direct, agreement_tolerance=1e-9,
)

declare(
    MetricSpec("stoi", "short-time objective intelligibility (classic)", "higher", "", lo=0.0,
               hi=1.0, valid_lo=-1.0, groups=("signal",), default=True),
    MetricSpec("estoi", "extended STOI", "higher", "", lo=0.0, hi=1.0, valid_lo=-1.0,
               groups=("signal",), default=True),
    where="worker", compute=_stoi_of, needs=_SPEECH_REFERENCE,
    protocol={"stoi": {"package": "pystoi", "stoi": "extended=False", "estoi": "extended=True",
                       "estoi_seed": ESTOI_SEED, "silent_output": "library value"}},
    preload=("pystoi",), packages=("pystoi",),
    citation="Taal et al., IEEE TASLP 2011 (STOI); Jensen & Taal, IEEE/ACM TASLP 2016 (ESTOI)",
    implementation="pystoi (mpariente/pystoi)",
    agreement=_stoi_direct, agreement_tolerance=1e-9,
)
