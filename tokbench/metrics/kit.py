"""The metric kit: a metric is one module that declares everything about it.

A metric module declares one or more metrics (:class:`MetricSpec`: name, meaning, direction,
range, unit, level, aggregation, selection groups) together with how they are computed
(:func:`declare` -> :class:`Metric`): where the computation runs, what it needs, its protocol
settings, the modules a metric worker should import before forking, the packages whose versions
identify it, the weights it needs (for ``tokbench prefetch``), its citation and reference
implementation, and the function itself. Everything else reads these declarations: the scorer
dispatches on them, ``--metrics`` groups come from them, the protocol and the worker preload are
assembled from them, ``tokbench list metrics --describe NAME`` prints them and
:func:`tokbench.testing.check_metric` checks them. Adding a metric is one module (and its test)
with no edit elsewhere; see docs/adding-a-metric.md.

Where a computation runs (``where``):

- ``"worker"``: a CPU function of the signals, in the metric worker pool (one process per core,
  forked from a preloaded fork server). ``compute(x: SignalInput) -> Scores | dict | float``.
- ``"model"``: a large model in the calling process, on the run's device, loaded once per run.
  ``compute(ctx: ModelContext) -> ModelMetric`` builds the scorer of a batch of items.
- ``"recorded"``: recorded by the run itself (the decode loop, a task, token statistics), never
  by the scorer; the declaration still says what the number means.

Metric modules must be cheap to import (heavy libraries are imported inside the functions):
``tokbench list metrics`` imports every one of them.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Literal, Protocol

from tokbench.registry import Registry, import_file_target_module

if TYPE_CHECKING:
    import numpy as np

    from tokbench.io.cache import Cache
    from tokbench.metrics.base import Scores
    from tokbench.run.scoring import ReferenceKeys, ScoreItem
    from tokbench.suites.assets import Asset

Direction = Literal["higher", "lower", "none"]
Level = Literal["utterance", "corpus"]
# mean: mean of utterance values; ratio: sum(numerator)/sum(denominator) x scale, e.g. corpus
# WER = total edits / total reference words; value: a single corpus-level figure.
Aggregation = Literal["mean", "ratio", "value"]
Category = Literal["quality", "efficiency", "statistic"]
Where = Literal["worker", "model", "recorded"]

#: entry-point group of third-party metric modules (importing the module declares its metrics)
ENTRY_POINT_GROUP = "tokbench.metrics"
#: metric modules of the user's (file paths or module names, os.pathsep-separated), loaded by
#: every process of a run, metric workers included (``--metric-module`` sets it)
MODULES_VARIABLE = "TOKBENCH_METRIC_MODULES"
# Built-in metric modules, in the order their metrics are listed and tabled (report columns,
# `tokbench list metrics`); a module not named here is discovered after them, alphabetically.
# Only presentation: nothing is registered by being named here.
LISTING_ORDER = ("asr", "signal", "speaker", "pitch", "mel", "distortion", "wavlm_speaker",
                 "ecapa_speaker", "dnsmos", "utmos", "efficiency", "tokens")


@dataclass(frozen=True)
class MetricSpec:
    """What one named metric means. A name never changes meaning: a new definition gets a new
    name."""

    name: str
    description: str
    direction: Direction
    unit: str
    level: Level = "utterance"
    aggregation: Aggregation = "mean"
    lo: float | None = None  # declared range: used to normalise charts, never to clip data
    hi: float | None = None
    category: Category = "quality"
    scale: float = 1.0  # ratio aggregation: multiply the corpus ratio by this (100 for percent)
    # Hard limits of a valid value when they differ from the chart range (lo, hi): ESTOI is a
    # correlation and can be slightly negative, WER passes 100 % with insertions. Records
    # outside them are refused on load. None: the chart range's bound (no limit without one).
    valid_lo: float | None = None
    valid_hi: float | None = None
    # --metrics groups this metric belongs to (e.g. "signal"), and whether a run computes it
    # without --metrics (the set every run computed before selection existed)
    groups: tuple[str, ...] = ()
    default: bool = False

    @property
    def valid_range(self) -> tuple[float | None, float | None]:
        """The values a correct computation can give (defaults to the declared range)."""
        lo = self.valid_lo if self.valid_lo is not None else self.lo
        hi = self.valid_hi if self.valid_hi is not None else self.hi
        return lo, hi

    @property
    def higher_is_better(self) -> bool | None:
        return {"higher": True, "lower": False}.get(self.direction)

    @property
    def arrow(self) -> str:
        return {"higher": "↑", "lower": "↓"}.get(self.direction, "")

    def range_text(self) -> str:
        """The chart range as ``[lo, hi]`` (an open side as -inf/inf); '' without one."""
        if self.lo is None and self.hi is None:
            return ""
        lo = "-inf" if self.lo is None else f"{self.lo:g}"
        hi = "inf" if self.hi is None else f"{self.hi:g}"
        return f"[{lo}, {hi}]"

    def normalise(self, value: float) -> float | None:
        """Map ``value`` to [0, 1] over the declared range, 1 = best. None without a range."""
        if self.lo is None or self.hi is None or self.direction == "none":
            return None
        x = (value - self.lo) / (self.hi - self.lo)
        x = min(1.0, max(0.0, x))
        return x if self.direction == "higher" else 1.0 - x

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Needs:
    """What a computation needs besides the output."""

    reference: bool = False  # the reference audio (undefined when the reference holds no speech)
    transcript: bool = False  # the reference text
    speech: bool = False  # defined for speech only (a speech model, a speech-tuned measure)
    # the audio rate the metric (its model or definition) was built for; a run whose audio is
    # band-limited below it is warned about once and the records say so
    sample_rate: int | None = None


@dataclass
class SignalInput:
    """What a worker computation sees for one utterance (both signals at 16 kHz).

    ``reference`` is the reference as scored: zero-padded to the output's length when the output
    is longer (the extra part counts against it); ``reference_raw`` is the reference itself, whose
    features (F0, embeddings) are cached per dataset under :meth:`key`."""

    reference: np.ndarray
    output: np.ndarray
    reference_raw: np.ndarray
    cache: Cache | None
    refkeys: ReferenceKeys | None
    utterance_id: str
    wanted: tuple[str, ...]

    def wants(self, name: str) -> bool:
        return name in self.wanted

    def key(self, feature: str, model: str | None = None) -> str | None:
        """Cache key of a reference feature of this utterance (None without a cache)."""
        if self.cache is None or self.refkeys is None:
            return None
        from tokbench.metrics.reference_features import reference_key

        return reference_key(self.refkeys.dataset, self.refkeys.revision, self.utterance_id,
                             feature, model=model)

    def cached(self, feature: str, compute: Callable[[], np.ndarray],
               check: Callable[[np.ndarray], None] | None = None) -> np.ndarray:
        """Reference feature ``feature`` of the raw reference: from the cache, or computed once
        and stored (a NotComputable result is cached too, and raised again)."""
        key = self.key(feature)
        if key is None or self.cache is None:
            return compute()
        from tokbench.metrics.reference_features import cached_feature

        return cached_feature(self.cache, feature, key, compute, check)


@dataclass(frozen=True)
class ModelContext:
    """What a model computation is built with: the run's device, a local checkpoint given for
    it (or None: its pinned download), and the task's ASR scorer (None: ASR switched off)."""

    device: str = "cpu"
    checkpoint: str | None = None
    asr: Any = None


