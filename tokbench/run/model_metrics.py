"""The model metrics of one scorer: the declarations computed in the calling process
(``where="model"`` in :mod:`tokbench.metrics.kit`), each built on first need and then reused.

A declaration's ``compute`` builds its batch scorer from a
:class:`~tokbench.metrics.kit.ModelContext` (the run's device, a local checkpoint given for one
of its metrics, the task's ASR scorer); the scorer returns the values of the items that ask for
its metrics (:class:`tokbench.metrics.kit.ModelMetric`). The shapes most model metrics take
(similarity of embeddings, non-intrusive prediction) are in :mod:`tokbench.metrics.model_scoring`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tokbench.metrics.base import Scores
from tokbench.metrics.kit import Metric, ModelContext, ModelMetric, declarations

if TYPE_CHECKING:
    from tokbench.io.cache import Cache
    from tokbench.run.scoring import ReferenceKeys, ScoreItem


def model_computations() -> list[Metric]:
    return [d for d in declarations() if d.where == "model"]


class ModelMetrics:
    """The model-based metrics of one scorer: each built on first need, then reused.

    ``checkpoints``: a local checkpoint per metric name, for the model metrics only."""

    def __init__(self, device: str = "cpu", checkpoints: Mapping[str, str] | None = None,
                 asr: Any = None):
        self.device = device
        self.asr = asr
        self.checkpoints = dict(checkpoints or {})
        names = {n for d in model_computations() for n in d.names}
        unknown = sorted(set(self.checkpoints) - names)
        if unknown:
            raise ValueError(f"checkpoints given for {unknown}, which are not model-based metrics; "
                             f"those are {sorted(names)}")
        self._built: dict[str, ModelMetric] = {}

    def _scorer(self, metric: Metric) -> ModelMetric:
        key = metric.names[0]
        if key not in self._built:
            given = [self.checkpoints[n] for n in metric.names if n in self.checkpoints]
            assert metric.compute is not None
            self._built[key] = metric.compute(ModelContext(self.device,
                                                           given[0] if given else None, self.asr))
        return self._built[key]

    def scores(self, items: Sequence[ScoreItem], wanted: Callable[[ScoreItem], Sequence[str]],
               cache: Cache, refkeys: ReferenceKeys) -> list[Scores]:
        """The model metrics each item wants, merged per item (transient names joined)."""
        out = [Scores() for _ in items]
        asks_all = [tuple(wanted(it)) for it in items]
        for metric in model_computations():
            asks = [tuple(n for n in metric.names if n in a) for a in asks_all]
            if not any(asks):
                continue
            for k, s in enumerate(self._scorer(metric).scores(items, asks, cache, refkeys)):
                transient = [*out[k].extra.get("transient", []), *s.extra.get("transient", [])]
                out[k].update(s)
                if transient:
                    out[k].extra["transient"] = transient
        return out
