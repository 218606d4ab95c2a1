"""The two shapes of a model metric (``where="model"`` in the metric kit), and their shared loop.

- :class:`Similarity`: the cosine of a model's embeddings of the output and of the reference,
  the reference side cached per dataset and exact model weights (e.g. WavLM x-vectors);
- :class:`NonIntrusive`: a model's prediction from the output alone (e.g. UTMOS).

Each wraps a lazily loaded model object with ``available``, ``reason``, ``weights`` (a string
naming the exact weights, part of the reference cache key) and ``embed(wav16, role)`` or
``predict(wav16, role)`` (:class:`tokbench.metrics.lazy_model.LazyModel`). An unavailable model
makes the metric null with the model's reason, marked ``transient`` so that the next run
computes it rather than keeping the gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tokbench.metrics.base import Scores

if TYPE_CHECKING:
    from tokbench.io.cache import Cache
    from tokbench.run.scoring import ReferenceKeys, ScoreItem


class PerItem:
    """The loop every single-metric model scorer shares: per item that asks for it, the output's
    own failure first, then the model's unavailability (null, transient), then :meth:`value`."""

    name: str
    model: Any

    def value(self, item: ScoreItem, cache: Cache, refkeys: ReferenceKeys) -> float:
        raise NotImplementedError

    def scores(self, items: Sequence[ScoreItem], wanted: Sequence[tuple[str, ...]], cache: Cache,
               refkeys: ReferenceKeys) -> list[Scores]:
        out = [Scores() for _ in items]
        for k, it in enumerate(items):
            if self.name not in wanted[k]:
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


class Similarity(PerItem):
    """Cosine of ``model.embed`` of output and reference; the reference side cached as
    ``feature`` (a registered reference feature) under the model's exact weights."""

    def __init__(self, name: str, feature: str, model: Any):
        self.name, self.feature, self.model = name, feature, model

    def value(self, item: ScoreItem, cache: Cache, refkeys: ReferenceKeys) -> float:
        from tokbench.metrics import reference_features as reference
        from tokbench.metrics.speaker import cosine

        key = reference.reference_key(refkeys.dataset, refkeys.revision, item.utterance_id,
                                      self.feature, model=self.model.weights)
        ref = reference.cached_model_embedding(cache, self.feature, key, item.ref16, self.model.embed)
        return cosine(ref, self.model.embed(item.hyp16, "output"))


class NonIntrusive(PerItem):
    """``model.predict`` of the output alone (the reference plays no part)."""

    def __init__(self, name: str, model: Any):
        self.name, self.model = name, model

    def value(self, item: ScoreItem, cache: Cache, refkeys: ReferenceKeys) -> float:
        return float(self.model.predict(item.hyp16, "output"))