class ModelMetric(Protocol):
    """A model computation's scorer: the values of a batch of items (``wanted[k]``: the names
    item k asks for). An unavailable model gives nulls with its reason, marked ``transient`` in
    the scores' extra so that the next run computes them rather than keeping the gap."""

    def scores(self, items: Sequence[ScoreItem], wanted: Sequence[tuple[str, ...]],
               cache: Cache, refkeys: ReferenceKeys) -> list[Scores]: ...


@dataclass(frozen=True)
class Metric:
    """One metric module's declaration: the metrics it defines and how they are computed."""

    specs: tuple[MetricSpec, ...]
    where: Where
    compute: Callable[..., Any] | None = None
    needs: Needs = field(default_factory=Needs)
    # metrics of this declaration whose needs differ from `needs` (e.g. dWER needs the
    # reference audio where WER needs the transcript)
    needs_of: Mapping[str, Needs] = field(default_factory=dict)
    # protocol settings, merged into every run's protocol under these keys (and so into its id)
    protocol: Mapping[str, Any] = field(default_factory=dict)
    # modules a metric worker imports before forking (worker computations only)
    preload: tuple[str, ...] = ()
    # distributions whose versions are recorded with every run (identity)
    packages: tuple[str, ...] = ()
    # the files it needs, for `tokbench prefetch`: a function of "needed by" -> assets
    weights: Callable[[str], list[Asset]] | None = None
    citation: str = ""
    implementation: str = ""  # the reference implementation it follows or wraps
    license: str = ""  # of its weights or library, where it matters
    # the same values from a direct call of the library it wraps, for check_metric: a function
    # of (reference, output) at 16 kHz -> {name: value}, within `agreement_tolerance`
    agreement: Callable[[np.ndarray, np.ndarray], Mapping[str, float]] | None = None
    agreement_tolerance: float = 1e-6
    module: str = ""
    origin: str = "builtin"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.specs)

    def needs_for(self, name: str) -> Needs:
        """What metric ``name`` of this declaration needs."""
        return self.needs_of.get(name, self.needs)

    @property
    def device(self) -> str:
        """Where it runs: a metric worker's CPU, or the run's device."""
        return {"worker": "cpu (metric worker)", "model": "the run's device (model process)",
                "recorded": "where the run records it"}[self.where]


