"""Scoring a decoded (or externally made) signal against its reference, the same way everywhere.

``recon`` and ``tokbench score`` both go through :class:`Scorer`: CPU metrics (PESQ, STOI, pitch,
Resemblyzer SECS, mel and STFT distances, SI-SDR/SDR, MCD, DNSMOS) run in a pool of spawned
worker processes, one torch thread each, while the caller keeps the model busy; the metrics of
large models (ASR for WER/CER/dWER/dCER, WavLM speaker similarity, UTMOS;
``tokbench.run.model_metrics``) run in the calling process on its device, each model loaded
once per process. Reference-side features (F0, speaker
embeddings, mel cepstra, the reference VAD) come from the reference cache, so they are computed
once per dataset and reused for every tokenizer.

Which metrics are computed is the scorer's ``metrics`` (``tokbench.metrics.selection``; default:
the set of every run before selection existed); an item may ask for fewer (``ScoreItem.metrics``:
the ones a resumed run lacks). A reference without speech (Silero VAD) makes the metrics that
compare with the reference audio null with that reason; the non-intrusive ones (DNSMOS, UTMOS) and
WER/CER against the transcript are still computed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tokbench.io.cache import Cache
from tokbench.metrics.base import NotComputable, Scores
from tokbench.metrics.selection import (
    ALL,
    DEFAULT,
    GROUPS,
    REFERENCE_AUDIO_METRICS,
    resolve_metrics,
)
from tokbench.run.model_metrics import MODEL_METRICS as _MODEL_SCORERS
from tokbench.run.model_metrics import ModelMetrics
from tokbench.run.pool import (
    Call,
    Deferred,
    MetricPool,
    WorkerCrashed,
    start_fork_server,
    workers_per_rank,
)

# Metrics computed in the calling process (model-based, on the run's device).
ASR_ALL = GROUPS["asr"]
MODEL_METRICS = tuple(_MODEL_SCORERS)
# Metrics computed in the worker pool: everything else.
WORKER_METRICS = tuple(m for m in ALL if m not in ASR_ALL and m not in MODEL_METRICS)
# The default selection's parts (what every run computed before --metrics), kept for callers.
SIGNAL_METRICS = tuple(m for m in DEFAULT if m in WORKER_METRICS)
ASR_METRICS = ("wer", "cer")
# What the workers of a pool computing worker metrics import, loaded once in the fork server
# (tokbench.run.pool): the metric modules and their libraries (scipy via pystoi; librosa's numba
# kernels via mel_l1 and Resemblyzer's preprocessing, including the submodules librosa loads
# lazily on first use; torch via Resemblyzer and Silero VAD). Not onnxruntime: its import starts
# a thread, and a process with threads is not safe to fork from (it costs only ~0.05 s).
WORKER_PRELOAD = (
    "tokbench.run.scoring", "tokbench.metrics.reference_features", "tokbench.metrics.signal",
    "tokbench.metrics.pitch", "tokbench.metrics.mel", "tokbench.metrics.distortion",
    "tokbench.metrics.dnsmos", "tokbench.metrics.vad", "librosa.filters", "librosa.core.audio",
    "librosa.core.spectrum", "librosa.core.constantq", "librosa.core.pitch", "librosa.feature",
    "librosa.feature.spectral", "librosa.sequence", "librosa.util.utils", "torch",
    "torch.utils.serialization", "resemblyzer", "silero_vad", "silero_vad.data",
)


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


@dataclass(frozen=True)
class ReferenceKeys:
    """Identifies the reference side (dataset, revision) for the reference-feature cache."""

    dataset: str
    revision: str


def score_signals(ref16: np.ndarray, hyp16: np.ndarray, cache: Cache, refkeys: ReferenceKeys,
                  utterance_id: str, metrics: Sequence[str] | None = None) -> Scores:
    """The selected worker-pool metrics of one utterance (runs in a worker process).

    ``metrics``: names among :data:`WORKER_METRICS` (None: the default selection's
    :data:`SIGNAL_METRICS`); others are ignored. Only the selected names appear in the result.
    """
    from tokbench.metrics import distortion, dnsmos, mel, pitch, signal, speaker, vad
    from tokbench.metrics import reference_features as reference

    wanted = [m for m in (SIGNAL_METRICS if metrics is None else metrics) if m in WORKER_METRICS]
    scores = Scores()
    # An output longer than its reference is compared with the reference zero-padded to its
    # length, so the extra part counts (tokbench.run.decode_score); reference-side features
    # (F0, speaker embedding, mel cepstra, VAD) stay those of the reference itself.
    ref_sig = ref16 if len(hyp16) <= len(ref16) else np.pad(ref16, (0, len(hyp16) - len(ref16)))

    def key(feature: str) -> str:
        return reference.reference_key(refkeys.dataset, refkeys.revision, utterance_id, feature)

    if any(m in dnsmos.METRICS for m in wanted):  # non-intrusive: the output alone
        scores.update(dnsmos.dnsmos_scores(hyp16, tuple(m for m in dnsmos.METRICS if m in wanted)))
    intrusive = [m for m in wanted if m in REFERENCE_AUDIO_METRICS]
    if not intrusive:
        return scores
    try:
        seconds = reference.cached_speech_seconds(cache, key("speech"), ref16)
        scores.extra["reference_speech_seconds"] = round(seconds, 3)
        vad.require_speech(seconds)
    except NotComputable as exc:
        scores.fail(intrusive, str(exc))
        scores.extra["reference_without_speech"] = str(exc)
        return scores

    if "pesq_wb" in wanted or "pesq_nb" in wanted:
        both = signal.pesq_scores(ref_sig, hyp16)
        scores.update(_only(both, wanted))
    if "stoi" in wanted:
        scores.compute("stoi", lambda: signal.stoi_score(ref_sig, hyp16, extended=False))
    if "estoi" in wanted:
        scores.compute("estoi", lambda: signal.stoi_score(ref_sig, hyp16, extended=True))
    if "mel_l1" in wanted:
        scores.compute("mel_l1", lambda: mel.mel_l1(ref_sig, hyp16))
    if "si_sdr" in wanted:
        scores.compute("si_sdr", lambda: distortion.si_sdr(ref_sig, hyp16))
    if "sdr" in wanted:
        scores.compute("sdr", lambda: distortion.sdr(ref_sig, hyp16))
    if "mstft_distance" in wanted:
        scores.compute("mstft_distance", lambda: distortion.mstft_distance(ref_sig, hyp16))
    if "mcd" in wanted:
        def mcd() -> float:
            ref_mc = (reference.cached_mcep(cache, key("mcep"), ref16) if ref_sig is ref16
                      else distortion.mel_cepstrum(ref_sig, "reference"))
            return distortion.mcd_from_cepstra(ref_mc, distortion.mel_cepstrum(hyp16, "output"))

        scores.compute("mcd", mcd)

    pitch_wanted = [m for m in pitch.PITCH_METRICS if m in wanted]
    if pitch_wanted:
        try:
            f0_ref = reference.cached_f0(cache, key("f0"), ref16)
            scores.update(_only(pitch.pitch_scores(f0_ref, pitch.f0_contour(hyp16)), wanted))
        except NotComputable as exc:
            scores.fail(pitch_wanted, str(exc))

    if "secs" in wanted:
        def secs() -> float:
            ref_emb = reference.cached_embedding(cache, key("speaker"), ref16)
            return speaker.secs(ref_emb, hyp16)

        scores.compute("secs", secs)
    return scores


def _only(scores: Scores, wanted: Sequence[str]) -> Scores:
    """``scores`` restricted to the ``wanted`` metrics (extras kept)."""
    out = Scores(extra=dict(scores.extra))
    for name, value in scores.values.items():
        if name in wanted:
            out.put(name, value, scores.reasons.get(name))
    return out


score_signals.metrics = SIGNAL_METRICS  # type: ignore[attr-defined]  # what a crash nulls


@dataclass
class Pending:
    """Items whose signal metrics are being computed by the pool."""

    items: list[ScoreItem]
    futures: list[Call | Deferred | Scores]


class Scorer:
    """Scores items in a worker pool (``workers`` processes; 0 = in this process).

    ``metrics``: a selection (``tokbench.metrics.selection.resolve_metrics`` input; None: the
    default set). ``device``: where the calling process's models run (the model metrics of
    ``tokbench.run.model_metrics``; the ASR scorer has its own). ``checkpoints``: local weights
    for model metrics by metric name (e.g. ``{"utmos": "/path/utmos22_strong_step7459_v1.pt"}``)
    instead of the pinned download. Public methods: :meth:`start`, :meth:`finish`,
    :meth:`score`, :meth:`call`, :meth:`close`, and use as a context manager.
    """

    def __init__(self, cache: Cache, refkeys: ReferenceKeys, workers: int | None = None,
                 asr=None, metrics: str | Sequence[str] | None = None, device: str = "cpu",
                 checkpoints: Mapping[str, str] | None = None):
        self.cache = cache
        self.refkeys = refkeys
        self.asr = asr  # an AsrScorer or None (then wer/cer are not computed, with a reason)
        self.metrics: tuple[str, ...] = resolve_metrics(metrics)
        self.device = device
        self._models = ModelMetrics(device, checkpoints)
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
        wanted = tuple(m for m in self.wanted(item) if m in WORKER_METRICS)
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

    def asr_scores(self, items: Sequence[ScoreItem]) -> list[Scores]:
        """WER/CER (vs the transcript) and dWER/dCER (vs the ASR text of the reference audio)
        for ``items`` (batched ASR), or null with the reason when ASR is unavailable."""
        out = [Scores() for _ in items]
        wanted = [tuple(m for m in self.wanted(it) if m in ASR_ALL) for it in items]
        if not any(wanted):
            return out
        for k, it in enumerate(items):  # a failed output's own reason comes first
            if it.hyp16 is None:
                out[k].fail(list(wanted[k]), it.reason or "no output")
        scorable = [k for k, it in enumerate(items) if it.hyp16 is not None and wanted[k]]
        if self.asr is None or not self.asr.available:
            reason = "ASR disabled (--set asr=false)" if self.asr is None else self.asr.reason
            for k in scorable:
                out[k].fail(list(wanted[k]), reason)
                if self.asr is not None:  # not available yet: computed on the next run
                    out[k].extra["transient"] = list(wanted[k])
            return out
        if not scorable:
            return out
        from tokbench.metrics.asr import dwer_dcer

        # ASR of the original audio: computed once per dataset and ASR model, then cached. Output
        # identical to its reference (the identity row) reuses it instead of a second ASR pass.
        gt = self.asr.ground_truth(self.cache, self.refkeys.dataset, self.refkeys.revision,
                                   [(items[k].utterance_id, items[k].ref16) for k in scorable])
        same = [k for k in scorable
                if np.array_equal(np.asarray(items[k].hyp16), items[k].ref16)]
        todo = sorted(set(scorable) - set(same))
        texts: dict[int, str] = {k: gt[items[k].utterance_id] for k in same}
        if todo:
            for k, text in zip(todo, self.asr.transcribe([items[k].hyp16 for k in todo]),
                               strict=True):
                texts[k] = text
        for k in scorable:
            ref_asr = gt[items[k].utterance_id]
            s = self.asr.score_texts([items[k].text], [texts[k]])[0]
            result = Scores(extra=dict(s.extra))
            for name in ("wer", "cer"):
                if name in wanted[k]:
                    result.put(name, s.values.get(name), s.reasons.get(name))
            result.extra["ratio"] = {n: v for n, v in s.extra.get("ratio", {}).items()
                                     if n in wanted[k]}
            if any(n in wanted[k] for n in ("dwer", "dcer")):
                d = dwer_dcer(ref_asr, texts[k])
                for name in ("dwer", "dcer"):
                    if name in wanted[k]:
                        result.put(name, d.values.get(name), d.reasons.get(name))
                result.extra["ratio"].update({n: v for n, v in d.extra.get("ratio", {}).items()
                                              if n in wanted[k]})
            if not result.extra["ratio"]:
                result.extra.pop("ratio")
            result.extra["asr_text_original"] = ref_asr
            out[k] = result
        return out

    def model_scores(self, items: Sequence[ScoreItem]) -> list[Scores]:
        """The model metrics of ``items`` (WavLM similarity, UTMOS, ...) in this process."""
        return self._models.scores(items, self.wanted, self.cache, self.refkeys)

    def start(self, items: Sequence[ScoreItem]) -> Pending:
        """Submit the worker metrics of ``items`` to the pool and return at once."""
        return Pending(list(items), [self.submit(it) for it in items])

    def finish(self, pending: Pending) -> Iterator[tuple[ScoreItem, Scores]]:
        """Run ASR and the model metrics on the items here, then collect their worker metrics.
        A reference without speech (found by the workers) nulls its dWER/dCER and WavLM
        similarity too, with that reason."""
        asr = self.asr_scores(pending.items)
        models = self.model_scores(pending.items)
        for it, p, a, m in zip(pending.items, pending.futures, asr, models, strict=True):
            s = self.collect(p)
            transient = [*a.extra.get("transient", []), *m.extra.get("transient", [])]
            s.update(a)
            s.update(m)
            if transient:
                s.extra["transient"] = transient
            why = s.extra.get("reference_without_speech")
            if why:
                s.fail([n for n in self.wanted(it) if n in REFERENCE_AUDIO_METRICS], why)
                ratio = s.extra.get("ratio", {})
                for n in ("dwer", "dcer"):
                    ratio.pop(n, None)
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


def preload_for(metrics: Sequence[str]) -> tuple[str, ...]:
    """The modules a pool's workers preload for a selection: :data:`WORKER_PRELOAD` when it has
    worker metrics, none otherwise."""
    return WORKER_PRELOAD if any(m in WORKER_METRICS for m in metrics) else ()


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
    names = getattr(call.fn, "metrics", SIGNAL_METRICS)
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


__all__ = ["ASR_METRICS", "MODEL_METRICS", "SIGNAL_METRICS", "WORKER_METRICS", "NotComputable",
           "ReferenceKeys", "ScoreItem", "Scorer", "check_output", "score_signals"]
