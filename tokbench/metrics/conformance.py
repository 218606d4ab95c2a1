"""The conformance check of a declared metric (``tokbench.testing.check_metric``).

One test runs it over every registered metric, so a new metric module is checked without a test
edit. What it checks, for metric ``name``:

- the declaration: a name, a description, a direction, a chart range inside the valid range, a
  compute function where one is needed, groups only on selectable metrics, JSON-serialisable
  protocol settings, a citation and an implementation for computed metrics;
- computed metrics (worker and model): on a fixed speech pair from the bundled sample set, the
  identity, a degraded copy (noise at 5 dB SNR) and the edge inputs (silent, constant, very
  short, clipped and NaN outputs) each give a value inside the valid range or a null with a
  reason: never an exception, never an out-of-range number;
- determinism: the same pair twice gives the same value;
- direction: where the metric compares two signals, the identity scores better than the
  degraded copy (or at the ideal end of the range);
- agreement: where the declaration names a direct library call, the same value within its
  tolerance on the degraded pair.

Metrics recorded by the run itself (``where="recorded"``) get the declaration checks only. A
model metric whose weights are not here is checked on its unavailable path (null with the
reason) and says that its values were not checked.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tokbench.metrics.base import NotComputable, Scores
from tokbench.metrics.kit import Metric, MetricSpec, ModelContext, SignalInput, declaration_of

RATE = 16_000
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class MetricContractError(AssertionError):
    """A metric breaks the metric-kit contract; the message says which check and why."""


@dataclass
class MetricCheck:
    """What :func:`check_metric` checked (all passed) and what it could not check, with why."""

    metric: str
    checked: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    values: dict[str, float | None] = field(default_factory=dict)  # case -> value
    reasons: dict[str, str] = field(default_factory=dict)  # case -> why null


def reference_speech(seconds: float = 1.0) -> np.ndarray:
    """The first utterance of the bundled sample set at 16 kHz, cut to ``seconds``."""
    from tokbench.data import open_dataset
    from tokbench.io.audio import load_audio, resample

    utt = open_dataset("sample").utterances[0]
    audio = load_audio(utt.path)
    wav = resample(audio.wav, audio.sample_rate, RATE).astype(np.float32)
    return wav[: int(seconds * RATE)]


def edge_cases(ref: np.ndarray, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(reference, output) pairs every metric must survive, by name."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(len(ref)).astype(np.float32)
    noise *= np.sqrt(np.mean(ref ** 2) / np.mean(noise ** 2) / 10 ** (5 / 10))
    nan = ref.copy()
    nan[len(nan) // 2] = np.nan
    short = ref[: int(0.1 * RATE)]
    return {
        "identity": (ref, ref.copy()),
        "degraded": (ref, (ref + noise).astype(np.float32)),
        "silent output": (ref, np.zeros_like(ref)),
        "constant output": (ref, np.full_like(ref, 0.1)),
        "very short": (short, short.copy()),
        "clipped output": (ref, np.clip(ref * 8, -0.25, 0.25).astype(np.float32)),
        "NaN output": (ref, nan),
    }


def check_declaration(spec: MetricSpec, decl: Metric) -> None:
    """The declaration's own consistency (raises MetricContractError)."""
    def fail(what: str) -> None:
        raise MetricContractError(f"{spec.name} ({decl.module}): {what} (docs/adding-a-metric.md)")

    if not _NAME.match(spec.name):
        fail("a metric name is lower-case letters, digits and underscores")
    if not spec.description.strip():
        fail("no description")
    if spec.direction not in ("higher", "lower", "none"):
        fail(f"direction {spec.direction!r} is not higher, lower or none")
    if spec.lo is not None and spec.hi is not None and not spec.lo < spec.hi:
        fail(f"chart range [{spec.lo}, {spec.hi}] is empty")
    vlo, vhi = spec.valid_range
    for bound in (spec.lo, spec.hi):
        if bound is not None and ((vlo is not None and bound < vlo) or (vhi is not None and bound > vhi)):
            fail(f"chart range bound {bound} is outside the valid range [{vlo}, {vhi}]")
    if spec.aggregation == "ratio" and spec.level != "utterance":
        fail("a ratio metric is aggregated from utterance records (level utterance)")
    if spec.default and not spec.groups:
        fail("a default metric must belong to a group (--metrics selects by group)")
    if spec.groups and decl.where == "recorded":
        fail("groups select what the scorer computes; a metric recorded by the run has none")
    if decl.where in ("worker", "model"):
        if decl.compute is None:
            fail(f"a {decl.where} metric needs its compute function")
        if not decl.citation or not decl.implementation:
            fail("a computed metric cites its source and names its reference implementation")
    try:
        json.dumps(dict(decl.protocol), sort_keys=True)
    except TypeError as exc:
        fail(f"protocol settings must be JSON values: {exc}")


