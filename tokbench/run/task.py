"""The task interface. A task never knows which tokenizer it runs: it sees the contract only.

A task *yields* what it produces: records (:func:`tokbench.records.make_record`), shared side
files (:class:`Artefact`) and audio examples (:class:`AudioExample`). The runner alone writes
them into the run's store, owns the ranks and the barriers, and computes corpus records once all
ranks are done. A task that needs a shared step before its main work (e.g. every rank encodes its
shard into the token cache before all ranks read the whole set) puts it in :meth:`Task.prepare`;
the runner waits for all ranks between ``prepare`` and ``run``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from tokbench.data import Dataset, Utterance
from tokbench.io.cache import Cache
from tokbench.options import options_dict
from tokbench.types import Tokenizer, TokenizerMeta


class UnsupportedError(Exception):
    """The task cannot run this tokenizer (e.g. no decoder): reported as 'not supported'."""


@dataclass(frozen=True)
class Artefact:
    """A side file of the run folder (``splits.json``, ``pairs.json``): a JSON value.

    Artefacts describe the whole run and are the same on every rank, so rank 0 writes them."""

    name: str  # file name inside the run folder
    value: Any  # JSON-serialisable


@dataclass(frozen=True)
class AudioExample:
    """One audio file of an utterance's examples (``--set keep_audio=N``), at ``sample_rate``.

    ``role`` names the file: ``original``, ``reconstruction``, ``source``, ``prompt``,
    ``converted``. The reporter finds them by utterance id."""

    utterance_id: str
    role: str
    wav: np.ndarray = field(repr=False)
    sample_rate: int


@dataclass(frozen=True)
class RecordGroup:
    """Records that stand or fall together (e.g. every record of one probe training): the
    store keeps all of them or, after a kill in the middle, none, so a rerun never mixes two
    trainings."""

    records: list[dict[str, Any]]


Output = dict[str, Any] | Artefact | AudioExample | RecordGroup
# A record dict carrying this key (True) adds metrics to its utterance's stored record instead of
# being a new record (a run resumed with a larger --metrics selection); the runner removes it.
SUPPLEMENT = "_supplement"


@dataclass
class RunContext:
    # None in a run of outputs made elsewhere (kind "external", e.g. ``tokbench score``): a
    # task that needs a tokenizer reads :attr:`model` or :attr:`meta`, which say so.
    tokenizer: Tokenizer | None
    dataset: Dataset  # the whole (limited) dataset: tasks may need other utterances as prompts
    utterances: list[Utterance]  # this rank's shard
    cache: Cache
    device: str
    batch_size: int
    workers: int | None  # CPU metric processes; None = one per core, 0 = in-process
    progress: Callable[..., Iterable]
    log: Callable[[str], None]
    is_done: Callable[..., bool] = lambda utterance_id, param=None: False  # type: ignore[misc]
    # the metric names recorded for a key, or None without a record (RunStore.recorded_metrics)
    recorded_metrics: Callable[..., set[str] | None] = \
        lambda utterance_id, param=None: None  # type: ignore[misc]
    rank: int = 0
    world_size: int = 1

    @property
    def model(self) -> Tokenizer:
        """The run's tokenizer (a run of external outputs has none: a RuntimeError)."""
        if self.tokenizer is None:
            raise RuntimeError("this run scores outputs made elsewhere: it has no tokenizer")
        return self.tokenizer

    @property
    def meta(self) -> TokenizerMeta:
        return self.model.meta

    def todo(self) -> list[Utterance]:
        """This rank's utterances that have no record yet (a resumed run skips the others)."""
        return [u for u in self.utterances if not self.is_done(u.id, None)]

    def todo_for(self, selected: Sequence[str]) -> tuple[list[Utterance], dict[str, tuple[str, ...]]]:
        """This rank's utterances to score for the metric selection ``selected``: those without
        a record, and recorded ones whose record lacks selected metrics (``--metrics`` grown
        since), with what each of the latter lacks. Their records become supplements
        (``tokbench.run.decode_score.as_supplements``)."""
        todo, lacking = [], {}
        for u in self.utterances:
            have = self.recorded_metrics(u.id, None)
            if have is None:
                todo.append(u)
                continue
            missing = tuple(m for m in selected if m not in have)
            if missing:
                todo.append(u)
                lacking[u.id] = missing
        return todo, lacking


@dataclass(frozen=True)
class NoOptions:
    pass


class Task:
    """Base class of tasks. Subclasses set ``name``, ``version``, ``Options``, ``requires``."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    Options: ClassVar[type] = NoOptions
    requires: ClassVar[frozenset[str]] = frozenset()  # tokenizer capabilities
    # Options that change how a run works but not its numbers (batch sizes, threads, how many
    # seeds to add): recorded in run.json, left out of the run's identity so a change resumes.
    runtime_options: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, options: Any, device: str | None = None):
        self.options = options
        # The run's device, set by the runner before protocol() is read: some protocol settings
        # depend on it (Whisper decodes in fp16 on CUDA, fp32 on the CPU).
        self.device = device

    def protocol(self) -> dict[str, Any]:
        """Protocol settings this task's options change (merged into the base protocol)."""
        return {}

    def identity_options(self) -> dict[str, Any]:
        """The options that are part of the run's identity (``RunSpec.task_options``): all
        but :attr:`runtime_options`."""
        return {k: v for k, v in options_dict(self.options).items() if k not in self.runtime_options}

    def provenance(self, dataset: Dataset) -> dict[str, Any]:
        """What this task adds to ``run.json`` (e.g. where its inputs were found)."""
        return {}

    def unsupported_reason(self, meta: TokenizerMeta) -> str | None:
        missing = sorted(self.requires - set(meta.capabilities))
        if not missing:
            return None
        if meta.kind == "semantic" and "decode" in missing:
            return (f"{meta.name} needs a vocoder: semantic tokens need a vocoder to be decoded "
                    f"(--set vocoder=...), and task {self.name} needs decode")
        return f"{meta.name} lacks the capability {', '.join(missing)} that task {self.name} needs"

    def still_unavailable(self, metrics: set[str], log: Callable[[str], None]) -> bool:
        """Whether ``metrics``, left null for a passing reason (a model not available) in a
        finished run, still cannot be computed, so that re-running it would add nothing
        (tokbench.run.complete). Checked without loading a model that is not there; by default
        False: such a run is resumed and tries again."""
        return False

    def prepare(self, ctx: RunContext) -> None:
        """Work every rank does on its shard before any rank starts :meth:`run` (optional)."""

    def run(self, ctx: RunContext) -> Iterator[Output]:
        """The task's per-utterance work on this rank's shard; a task whose figures are all
        corpus-level (computed in :meth:`corpus_records`) yields nothing."""
        return iter(())

    def corpus_records(self, ctx: RunContext, records: list[dict]) -> list[dict]:
        """Corpus-level records computed from all ranks' records (rank 0, after the run)."""
        return []
