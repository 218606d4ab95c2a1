"""The base of every task that scores one output per utterance against its original.

:class:`DecodeTask` owns the loop (``tokbench.run.decode_score`` has its pieces): which
utterances to do (those without a record, and recorded ones lacking metrics of a larger
``--metrics`` selection, whose records become supplements), the warm-up, the :class:`Scorer`
and its ASR, batching and the chunked stream of records, and progress. A subclass supplies only
what differs, through small hooks:

- :meth:`~DecodeTask.produce` (required for a task with a model): one decoded utterance as a
  :class:`Produced` (its :class:`ScoreItem`, extra values, a pending task-specific score started
  with ``Scorer.call``, audio examples);
- :meth:`~DecodeTask.attach` and :meth:`~DecodeTask.prompt_audio`: a per-utterance prompt (an
  item that cannot have one gets ``item.error``);
- :meth:`~DecodeTask.prelude`: side files yielded before the records (vc's pair list);
- :meth:`~DecodeTask.selected_metrics`: the ``--metrics`` selection (None: the default set,
  never supplemented);
- :meth:`~DecodeTask.chunks`: where the outputs come from; by default the tokenizer (encode and
  decode, :func:`model_chunks`); a task that scores files found on disk overrides it (and
  :meth:`~DecodeTask.warm_up`).

Options: a decode task's ``Options`` have the ASR fields ``asr``, ``asr_model``,
``asr_checkpoint``, ``asr_batch_size`` and ``asr_backend`` (WER/CER are part of every decode
task's scores).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

from tokbench.data import Utterance
from tokbench.data.batches import Item
from tokbench.run.decode_score import (
    TIMING_METRICS,
    Decoded,
    Produced,
    as_supplements,
    decode_batch,
    model_chunks,
    score_stream,
    warm_up,
)
from tokbench.run.scoring import ReferenceKeys, Scorer
from tokbench.run.task import Output, RunContext, Task
from tokbench.types import Audio


class DecodeTask(Task):
    """A task that makes (or finds) one output per utterance and scores it; see the module
    docstring for the hooks."""

    # Score the shared signal metrics of the selection (False: only ASR and the task's own).
    signal_metrics: ClassVar[bool] = True
    # Names the task's own pending score (Produced.pending) fills: null when it fails.
    own_metrics: ClassVar[tuple[str, ...]] = ()
    # Values an utterance whose model call failed records as null (the timings).
    failure_values: ClassVar[tuple[str, ...]] = TIMING_METRICS

    # ------------------------------------------------------------------ hooks

    def selected_metrics(self) -> tuple[str, ...] | None:
        """The ``--metrics`` selection; None: the default set, and no supplements."""
        return None

    def prelude(self, ctx: RunContext) -> Iterable[Output]:
        """Outputs yielded before any record (e.g. side files describing the run)."""
        return ()

    def begin(self, ctx: RunContext, scorer: Scorer) -> None:
        """Per-run set-up once the scorer exists (e.g. a prompt loader)."""

    def attach(self, ctx: RunContext, item: Item) -> None:
        """Attach what an item needs before batching (``item.data``), or set ``item.error``."""

    def prompt_audio(self, ctx: RunContext, batch: Sequence[Item]) -> Audio | None:
        """The decoder's prompt for a batch (None: decode without one)."""
        return None

    def produce(self, ctx: RunContext, scorer: Scorer, decoded: Decoded) -> Produced:
        """One decoded utterance, ready to score."""
        raise NotImplementedError(f"task {self.name} must implement produce() or chunks()")

    def warm_up(self, ctx: RunContext) -> None:
        """First-call costs paid before anything is timed (the tokenizer's by default)."""
        warm_up(ctx)

    def chunks(self, ctx: RunContext, scorer: Scorer, todo: Sequence[Utterance]) -> Iterator[list[Produced]]:
        """The utterances of ``todo`` produced chunk by chunk (scored while the next is made).
        By default: loaded, encoded and decoded in length-sorted batches, each decoded item
        turned into a :class:`Produced` by :meth:`produce`."""
        if type(self).produce is DecodeTask.produce:  # before any model work, not per batch
            raise NotImplementedError(f"task {self.name} must implement produce() or chunks()")

        def convert(batch: list[Item]) -> list[Produced]:
            return [self.produce(ctx, scorer, d)
                    for d in decode_batch(ctx, batch, self.prompt_audio(ctx, batch))]

        return model_chunks(ctx, todo, convert, failure_values=self.failure_values,
                            task_metrics=self.own_metrics,
                            attach=lambda item: self.attach(ctx, item))

    def progress_label(self, ctx: RunContext) -> str:
        return f"{self.name} {ctx.meta.name}"

    # ------------------------------------------------------------------ shared parts

    def protocol(self) -> dict[str, Any]:
        from tokbench.metrics.asr import asr_protocol

        o = self.options
        return {"asr": asr_protocol(o.asr, o.asr_model, o.asr_checkpoint, o.asr_backend, self.device)}

    def still_unavailable(self, metrics: set[str], log: Callable[[str], None]) -> bool:
        """ASR metrics whose model is still neither cached nor downloadable (a quick check when
        it is missing; when it is there it loads, once per process, for the run that follows)."""
        from tokbench.metrics.asr import D_METRICS, METRICS, task_scorer

        if not metrics <= {*METRICS, *D_METRICS}:
            return False
        o = self.options
        scorer = task_scorer(o.asr, o.asr_model, o.asr_checkpoint, self.device or "cpu",
                             o.asr_batch_size, log, backend=o.asr_backend)
        return scorer is not None and not scorer.available

    def asr_scorer(self, ctx: RunContext) -> Any:
        """The ASR scorer of the options (None when ``asr`` is off)."""
        from tokbench.metrics.asr import task_scorer

        o = self.options
        return task_scorer(o.asr, o.asr_model, o.asr_checkpoint, ctx.device, o.asr_batch_size,
                           ctx.log, backend=o.asr_backend)

    def todo(self, ctx: RunContext) -> tuple[list[Utterance], dict[str, tuple[str, ...]]]:
        """This rank's utterances to score and, for recorded ones, the metrics they lack."""
        selected = self.selected_metrics()
        if selected is None:
            return ctx.todo(), {}
        return ctx.todo_for(selected)

    def run(self, ctx: RunContext) -> Iterator[Output]:
        yield from self.prelude(ctx)
        todo, lacking = self.todo(ctx)
        if not todo:
            return
        self.warm_up(ctx)
        bar = iter(ctx.progress(range(len(todo)), total=len(todo), desc=self.progress_label(ctx)))
        with Scorer(ctx.cache, ReferenceKeys(ctx.dataset.name, ctx.dataset.revision),
                    workers=ctx.workers, asr=self.asr_scorer(ctx), metrics=self.selected_metrics(),
                    device=ctx.device, log=ctx.log) as scorer:
            self.begin(ctx, scorer)
            chunks = _asking_for(self.chunks(ctx, scorer, todo), lacking)
            yield from as_supplements(
                score_stream(scorer, chunks, signal=self.signal_metrics,
                             progress=lambda n: next(bar, None)),
                lacking)
        for _ in bar:
            pass


def _asking_for(chunks: Iterable[list[Produced]],
                lacking: Mapping[str, tuple[str, ...]]) -> Iterator[list[Produced]]:
    """Each recorded utterance's item asks only for the metrics its record lacks (the store
    keeps only those of a supplement anyway: this saves computing the others)."""
    for chunk in chunks:
        for p in chunk:
            if p.item.metrics is None and p.item.utterance_id in lacking:
                p.item.metrics = lacking[p.item.utterance_id]
        yield chunk
