"""How metric computations report results: values, or ``None`` with a reason. No sentinels."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class NotComputable(Exception):
    """Raised by a metric function when its value is undefined for this input (says why)."""


class CallerError(ValueError):
    """A metric was called wrongly (a 2-D array, signals of different lengths): a bug in the
    caller, raised through :meth:`Scores.compute` instead of being recorded as a reason."""


@dataclass
class Scores:
    """Metric values of one utterance, with a reason for each one that is ``None``."""

    values: dict[str, float | None] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def put(self, name: str, value: float | None, reason: str | None = None) -> None:
        if value is not None and not math.isfinite(float(value)):
            reason, value = reason or f"value was not finite ({value})", None
        self.values[name] = None if value is None else float(value)
        if value is None:
            self.reasons[name] = reason or "not computed"
        else:
            self.reasons.pop(name, None)

    def fail(self, names: list[str] | tuple[str, ...], reason: str) -> None:
        for name in names:
            self.put(name, None, reason)

    def compute(self, names: str | tuple[str, ...], fn: Callable[[], Any]) -> None:
        """Run ``fn``; store its value(s) under ``names``, or None + reason if it raises
        :class:`NotComputable`. Any other exception (a library failing on an input nobody
        foresaw) is recorded as the metric's reason with its type, so one odd utterance never
        ends a run; the run's failure account lists it."""
        keys: tuple[str, ...] = (names,) if isinstance(names, str) else tuple(names)
        try:
            result = fn()
        except NotComputable as exc:
            self.fail(list(keys), str(exc))
            return
        except CallerError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded, with its type, never a score
            self.fail(list(keys), f"the metric raised {type(exc).__name__}: {exc}")
            return
        if isinstance(result, Scores):  # a computation that gives each name its own reason
            for k in keys:
                if k in result.values:
                    self.put(k, result.values[k], result.reasons.get(k))
                else:
                    self.put(k, None, "not computed")
            self.update(Scores(extra=result.extra))
        elif isinstance(names, str) or (len(keys) == 1 and not isinstance(result, (dict, tuple, list))):
            self.put(keys[0], result)
        elif isinstance(result, dict):
            for k in keys:
                self.put(k, result.get(k), None if result.get(k) is not None else "not computed")
        else:
            for k, v in zip(keys, result, strict=True):
                self.put(k, v)

    def update(self, other: Scores) -> None:
        for name, value in other.values.items():
            self.put(name, value, other.reasons.get(name))
        for key, value in other.extra.items():
            # dicts keyed by metric (e.g. "ratio": WER edit counts) merge rather than replace
            if isinstance(value, dict) and isinstance(self.extra.get(key), dict):
                self.extra[key] = {**self.extra[key], **value}
            else:
                self.extra[key] = value
