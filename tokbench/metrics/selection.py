"""Which metrics a run computes: ``--metrics`` (a list of names and/or named groups).

The groups are what a user switches on or off as a whole: ``signal`` (reference-based signal
measures), ``pitch`` (WORLD Harvest contours: the costliest CPU metric), ``speaker``, ``asr``
(needs an ASR model) and ``mos`` (non-intrusive quality predictors). ``default`` is the set
every run computed before selection existed, so results made without ``--metrics`` keep their
meaning; ``all`` is every group.

The selection is not part of a run's identity (the run folder): it changes which columns a run
has, never what a column means (each metric's settings are in the protocol either way). A run
resumed with a larger selection computes only the metrics its records lack and stores them as
supplements that the store merges into the utterance's record (``tokbench.results.store``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tokbench.registry import UnknownNameError, suggest

GROUPS: dict[str, tuple[str, ...]] = {
    "signal": ("pesq_wb", "pesq_nb", "stoi", "estoi", "mel_l1", "si_sdr", "sdr", "mstft_distance",
               "mcd"),
    "pitch": ("gpe", "vde", "ffe", "f0_corr", "f0_rmse_cents"),
    "speaker": ("secs", "spk_sim_wavlm", "spk_sim_ecapa"),
    "asr": ("wer", "cer", "dwer", "dcer"),
    "mos": ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808", "utmos"),
}
ALL: tuple[str, ...] = tuple(name for group in GROUPS.values() for name in group)
# What every run computed before --metrics existed (and still computes without it), in ALL's order.
_BEFORE = {"pesq_wb", "pesq_nb", "stoi", "estoi", "secs", "gpe", "vde", "ffe", "f0_corr", "mel_l1",
           "wer", "cer"}
DEFAULT: tuple[str, ...] = tuple(name for name in ALL if name in _BEFORE)
NAMED: dict[str, tuple[str, ...]] = {**GROUPS, "default": DEFAULT, "all": ALL}
# Metrics that compare the output with the reference AUDIO: undefined when the reference holds
# no speech (tokbench.metrics.vad), so they are null with that reason instead of scores of noise.
REFERENCE_AUDIO_METRICS: frozenset[str] = frozenset(
    (*GROUPS["signal"], *GROUPS["pitch"], *GROUPS["speaker"], "dwer", "dcer"))


class MetricSelectionError(ValueError):
    """``--metrics`` names something that is neither a metric of a group nor a group."""


def resolve_metrics(spec: str | Iterable[str] | None) -> tuple[str, ...]:
    """The metric names ``spec`` selects, in the canonical order of :data:`ALL`.

    ``spec``: ``None`` or ``"default"``; a group (``signal``, ``pitch``, ``speaker``, ``asr``,
    ``mos``, ``all``); a metric name; or a comma-separated / iterable mix of them
    (``"signal,wer"``). Raises :class:`MetricSelectionError` naming the unknown part and the
    choices.
    """
    if spec is None:
        return DEFAULT
    parts = spec.replace(";", ",").split(",") if isinstance(spec, str) else list(spec)
    chosen: set[str] = set()
    for raw in parts:
        part = str(raw).strip()
        if not part:
            continue
        if part in NAMED:
            chosen.update(NAMED[part])
        elif part in ALL:
            chosen.add(part)
        else:
            hint = suggest(part, [*NAMED, *ALL])
            raise MetricSelectionError(
                f"--metrics: {part!r} is neither a metric nor a group{hint}. Groups: "
                f"{', '.join(NAMED)}; metrics: {', '.join(ALL)}")
    if not chosen:
        raise MetricSelectionError(f"--metrics {spec!r} selects no metric; groups: {', '.join(NAMED)}")
    return tuple(name for name in ALL if name in chosen)


def group_of(name: str) -> str | None:
    """The selection group a metric belongs to (None for metrics outside selection)."""
    for group, names in GROUPS.items():
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


def check_known(names: Iterable[str]) -> None:
    """UnknownNameError if a selected name is not declared in the metric registry (a bug)."""
    from tokbench.metrics import get_metric

    for name in names:
        try:
            get_metric(name)
        except UnknownNameError as exc:  # pragma: no cover - guards GROUPS against typos
            raise AssertionError(f"selection group names undeclared metric {name!r}") from exc
