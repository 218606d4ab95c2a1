"""Scoring a decoded (or externally made) signal against its reference, the same way everywhere.

``recon`` and ``tokbench score`` both go through :class:`Scorer`: CPU metrics (PESQ, STOI, pitch,
speaker similarity, mel distance) run in a pool of spawned worker processes, one torch thread
each, while the caller keeps the model busy; WER/CER run in the calling process, batched.
Reference-side features (F0, speaker embedding) come from the reference cache, so they are
computed once per dataset and reused for every tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tokbench.io.cache import Cache
from tokbench.metrics.base import NotComputable, Scores
from tokbench.run.pool import Call, Deferred, MetricPool, WorkerCrashed, workers_per_rank

SIGNAL_METRICS = ("pesq_wb", "pesq_nb", "stoi", "estoi", "secs", "gpe", "vde", "ffe", "f0_corr",
                  "mel_l1")
ASR_METRICS = ("wer", "cer")


@dataclass
class ScoreItem:
    utterance_id: str
    ref16: np.ndarray  # the original at 16 kHz
    hyp16: np.ndarray | None  # the output at 16 kHz as scored (decode_score.fit_output); None if failed
    text: str | None = None  # reference transcript
    reason: str | None = None  # why hyp16 is None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ReferenceKeys:
    """Identifies the reference side (dataset, revision) for the reference-feature cache."""

    dataset: str
    revision: str


def score_signals(ref16: np.ndarray, hyp16: np.ndarray, cache: Cache, refkeys: ReferenceKeys,
                  utterance_id: str) -> Scores:
    """All signal metrics of one utterance (runs in a worker process)."""
    from tokbench.metrics import mel, pitch, signal, speaker
    from tokbench.metrics import reference_features as reference

    scores = Scores()
    # An output longer than its reference is compared with the reference zero-padded to its
    # length, so the extra part counts (tokbench.run.decode_score); reference-side features
    # (F0, speaker embedding) stay those of the reference itself.
    ref_sig = ref16 if len(hyp16) <= len(ref16) else np.pad(ref16, (0, len(hyp16) - len(ref16)))
    scores.update(signal.pesq_scores(ref_sig, hyp16))
    scores.update(signal.stoi_scores(ref_sig, hyp16))
    scores.compute("mel_l1", lambda: mel.mel_l1(ref_sig, hyp16))

    def f0_key(feature: str) -> str:
        return reference.reference_key(refkeys.dataset, refkeys.revision, utterance_id, feature)

    try:
        f0_ref = reference.cached_f0(cache, f0_key("f0"), ref16)
        scores.update(pitch.pitch_scores(f0_ref, pitch.f0_contour(hyp16)))
    except NotComputable as exc:
        scores.fail(pitch.PITCH_METRICS, str(exc))

    def secs() -> float:
        ref_emb = reference.cached_embedding(cache, f0_key("speaker"), ref16)
        return speaker.secs(ref_emb, hyp16)

    scores.compute("secs", secs)
    return scores


score_signals.metrics = SIGNAL_METRICS  # type: ignore[attr-defined]  # what a crash nulls


@dataclass
class Pending:
    """Items whose signal metrics are being computed by the pool."""

    items: list[ScoreItem]
    futures: list[Call | Deferred | Scores]


class Scorer:
    """Scores items in a worker pool (``workers`` processes; 0 = in this process)."""

    def __init__(self, cache: Cache, refkeys: ReferenceKeys, workers: int | None = None,
                 asr=None):
        self.cache = cache
        self.refkeys = refkeys
        self.asr = asr  # an AsrScorer or None (then wer/cer are not computed, with a reason)
        self.workers = workers_per_rank(workers)
        self._pool: MetricPool | None = MetricPool(self.workers) if self.workers > 0 else None

    def submit(self, item: ScoreItem) -> Call | Deferred | Scores:
        """Start the signal metrics of ``item``: a future (a deferred call without a pool)."""
        if item.hyp16 is None:
            s = Scores()
            s.fail(SIGNAL_METRICS, item.reason or "no output")
            return s
        return self.call(score_signals, item.ref16, item.hyp16, self.cache, self.refkeys,
                         item.utterance_id)

    def call(self, fn: Callable[..., Any], *args: Any) -> Call | Deferred:
        """Run any picklable ``fn(*args)`` returning :class:`Scores` in the pool (inline without
        one): for a task's own CPU metrics (e.g. ``vc``). Collect the value with :meth:`collect`."""
        if self._pool is None:
            return Deferred(fn, args)
        return self._pool.submit(fn, *args)

    def collect(self, pending: Call | Deferred | Scores) -> Scores:
        """The scores of what :meth:`submit` or :meth:`call` returned; a call whose worker
        crashed gives its metrics null with the reason (the pool is rebuilt for the others)."""
        if isinstance(pending, Call):
            assert self._pool is not None
            try:
                return self._pool.result(pending)
            except WorkerCrashed as exc:
                return _crashed(pending, str(exc))
        return pending.result() if isinstance(pending, Deferred) else pending

    def asr_scores(self, items: Sequence[ScoreItem]) -> list[Scores]:
        """WER/CER for ``items`` (batched ASR), or null with the reason when ASR is unavailable."""
        out = [Scores() for _ in items]
        for k, it in enumerate(items):  # a failed output's own reason comes first
            if it.hyp16 is None:
                out[k].fail(ASR_METRICS, it.reason or "no output")
        scorable = [k for k, it in enumerate(items) if it.hyp16 is not None]
        if self.asr is None or not self.asr.available:
            reason = "ASR disabled (--set asr=false)" if self.asr is None else self.asr.reason
            for k in scorable:
                out[k].fail(ASR_METRICS, reason)
                if self.asr is not None:  # not available yet: computed on the next run
                    out[k].extra["transient"] = list(ASR_METRICS)
            return out
        if not scorable:
            return out
        # ASR of the original audio: computed once per dataset and ASR model, then cached. Output
        # identical to its reference (the identity row) reuses it instead of a second ASR pass.
        gt = self.asr.ground_truth(self.cache, self.refkeys.dataset, self.refkeys.revision,
                                   [(items[k].utterance_id, items[k].ref16) for k in scorable])
        same = [k for k in scorable if np.array_equal(items[k].hyp16, items[k].ref16)]
        todo = sorted(set(scorable) - set(same))
        if same:
            texts = [gt[items[k].utterance_id] for k in same]
            for k, s in zip(same, self.asr.score_texts([items[k].text for k in same], texts), strict=True):
                out[k] = s
        if todo:
            scored = self.asr.score([items[k].text for k in todo], [items[k].hyp16 for k in todo])
            for k, s in zip(todo, scored, strict=True):
                out[k] = s
        for k in scorable:
            out[k].extra["asr_text_original"] = gt[items[k].utterance_id]
        return out

    def start(self, items: Sequence[ScoreItem]) -> Pending:
        """Submit the signal metrics of ``items`` to the pool and return at once."""
        return Pending(list(items), [self.submit(it) for it in items])

    def finish(self, pending: Pending) -> Iterator[tuple[ScoreItem, Scores]]:
        """Run ASR on the items here (batched), then collect their signal metrics."""
        asr = self.asr_scores(pending.items)
        for it, p, a in zip(pending.items, pending.futures, asr, strict=True):
            s = self.collect(p)
            s.update(a)
            yield it, s

    def score(self, items: Sequence[ScoreItem]) -> Iterator[tuple[ScoreItem, Scores]]:
        return self.finish(self.start(items))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> Scorer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _crashed(call: Call, reason: str) -> Scores:
    """Null scores for a crashed call: the metrics its function declares it computes."""
    scores = Scores()
    scores.fail(getattr(call.fn, "metrics", SIGNAL_METRICS), reason)
    return scores


def check_output(wav: np.ndarray) -> str | None:
    """Why a decoder output cannot be scored (NaN/inf samples), or None if it can."""
    if not np.all(np.isfinite(wav)):
        bad = int(np.sum(~np.isfinite(wav)))
        return f"the decoder returned {bad} NaN or infinite samples"
    return None


__all__ = ["ASR_METRICS", "SIGNAL_METRICS", "NotComputable", "ReferenceKeys", "ScoreItem",
           "Scorer", "check_output", "score_signals"]
