"""The task interface. A task never knows which tokenizer it runs: it sees the contract only."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from tokbench.data import Dataset, Utterance
from tokbench.io.cache import Cache
from tokbench.results.store import RunSpec, RunStore
from tokbench.types import Tokenizer, TokenizerMeta


class UnsupportedError(Exception):
    """The task cannot run this tokenizer (e.g. no decoder): reported as 'not supported'."""


@dataclass
class RunContext:
    tokenizer: Tokenizer
    dataset: Dataset  # the whole (limited) dataset: tasks may need other utterances as prompts
    utterances: list[Utterance]  # this rank's shard
    store: RunStore
    cache: Cache
    spec: RunSpec
    device: str
    batch_size: int
    workers: int | None  # CPU metric processes; None = one per core, 0 = in-process
    progress: Callable[..., Iterable]
    log: Callable[[str], None]

    @property
    def meta(self) -> TokenizerMeta:
        return self.tokenizer.meta


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

    def unsupported_reason(self, meta: TokenizerMeta) -> str | None:
        missing = sorted(self.requires - set(meta.capabilities))
        if not missing:
            return None
        if meta.kind == "semantic" and "decode" in missing:
            return (f"{meta.name} needs a vocoder: semantic tokens need a vocoder to be decoded "
                    f"(--set vocoder=...), and task {self.name} needs decode")
        return f"{meta.name} lacks the capability {', '.join(missing)} that task {self.name} needs"

    def run(self, ctx: RunContext) -> None:
        raise NotImplementedError

    def corpus_records(self, ctx: RunContext, records: list[dict]) -> list[dict]:
        """Corpus-level records computed from all ranks' records (rank 0, after the run)."""
        return []
