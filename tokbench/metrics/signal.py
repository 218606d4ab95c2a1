"""PESQ (wide- and narrow-band) and STOI/ESTOI of an output signal against its reference.

Both functions take 1-D float signals at 16 kHz of equal length (the recon task fits the output
to the input length first) and return :class:`Scores`; a value that cannot be computed is
``None`` with a reason, never one of the packages' error values (``pesq``'s ``on_error`` return
codes, ``pystoi``'s 1e-5). Plain top-level functions: safe to call from worker processes.
"""

from __future__ import annotations

import warnings

import numpy as np
from pesq import BufferTooShortError, PesqError
from pesq import pesq as _pesq
from pystoi import stoi as _stoi

from tokbench.io.audio import resample
from tokbench.metrics.base import NotComputable, Scores
from tokbench.metrics.inputs import as_pair, require_sound
from tokbench.protocol import ESTOI_SEED, PESQ_MAX_SECONDS, SCORING_SAMPLE_RATE

PESQ_NB_RATE = 8_000
PESQ_MIN_SECONDS = 0.25  # the pesq package refuses shorter buffers (BufferTooShortError)


def pesq_score(ref: np.ndarray, hyp: np.ndarray, sample_rate: int, mode: str) -> float:
    """One PESQ value (``mode`` 'wb' at 16 kHz or 'nb' at 8 kHz); NotComputable on the
    package's errors (too short, no utterance found, silent output)."""
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


def pesq_scores(ref16: np.ndarray, hyp16: np.ndarray) -> Scores:
    """``pesq_wb`` (P.862.2 at 16 kHz) and ``pesq_nb`` (P.862 on both signals resampled to
    8 kHz with the protocol's resampler)."""
    scores = Scores()
    scores.compute("pesq_wb", lambda: pesq_score(ref16, hyp16, SCORING_SAMPLE_RATE, "wb"))

    def nb() -> float:
        ref, hyp = as_pair(ref16, hyp16, np.float32)
        return pesq_score(resample(ref, SCORING_SAMPLE_RATE, PESQ_NB_RATE),
                          resample(hyp, SCORING_SAMPLE_RATE, PESQ_NB_RATE), PESQ_NB_RATE, "nb")

    scores.compute("pesq_nb", nb)
    return scores


def stoi_score(ref16: np.ndarray, hyp16: np.ndarray, extended: bool = False) -> float:
    """STOI (``extended=False``) or ESTOI of 16 kHz signals.

    A silent or constant output is a result: pystoi's value (0 for a silent output: nothing is
    intelligible). ESTOI adds tiny noise from numpy's global generator, which is seeded with
    ``ESTOI_SEED`` for the call (and restored after), so ESTOI is deterministic. NotComputable
    for an all-zero reference and for input with fewer than 30 STFT frames left after pystoi's
    silent-frame removal (where pystoi warns and returns 1e-5)."""
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