class MetricRegistry(Registry[MetricSpec]):
    """Metric name -> spec, and name -> its module's :class:`Metric`, discovered lazily from the
    built-in metric modules, the ``metrics`` module of each task package, the entry-point group
    ``tokbench.metrics`` and ``$TOKBENCH_METRIC_MODULES``."""

    def __init__(self) -> None:
        super().__init__("metric")
        self._declarations: dict[str, Metric] = {}
        self._loading = False

    def declare(self, metric: Metric) -> Metric:
        for spec in metric.specs:
            if spec.name in self._items and self._declarations[spec.name] is not metric:
                previous = self._declarations[spec.name].module
                # the same module executed again (an edited plug-in file) replaces its own
                if previous != metric.module:
                    raise ValueError(f"metric {spec.name!r} of {metric.module} is already "
                                     f"declared by {previous}: a name never changes meaning, "
                                     "pick a new one")
            self._items[spec.name] = spec
            self._declarations[spec.name] = metric
        return metric

    def declaration(self, name: str) -> Metric:
        self.get(name)  # the same error as get() for an unknown name
        return self._declarations[name]

    def declarations(self) -> list[Metric]:
        """Every declaration once, in listing order."""
        self._ensure_loaded()
        out: list[Metric] = []
        for metric in self._declarations.values():
            if metric not in out:
                out.append(metric)
        return out

    def _import(self, name: str) -> None:
        try:
            if name.endswith(".py"):
                import_file_target_module(name)
            else:
                importlib.import_module(name)
        except Exception as exc:  # one broken metric module must not hide the others
            self.broken[name] = f"{type(exc).__name__}: {exc}"

    def _ensure_loaded(self) -> None:
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            package = importlib.import_module("tokbench.metrics")
            found = sorted(info.name for info in pkgutil.iter_modules(package.__path__)
                           if not info.name.startswith("_"))
            first = [m for m in LISTING_ORDER if m in found]
            for module in [*first, *(m for m in found if m not in first)]:
                self._import(f"tokbench.metrics.{module}")
            self._discover_task_metrics()
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                self._import(ep.value.partition(":")[0])
            for item in filter(None, os.environ.get(MODULES_VARIABLE, "").split(os.pathsep)):
                self._import(item)
        finally:
            self._loading = False
            self._loaded = True
        # Listing order: the order of discovery, whatever was imported before (a module that a
        # caller imported first registers first).
        order = {m.module: k for k, m in enumerate(_module_order(self._declarations.values()))}
        ranked = sorted(self._items, key=lambda n: order.get(self._declarations[n].module, 0))
        self._items = {n: self._items[n] for n in ranked}
        self._declarations = {n: self._declarations[n] for n in ranked}

    def _discover_task_metrics(self) -> None:
        """A task package's own metrics live in its ``metrics`` module (found through the task
        registry, like its report module)."""
        from tokbench.registry import package_module, tasks

        for _, entry in tasks.items():
            module = package_module(entry.target, "metrics")
            try:
                found = module is not None and importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if found and module is not None:
                self._import(module)

    def use_modules(self, items: Sequence[str]) -> None:
        """Metric modules of the user's (file paths or module names): imported now (if the
        registry is loaded already) and by every process started later, metric workers included
        (they inherit ``$TOKBENCH_METRIC_MODULES``). ImportError naming the module and why if one
        fails to import."""
        if not items:
            return
        old = os.environ.get(MODULES_VARIABLE)
        os.environ[MODULES_VARIABLE] = os.pathsep.join([*filter(None, [old]), *items])
        if self._loaded:
            for item in items:
                self._import(item)
        else:
            self._ensure_loaded()
        failed = {m: self.broken[m] for m in items if m in self.broken}
        if failed:
            raise ImportError("; ".join(f"metric module {m} failed to import: {why}"
                                        for m, why in failed.items()))