def check_metric(name: str, *, checkpoint: str | None = None, seed: int = 0,
                 reference: np.ndarray | None = None,
                 declaration: Metric | None = None) -> MetricCheck:
    """Check metric ``name`` against the metric-kit contract (see the module docstring); raises
    :class:`MetricContractError` on the first failure. ``checkpoint``: local weights for a model
    metric (its values are checked only where its model is available). ``declaration``: check
    this declaration (e.g. one made with ``tokbench.metrics.kit.make_metric``, not registered)
    instead of the registered one. The metrics of one declaration are computed together, once
    per process for the same arguments."""
    decl = declaration if declaration is not None else declaration_of(name)
    spec = next(s for s in decl.specs if s.name == name)
    report = MetricCheck(name)
    check_declaration(spec, decl)
    report.checked.append("declaration")
    if decl.where == "recorded":
        report.skipped["values"] = ("recorded by the run itself: its values are checked by the "
                                    "tests of what records it")
        return report
    ref = reference_speech() if reference is None else reference
    first, second = _computed(decl, checkpoint, seed, ref, memo=declaration is None)
    for case, results in first.items():
        value, reason = results[name]
        _check_value(spec, case, value, reason)
        report.values[case] = value
        if value is None:
            report.reasons[case] = reason or ""
    report.checked.append("edge inputs give a value in range or a null with a reason")
    for case, results in second.items():
        again = results[name][0]
        if not _same(again, report.values[case]):
            raise MetricContractError(f"{name}: not deterministic on the {case} pair "
                                      f"({report.values[case]} then {again})")
    report.checked.append("deterministic")
    _check_direction(spec, decl, report)
    _check_agreement(spec, decl, edge_cases(ref, seed)["degraded"], report)
    return report


Results = dict[str, dict[str, tuple[float | None, str | None]]]  # case -> name -> (value, why)
_COMPUTED: dict[tuple[str, tuple[str, ...], str | None, int, str], tuple[Results, Results]] = {}


def _computed(decl: Metric, checkpoint: str | None, seed: int, ref: np.ndarray,
              memo: bool) -> tuple[Results, Results]:
    """Every metric of ``decl`` on every edge case, and the identity and degraded pairs a second
    time (for determinism); memoised per process for registered declarations (``memo``)."""
    import hashlib

    key = (decl.module, decl.names, checkpoint, seed, hashlib.sha256(ref.tobytes()).hexdigest())
    if not memo or key not in _COMPUTED:
        cases = edge_cases(ref, seed)
        with tempfile.TemporaryDirectory(prefix="tokbench-check-") as tmp:
            run = _runner(decl, checkpoint, Path(tmp))
            first = {case: run(case, r, h) for case, (r, h) in cases.items()}
        with tempfile.TemporaryDirectory(prefix="tokbench-check-") as tmp:
            run = _runner(decl, checkpoint, Path(tmp))  # a cold cache: computed again
            second = {case: run(case, *cases[case]) for case in ("identity", "degraded")}
        if not memo:
            return first, second
        _COMPUTED[key] = (first, second)
    return _COMPUTED[key]


def _runner(decl: Metric, checkpoint: str | None,
            tmp: Path) -> Callable[[str, np.ndarray, np.ndarray], dict[str, tuple[float | None, str | None]]]:
    """A function (case, reference, output) -> {name: (value, reason)} computing the metrics of
    ``decl`` the way the scorer does, but letting any exception other than NotComputable
    through as a contract failure."""
    from tokbench.io.cache import Cache
    from tokbench.run.scoring import ScoreItem

    cache = Cache(tmp)
    names = decl.names
    if decl.where == "worker":
        compute = decl.compute
        assert compute is not None

        def worker(case: str, ref: np.ndarray, hyp: np.ndarray) -> dict[str, tuple[float | None, str | None]]:
            keys = _reference_keys(ref)
            x = SignalInput(ref, hyp, ref, cache, keys, case, names)
            try:
                result = compute(x)
            except NotComputable as exc:
                return {n: (None, str(exc)) for n in names}
            except Exception as exc:
                raise MetricContractError(f"{', '.join(names)} raised {type(exc).__name__} on "
                                          f"the {case} input ({exc}): raise NotComputable with "
                                          "the reason instead") from exc
            return {n: _value_of(n, result, len(names)) for n in names}

        return worker

    assert decl.compute is not None
    scorer = decl.compute(ModelContext("cpu", checkpoint, None))

    def model(case: str, ref: np.ndarray, hyp: np.ndarray) -> dict[str, tuple[float | None, str | None]]:
        item = ScoreItem(case, ref, hyp, "the reference transcript", None)
        try:
            scores = scorer.scores([item], [names], cache, _reference_keys(ref))[0]
        except Exception as exc:
            raise MetricContractError(f"{', '.join(names)} raised {type(exc).__name__} on the "
                                      f"{case} input ({exc}): a model metric gives null with "
                                      "the reason instead") from exc
        missing = [n for n in names if n not in scores.values]
        if missing:
            raise MetricContractError(f"{', '.join(missing)}: the scorer returned no value or "
                                      f"reason for the {case} input")
        return {n: (scores.values[n], scores.reasons.get(n)) for n in names}

    return model


