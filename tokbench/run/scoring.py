"""Scoring a decoded (or externally made) signal against its reference, the same way everywhere.

``recon``, ``vc`` and ``tokbench score`` go through :class:`Scorer`, which dispatches on the
metric declarations (:mod:`tokbench.metrics.kit`) and names no metric itself:

- *worker* computations (PESQ, STOI, pitch, Resemblyzer SECS, mel and STFT distances, ...) run
  in a pool of worker processes, one torch thread each, forked from a server that preloaded the
  modules their declarations name, while the caller keeps the model busy;
- *model* computations (ASR for WER/CER, WavLM speaker similarity, UTMOS, ...) run in the calling
  process on its device, each model loaded once per scorer.

Reference-side features (F0, speaker embeddings, mel cepstra, the reference VAD) come from the
reference cache, so they are computed once per dataset and reused for every tokenizer.

Which metrics are computed is the scorer's ``metrics`` (``tokbench.metrics.selection``; default:
the set of every run before selection existed); an item may ask for fewer (``ScoreItem.metrics``:
the ones a resumed run lacks). A reference without speech (Silero VAD) makes the metrics that
need the reference audio (``Needs.reference``) null with that reason; the others (DNSMOS, UTMOS,
WER/CER against the transcript) are still computed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tokbench.io.cache import Cache
from tokbench.metrics.base import NotComputable, Scores
from tokbench.metrics.kit import Metric, SignalInput, declarations
from tokbench.metrics.selection import reference_audio_metrics, resolve_metrics
from tokbench.run.model_metrics import ModelMetrics
from tokbench.run.pool import (
    Call,
    Deferred,
    MetricPool,
    WorkerCrashed,
    start_fork_server,
    workers_per_rank,
)

# What every pool that computes worker metrics preloads besides what their declarations name:
# the scorer and the reference VAD (its model and torch).
ENGINE_PRELOAD = ("tokbench.run.scoring", "tokbench.metrics.reference_features",
                  "tokbench.metrics.vad", "torch", "silero_vad", "silero_vad.data")


def computations(where: str, names: Sequence[str] | None = None) -> list[Metric]:
    """The declarations computed ``where`` ("worker" or "model"), those of ``names`` only if
    given, in listing order."""
    wanted = None if names is None else set(names)
    return [d for d in declarations() if d.where == where
            and (wanted is None or wanted & set(d.names))]


def worker_metrics() -> tuple[str, ...]:
    """Every metric a worker computes."""
    return tuple(n for d in computations("worker") for n in d.names)


@dataclass
class ScoreItem:
    utterance_id: str
    ref16: np.ndarray  # the original at 16 kHz
    hyp16: np.ndarray | None  # the output at 16 kHz as scored (decode_score.fit_output); None if failed
    text: str | None = None  # reference transcript
    reason: str | None = None  # why hyp16 is None
    extra: dict = field(default_factory=dict)
    # the metrics to compute for this item (None: the scorer's selection), e.g. only those a
    # resumed run's record lacks
    metrics: tuple[str, ...] | None = None
    # the rate the output's audio really has (a tokenizer's or source's rate below 16 kHz
    # band-limits it): metrics whose model expects more are flagged (Needs.sample_rate)
    audio_rate: int | None = None


@dataclass(frozen=True)
class ReferenceKeys:
    """Identifies the reference side (dataset, revision) for the reference-feature cache."""

    dataset: str
    revision: str


def score_signals(ref16: np.ndarray, hyp16: np.ndarray, cache: Cache | None,
                  refkeys: ReferenceKeys | None, utterance_id: str,
                  metrics: Sequence[str] | None = None) -> Scores:
    """The selected worker metrics of one utterance (runs in a worker process).

    ``metrics``: names of worker metrics (None: those of the default selection); others are
    ignored. Only the selected names appear in the result. Each declaration's ``compute`` gets
    a :class:`~tokbench.metrics.kit.SignalInput`; what it raises other than NotComputable is
    recorded as its metrics' reason, never a score.
    """
    from tokbench.metrics import reference_features as reference
    from tokbench.metrics import vad

    selected = resolve_metrics(None) if metrics is None else tuple(metrics)
    todo = computations("worker", selected)
    wanted = tuple(n for d in todo for n in d.names if n in selected)
    scores = Scores()
    if not todo:
        return scores
    # An output longer than its reference is compared with the reference zero-padded to its
    # length, so the extra part counts (tokbench.run.decode_score); reference-side features
    # (F0, speaker embedding, mel cepstra, VAD) stay those of the reference itself.
    ref_sig = ref16 if len(hyp16) <= len(ref16) else np.pad(ref16, (0, len(hyp16) - len(ref16)))
    refs = SignalInput(ref_sig, hyp16, ref16, cache, refkeys, utterance_id, wanted)
    needs_reference = [n for d in todo for n in d.names if n in wanted and d.needs_for(n).reference]
    no_speech: str | None = None
    if needs_reference:
        try:
            seconds = (vad.speech_seconds(ref16) if cache is None or refkeys is None else
                       reference.cached_speech_seconds(cache, refs.key("speech") or "", ref16))
            scores.extra["reference_speech_seconds"] = round(seconds, 3)
            vad.require_speech(seconds)
        except NotComputable as exc:
            no_speech = str(exc)
            scores.extra["reference_without_speech"] = no_speech
    for d in todo:
        names = tuple(n for n in d.names if n in wanted)
        blocked = [n for n in names if no_speech and d.needs_for(n).reference]
        if blocked:
            scores.fail(blocked, no_speech or "")
        rest = tuple(n for n in names if n not in blocked)
        if rest:
            scores.compute(rest, _bound(d, SignalInput(ref_sig, hyp16, ref16, cache, refkeys,
                                                       utterance_id, rest)))
    return scores


def _bound(metric: Metric, x: SignalInput) -> Callable[[], Any]:
    """``metric``'s computation on ``x``, ready for :meth:`Scores.compute`."""
    compute = metric.compute
    assert compute is not None
    return lambda: compute(x)


