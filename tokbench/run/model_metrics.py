"""Metrics of large models that run in the calling process, on the run's device.

Two shapes cover them: a *similarity* (the cosine of a model's embeddings of the output and of
the reference, the reference side cached per dataset and model weights, e.g. WavLM x-vectors)
and a *non-intrusive* score (a model's prediction from the output alone, e.g. UTMOS). Each
metric's model loads once per scorer, on first use, and an unavailable model (weights neither
given, cached nor downloadable) makes the metric null with the model's reason, marked
``transient`` so that the next run computes it rather than keeping the gap.

To add one: a model class with ``available``, ``reason``, ``weights`` (a string naming the exact
weights, part of the reference cache key) and ``embed(wav16, role)`` or ``predict(wav16, role)``;
an entry in :data:`MODEL_METRICS`; for a similarity, a feature in
``tokbench.metrics.reference_features.FEATURES``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from tokbench.metrics.base import Scores

if TYPE_CHECKING:
    from tokbench.io.cache import Cache
    from tokbench.run.scoring import ReferenceKeys, ScoreItem


class ModelMetric(Protocol):
    name: str

    def scores(self, items: Sequence[ScoreItem], wanted: Sequence[bool], cache: Cache,
               refkeys: ReferenceKeys) -> list[Scores]: ...


class _PerItem:
    """The loop every model metric shares: per wanted item, the output's own failure first,
    then the model's unavailability (null, transient), then :meth:`value` computed."""

    name: str
    model: Any

    def value(self, item: ScoreItem, cache: Cache, refkeys: ReferenceKeys) -> float:
        raise NotImplementedError

    def scores(self, items: Sequence[ScoreItem], wanted: Sequence[bool], cache: Cache,
               refkeys: ReferenceKeys) -> list[Scores]:
        out = [Scores() for _ in items]
        for k, it in enumerate(items):
            if not wanted[k]:
                continue
            if it.hyp16 is None:
                out[k].put(self.name, None, it.reason or "no output")
            elif not self.model.available:  # never cached: the weights may be there next time
                out[k].put(self.name, None, self.model.reason)
                out[k].extra["transient"] = [self.name]
            else:
                def compute(it: ScoreItem = it) -> float:
                    return self.value(it, cache, refkeys)

                out[k].compute(self.name, compute)
        return out


class Similarity(_PerItem):
    """Cosine of ``model.embed`` of output and reference; the reference side cached as
    ``feature`` under the model's exact weights."""

    def __init__(self, name: str, feature: str, model: Any):
        self.name, self.feature, self.model = name, feature, model

    def value(self, item: ScoreItem, cache: Cache, refkeys: ReferenceKeys) -> float:
        from tokbench.metrics import reference_features as reference
        from tokbench.metrics.speaker import cosine

        key = reference.reference_key(refkeys.dataset, refkeys.revision, item.utterance_id,
                                      self.feature, model=self.model.weights)
        ref = reference.cached_model_embedding(cache, self.feature, key, item.ref16, self.model.embed)
        return cosine(ref, self.model.embed(item.hyp16, "output"))


class NonIntrusive(_PerItem):
    """``model.predict`` of the output alone (the reference plays no part)."""

    def __init__(self, name: str, model: Any):
        self.name, self.model = name, model

    def value(self, item: ScoreItem, cache: Cache, refkeys: ReferenceKeys) -> float:
        return float(self.model.predict(item.hyp16, "output"))


def _wavlm(device: str, checkpoint: str | None) -> ModelMetric:
    from tokbench.metrics.wavlm_speaker import WavLMSpeaker

    return Similarity("spk_sim_wavlm", "wavlm_sv", WavLMSpeaker(device, checkpoint))


def _utmos(device: str, checkpoint: str | None) -> ModelMetric:
    from tokbench.metrics.utmos import UTMOSPredictor

    return NonIntrusive("utmos", UTMOSPredictor(device, checkpoint))


def _ecapa(device: str, checkpoint: str | None) -> ModelMetric:
    from tokbench.metrics.ecapa_speaker import EcapaSpeaker

    return Similarity("spk_sim_ecapa", "ecapa_sv", EcapaSpeaker(device, checkpoint))


# metric name -> its scorer on (device, checkpoint or None); models import lazily.
MODEL_METRICS: dict[str, Callable[[str, str | None], ModelMetric]] = {
    "spk_sim_wavlm": _wavlm,
    "utmos": _utmos,
    "spk_sim_ecapa": _ecapa,
}


class ModelMetrics:
    """The model-based metrics of one scorer: each built on first need, then reused."""

    def __init__(self, device: str = "cpu", checkpoints: Mapping[str, str] | None = None):
        self.device = device
        self.checkpoints = dict(checkpoints or {})
        unknown = sorted(set(self.checkpoints) - set(MODEL_METRICS))
        if unknown:
            raise ValueError(f"checkpoints given for {unknown}, which are not model-based metrics; "
                             f"those are {sorted(MODEL_METRICS)}")
        self._built: dict[str, ModelMetric] = {}

    def scores(self, items: Sequence[ScoreItem], wanted: Callable[[ScoreItem], Sequence[str]],
               cache: Cache, refkeys: ReferenceKeys) -> list[Scores]:
        """The model metrics each item wants, merged per item (transient names joined)."""
        out = [Scores() for _ in items]
        for name, build in MODEL_METRICS.items():
            asks = [name in wanted(it) for it in items]
            if not any(asks):
                continue
            if name not in self._built:
                self._built[name] = build(self.device, self.checkpoints.get(name))
            for k, s in enumerate(self._built[name].scores(items, asks, cache, refkeys)):
                transient = [*out[k].extra.get("transient", []), *s.extra.get("transient", [])]
                out[k].update(s)
                if transient:
                    out[k].extra["transient"] = transient
        return out