def _module_order(metrics: Any) -> list[Metric]:
    """Declarations sorted by listing order: metric modules of LISTING_ORDER first, then the
    other metric modules alphabetically, then the built-in tasks' modules, then plug-ins (as
    loaded)."""
    seen: list[Metric] = []
    for m in metrics:
        if m not in seen:
            seen.append(m)

    def rank(m: Metric) -> tuple[int, int, str]:
        short = m.module.rpartition(".")[2]
        if m.module.startswith("tokbench.metrics.") and short in LISTING_ORDER:
            return (0, LISTING_ORDER.index(short), "")
        if m.module.startswith("tokbench.metrics."):
            return (1, 0, m.module)
        if m.origin == "builtin":  # a built-in task's metrics
            return (2, 0, m.module)
        return (3, seen.index(m), "")

    return sorted(seen, key=rank)


registry = MetricRegistry()


def declare(*specs: MetricSpec, where: Where, **kwargs: Any) -> Metric:
    """Declare the metrics of the calling module (call it at module level): registers
    :func:`make_metric`'s declaration. See the module docstring for ``where`` and ``compute``."""
    import inspect

    if kwargs.get("module") is None:
        frame = inspect.currentframe()
        caller = frame.f_back if frame is not None else None
        kwargs["module"] = caller.f_globals.get("__name__", "") if caller is not None else ""
    return registry.declare(make_metric(*specs, where=where, **kwargs))


def make_metric(*specs: MetricSpec, where: Where, compute: Callable[..., Any] | None = None,
            needs: Needs | None = None, needs_of: Mapping[str, Needs] | None = None,
            protocol: Mapping[str, Any] | None = None,
            preload: Sequence[str] = (), packages: Sequence[str] = (),
            weights: Callable[[str], list[Asset]] | None = None, citation: str = "",
            implementation: str = "", license: str = "",
            agreement: Callable[[np.ndarray, np.ndarray], Mapping[str, float]] | None = None,
            agreement_tolerance: float = 1e-6, module: str = "") -> Metric:
    """A declaration of ``specs`` (checked, not registered: :func:`declare` registers)."""
    if not specs:
        raise ValueError("declare() needs at least one MetricSpec")
    if where in ("worker", "model") and compute is None:
        raise ValueError(f"{specs[0].name}: a {where} metric needs its compute function")
    origin = "builtin" if module.startswith("tokbench.") else "plug-in"
    unknown = sorted(set(needs_of or {}) - {s.name for s in specs})
    if unknown:
        raise ValueError(f"needs_of names metrics this declaration does not define: {unknown}")
    metric = Metric(tuple(specs), where, compute, needs or Needs(), dict(needs_of or {}),
                    dict(protocol or {}),
                    tuple(preload), tuple(packages), weights, citation, implementation, license,
                    agreement, agreement_tolerance, module, origin)
    return metric


def get_metric(name: str) -> MetricSpec:
    return registry.get(name)


def declaration_of(name: str) -> Metric:
    """The declaration (module, computation, needs, protocol, ...) of metric ``name``."""
    return registry.declaration(name)


def all_metrics() -> list[MetricSpec]:
    return [spec for _, spec in registry.items()]


def declarations() -> list[Metric]:
    return registry.declarations()


def valid_range(name: str) -> tuple[float | None, float | None]:
    """(lowest, highest) valid value of metric ``name``; None: no limit on that side. An
    undeclared name (a plug-in's metric whose module is not loaded) has no limits: it is only
    checked to be a finite number."""
    if name not in registry:
        return (None, None)
    lo, hi = get_metric(name).valid_range
    inf = float("inf")
    return (None if lo in (None, -inf) else lo, None if hi in (None, inf) else hi)