@dataclass
class Pending:
    """Items whose signal metrics are being computed by the pool."""

    items: list[ScoreItem]
    futures: list[Call | Deferred | Scores]


class Scorer:
    """Scores items in a worker pool (``workers`` processes; 0 = in this process).

    ``metrics``: a selection (``tokbench.metrics.selection.resolve_metrics`` input; None: the
    default set). ``asr``: the task's ASR scorer (None: ASR off, so WER/CER are null with that
    reason). ``device``: where the calling process's models run. ``checkpoints``: local weights
    for model metrics by metric name (e.g. ``{"utmos": "/path/utmos22_strong_step7459_v1.pt"}``)
    instead of the pinned download. ``log``: where the one-time notices go. Public methods:
    :meth:`start`, :meth:`finish`, :meth:`score`, :meth:`call`, :meth:`collect`, :meth:`close`,
    and use as a context manager.
    """

    def __init__(self, cache: Cache, refkeys: ReferenceKeys, workers: int | None = None,
                 asr=None, metrics: str | Sequence[str] | None = None, device: str = "cpu",
                 checkpoints: Mapping[str, str] | None = None,
                 log: Callable[[str], None] | None = None):
        self.cache = cache
        self.refkeys = refkeys
        self.asr = asr
        self.metrics: tuple[str, ...] = resolve_metrics(metrics)
        self.device = device
        self.log = log or (lambda message: print(message, file=sys.stderr))
        self._models = ModelMetrics(device, checkpoints, asr)
        self._worker_names = frozenset(worker_metrics())
        self._reference_audio = reference_audio_metrics()
        self._rate_warned: set[str] = set()
        self.workers = workers_per_rank(workers)
        self._pool: MetricPool | None = (
            MetricPool(self.workers, preload_for(self.metrics)) if self.workers > 0 else None)

    def wanted(self, item: ScoreItem) -> tuple[str, ...]:
        """The metrics to compute for ``item``: its own list within the selection."""
        if item.metrics is None:
            return self.metrics
        return tuple(m for m in self.metrics if m in item.metrics)

    def failed(self, reason: str, metrics: Sequence[str] | None = None) -> Scores:
        """Every selected metric (or ``metrics``) null with ``reason``: for an item without output."""
        s = Scores()
        s.fail(list(self.metrics if metrics is None else metrics), reason)
        return s

    def submit(self, item: ScoreItem) -> Call | Deferred | Scores:
        """Start the worker metrics of ``item``: a future (a deferred call without a pool)."""
        wanted = tuple(m for m in self.wanted(item) if m in self._worker_names)
        if item.hyp16 is None:
            return self.failed(item.reason or "no output", wanted)
        if not wanted:
            return Scores()
        return self.call(score_signals, item.ref16, item.hyp16, self.cache, self.refkeys,
                         item.utterance_id, wanted)

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

    def model_scores(self, items: Sequence[ScoreItem]) -> list[Scores]:
        """The model metrics of ``items`` (ASR, WavLM similarity, UTMOS, ...) in this process."""
        return self._models.scores(items, self.wanted, self.cache, self.refkeys)

    # the model metrics are where ASR runs; tasks that score only with ASR besides their own
    # CPU metrics (vc) call this name
    asr_scores = model_scores

    def start(self, items: Sequence[ScoreItem]) -> Pending:
        """Submit the worker metrics of ``items`` to the pool and return at once."""
        return Pending(list(items), [self.submit(it) for it in items])

    def finish(self, pending: Pending) -> Iterator[tuple[ScoreItem, Scores]]:
        """Run the model metrics on the items here, then collect their worker metrics. A
        reference without speech (found by the workers) nulls every metric that needs the
        reference audio, with that reason."""
        models = self.model_scores(pending.items)
        for it, p, m in zip(pending.items, pending.futures, models, strict=True):
            s = self.collect(p)
            transient = [*s.extra.get("transient", []), *m.extra.get("transient", [])]
            s.update(m)
            if transient:
                s.extra["transient"] = transient
            why = s.extra.get("reference_without_speech")
            if why:
                blocked = [n for n in self.wanted(it) if n in self._reference_audio]
                s.fail(blocked, why)
                ratio = s.extra.get("ratio", {})
                for n in blocked:
                    ratio.pop(n, None)
            self._flag_rates(it, s)
            yield it, s

    def _flag_rates(self, item: ScoreItem, scores: Scores) -> None:
        """Metrics whose model expects a higher rate than the output's audio has: said once per
        scorer (run) and recorded with the values (``extra.rate_below_metric``)."""
        if item.audio_rate is None:
            return
        low = {}
        for name in self.wanted(item):
            need = _declaration(name).needs_for(name).sample_rate
            if need and item.audio_rate < need and scores.values.get(name) is not None:
                low[name] = need
        if not low:
            return
        scores.extra["rate_below_metric"] = {"audio_rate": item.audio_rate, "expects": low}
        new = sorted(set(low) - self._rate_warned)
        if new:
            self._rate_warned.update(new)
            self.log(f"warning: the audio has {item.audio_rate} Hz of bandwidth but "
                     f"{', '.join(new)} expect{'s' if len(new) == 1 else ''} "
                     f"{max(low[n] for n in new)} Hz audio: their values are those of "
                     "band-limited audio (recorded in each record's extra.rate_below_metric)")

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