def _reference_keys(ref: np.ndarray) -> Any:
    """Reference-cache keys of one reference signal: its features are computed once per run."""
    import hashlib

    from tokbench.run.scoring import ReferenceKeys

    return ReferenceKeys("conformance", hashlib.sha256(ref.tobytes()).hexdigest()[:16])


def _value_of(name: str, result: Any, n_names: int) -> tuple[float | None, str | None]:
    """(value, reason) of ``name`` in what a compute function returned (a Scores, a dict by
    name, or the one value of a single-metric declaration)."""
    if isinstance(result, Scores):
        if name not in result.values:
            raise MetricContractError(f"{name}: its compute function returned no value for it")
        return result.values[name], result.reasons.get(name)
    if isinstance(result, dict):
        value = result.get(name)
    elif n_names == 1:
        value = result
    else:
        raise MetricContractError(f"{name}: a declaration of several metrics returns Scores or "
                                  f"a dict by name, not {type(result).__name__}")
    if value is None:
        raise MetricContractError(f"{name}: its compute function returned None without a reason "
                                  "(raise NotComputable with the reason)")
    if not math.isfinite(float(value)):
        raise MetricContractError(f"{name}: its compute function returned {value} (raise "
                                  "NotComputable with the reason)")
    return float(value), None


def _check_value(spec: MetricSpec, case: str, value: float | None, reason: str | None) -> None:
    if value is None:
        if not reason:
            raise MetricContractError(f"{spec.name}: null without a reason on the {case} input")
        return
    if not math.isfinite(value):
        raise MetricContractError(f"{spec.name}: {value} on the {case} input")
    lo, hi = spec.valid_range
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise MetricContractError(f"{spec.name}: {value} on the {case} input is outside its "
                                  f"valid range [{lo}, {hi}]")


def _same(a: float | None, b: float | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and a == b)


def _check_direction(spec: MetricSpec, decl: Metric, report: MetricCheck) -> None:
    ident, degraded = report.values["identity"], report.values["degraded"]
    if spec.direction == "none":
        report.skipped["direction"] = "the metric has no direction"
        return
    if not decl.needs_for(spec.name).reference:
        report.skipped["direction"] = ("non-intrusive: it does not compare two signals, so the "
                                       "identity has no meaning for it")
        return
    if ident is None or degraded is None:
        why = report.reasons.get("identity") or report.reasons.get("degraded") or ""
        report.skipped["direction"] = f"not computable on the identity or degraded pair: {why}"
        return
    better = ident > degraded if spec.direction == "higher" else ident < degraded
    ideal = spec.hi if spec.direction == "higher" else spec.lo
    if not better and not (ideal is not None and ident == ideal):
        raise MetricContractError(f"{spec.name}: the identity ({ident}) does not score better "
                                  f"than a copy with noise at 5 dB SNR ({degraded}), yet "
                                  f"{spec.direction} is declared better")
    report.checked.append("direction")


def _check_agreement(spec: MetricSpec, decl: Metric, pair: tuple[np.ndarray, np.ndarray],
                     report: MetricCheck) -> None:
    if decl.agreement is None:
        report.skipped["agreement"] = "no direct library call declared"
        return
    direct = decl.agreement(*pair)
    if spec.name not in direct:
        report.skipped["agreement"] = "the direct call covers other metrics of its module"
        return
    ours = report.values["degraded"]
    want = float(direct[spec.name])
    if ours is None or abs(ours - want) > decl.agreement_tolerance:
        raise MetricContractError(f"{spec.name}: {ours} on the degraded pair, the direct library "
                                  f"call gives {want} (tolerance {decl.agreement_tolerance})")
    report.checked.append("agrees with a direct library call")
