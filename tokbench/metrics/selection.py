"""Which metrics a run computes: ``--metrics`` (a list of names and/or named groups).

The groups are what a user switches on or off as a whole: ``signal`` (reference-based signal
measures), ``pitch`` (WORLD Harvest contours: the costliest CPU metric), ``speaker``, ``asr``
(needs an ASR model) and ``mos`` (non-intrusive quality predictors). Each metric module says
which groups its metrics belong to (``MetricSpec.groups``) and whether a run computes them by
default (``MetricSpec.default``: the set every run computed before selection existed, so results
made without ``--metrics`` keep their meaning); ``all`` is every group.

The selection is not part of a run's identity (the run folder): it changes which columns a run
has, never what a column means (each metric's settings are in the protocol either way). A run
resumed with a larger selection computes only the metrics its records lack and stores them as
supplements that the store merges into the utterance's record (``tokbench.results.store``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tokbench.registry import suggest

# What a user reads in `tokbench list metrics` about each group, in the order groups are listed.
# A group a metric module names that is not here is listed after these (no edit needed).
GROUP_DESCRIPTIONS: dict[str, str] = {
    "signal": "reference-based signal measures",
    "pitch": "F0 contours (WORLD Harvest): the costliest CPU metrics",
    "speaker": "speaker similarity of output and reference",
    "asr": "intelligibility through an ASR model",
    "mos": "non-intrusive quality predictors",
}


def groups() -> dict[str, tuple[str, ...]]:
    """Group -> its metrics, from the metric declarations (``MetricSpec.groups``)."""
    from tokbench.metrics.kit import all_metrics

    specs = all_metrics()
    names = list(GROUP_DESCRIPTIONS) + sorted({g for s in specs for g in s.groups}
                                              - set(GROUP_DESCRIPTIONS))
    return {g: tuple(s.name for s in specs if g in s.groups) for g in names
            if any(g in s.groups for s in specs)}


def selectable() -> tuple[str, ...]:
    """Every metric ``--metrics`` can select (the metrics of some group), group by group."""
    out: list[str] = []
    for members in groups().values():
        out += [m for m in members if m not in out]
    return tuple(out)


def default_selection() -> tuple[str, ...]:
    """What a run computes without ``--metrics`` (``MetricSpec.default``: the set every run
    computed before selection existed), in :func:`selectable`'s order."""
    from tokbench.metrics.kit import get_metric

    return tuple(m for m in selectable() if get_metric(m).default)


def named() -> dict[str, tuple[str, ...]]:
    """Every name ``--metrics`` accepts besides metric names: the groups, default, all."""
    return {**groups(), "default": default_selection(), "all": selectable()}


def reference_audio_metrics() -> frozenset[str]:
    """Metrics that compare the output with the reference AUDIO (``Needs.reference``):
    undefined when the reference holds no speech, so they are null with that reason instead of
    scores of noise."""
    from tokbench.metrics.kit import declarations

    return frozenset(name for d in declarations() for name in d.names
                     if d.needs_for(name).reference)


def __getattr__(name: str) -> Any:
    # The module-level views of earlier versions, computed from the declarations on first use.
    views = {"GROUPS": groups, "ALL": selectable, "DEFAULT": default_selection, "NAMED": named,
             "REFERENCE_AUDIO_METRICS": reference_audio_metrics}
    if name in views:
        return views[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class MetricSelectionError(ValueError):
    """``--metrics`` names something that is neither a metric of a group nor a group."""


def resolve_metrics(spec: str | Iterable[str] | None) -> tuple[str, ...]:
    """The metric names ``spec`` selects, in the canonical order of :func:`selectable`.

    ``spec``: ``None`` or ``"default"``; a group (``signal``, ``pitch``, ``speaker``, ``asr``,
    ``mos``, ``all``, or one a metric module declares); a metric name; or a comma-separated /
    iterable mix of them (``"signal,wer"``). Raises :class:`MetricSelectionError` naming the
    unknown part and the choices.
    """
    if spec is None:
        return default_selection()
    options, every = named(), selectable()
    parts = spec.replace(";", ",").split(",") if isinstance(spec, str) else list(spec)
    chosen: set[str] = set()
    for raw in parts:
        part = str(raw).strip()
        if not part:
            continue
        if part in options:
            chosen.update(options[part])
        elif part in every:
            chosen.add(part)
        else:
            hint = suggest(part, [*options, *every])
            raise MetricSelectionError(
                f"--metrics: {part!r} is neither a metric nor a group{hint}. Groups: "
                f"{', '.join(options)}; metrics: {', '.join(every)}")
    if not chosen:
        raise MetricSelectionError(f"--metrics {spec!r} selects no metric; groups: {', '.join(options)}")
    return tuple(name for name in every if name in chosen)


def group_of(name: str) -> str | None:
    """The first selection group a metric belongs to (None for metrics outside selection)."""
    for group, names in groups().items():
        if name in names:
            return group
    return None


def lacking(record: Mapping[str, Any] | None, selected: Iterable[str]) -> tuple[str, ...]:
    """The selected metrics a stored record does not have yet (all of them without a record).

    A metric recorded as null with a reason counts as present: it was computed and found
    undefined (or failed), and rerunning would give the same answer.
    """
    have = set((record or {}).get("metrics", {}))
    return tuple(name for name in selected if name not in have)