def _declaration(name: str) -> Metric:
    from tokbench.metrics.kit import declaration_of

    return declaration_of(name)


def preload_for(metrics: Sequence[str]) -> tuple[str, ...]:
    """The modules a pool's workers preload when a selection has worker metrics: the engine's
    and every worker computation's declared ones (none without worker metrics). All of them,
    not only the selection's: one fork server serves a whole process, and a later run with a
    larger selection would otherwise import the rest in every worker it forks."""
    if not computations("worker", metrics):
        return ()
    out = list(ENGINE_PRELOAD)
    for d in computations("worker"):
        out += [d.module, *d.preload]
    return tuple(dict.fromkeys(out))


def start_workers_early(metrics: str | Sequence[str] | None = None, workers: int | None = None) -> None:
    """Start the process the workers of a :class:`Scorer` with these arguments will be forked
    from, now, so that it imports their libraries while the caller does its own start-up
    (``tokbench.run.pool.start_fork_server``; nothing where workers are spawned or ``workers``
    is 0)."""
    if workers_per_rank(workers) > 0:
        start_fork_server(preload_for(resolve_metrics(metrics)))


def _crashed(call: Call, reason: str) -> Scores:
    """Null scores for a crashed call: the metrics its function declares it computes."""
    scores = Scores()
    names = getattr(call.fn, "metrics", ())
    if call.fn is score_signals and len(call.args) > 5 and call.args[5] is not None:
        names = call.args[5]  # the selection this call computed
    scores.fail(list(names), reason)
    return scores


def check_output(wav: np.ndarray) -> str | None:
    """Why a decoder output cannot be scored (NaN/inf samples), or None if it can."""
    if not np.all(np.isfinite(wav)):
        bad = int(np.sum(~np.isfinite(wav)))
        return f"the decoder returned {bad} NaN or infinite samples"
    return None


__all__ = ["NotComputable", "ReferenceKeys", "ScoreItem", "Scorer", "check_output",
           "computations", "preload_for", "score_signals", "worker_metrics"]
