"""Task ``recon``: encode, decode, and score the output against the original.

Per utterance: signal metrics (PESQ, STOI/ESTOI, SECS, GPE/VDE/FFE, F0 correlation, mel
distance), WER/CER of Whisper on the output, token rate and real-time factors. Per corpus:
nominal and entropy bitrate. Everything is scored at 16 kHz (docs/protocol.md).

Tokenizers that decode with a speaker prompt (capability ``speaker_prompt``, e.g. semantic
tokens with ``vocoder=knn-vc``) get one per utterance from :mod:`tokbench.data.prompts`: other
utterances of the same speaker, capped at ``prompt_seconds`` (``prompt=other``), or the utterance
itself (``prompt=self``, the review's protocol: marked ``leak`` in the records and the protocol).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from tokbench.data.batches import Item
from tokbench.data.prompts import PROMPT_SECONDS, PromptError, PromptLoader, same_speaker_prompt
from tokbench.metrics.tokens import stat_records, token_stats
from tokbench.protocol import SCORING_SAMPLE_RATE
from tokbench.records import make_record
from tokbench.run.decode_score import (
    Produced,
    as_supplements,
    decode_batch,
    model_chunks,
    prompt_batch,
    score_stream,
    warm_up,
)
from tokbench.run.scoring import ReferenceKeys, ScoreItem, Scorer
from tokbench.run.task import AudioExample, Output, RunContext, Task
from tokbench.run.token_cache import encode_dataset


@dataclass(frozen=True)
class ReconOptions:
    asr: bool = True  # compute WER/CER with Whisper
    asr_model: str = "large-v3"  # any openai-whisper model name
    asr_checkpoint: str | None = None  # a local Whisper checkpoint file instead of the download
    asr_batch_size: int = 16
    asr_backend: str = "whisper"  # whisper | whisper-beam5 | hubert-ctc (tokbench.metrics.asr_backends)
    # --metrics: names and/or groups (signal, pitch, speaker, asr, mos, all); "default" = the
    # set before selection existed. Not part of the run's identity: a larger selection resumes
    # the run and adds only the metrics its records lack.
    metrics: str = "default"
    keep_audio: int = 0  # store this many original/reconstruction pairs in the run folder
    # speaker_prompt tokenizers only: same-speaker prompts ("other") or the utterance itself
    # ("self": the review's protocol, a leak), capped at prompt_seconds
    prompt: Literal["other", "self"] = "other"
    prompt_seconds: float = PROMPT_SECONDS

    def __post_init__(self) -> None:
        from tokbench.metrics.asr_backends import check_backend
        from tokbench.metrics.selection import resolve_metrics

        resolve_metrics(self.metrics)  # a typo fails here, before any model loads
        check_backend(self.asr_backend)


class Reconstruction(Task):
    name = "recon"
    version = "1"
    Options = ReconOptions
    requires = frozenset({"decode"})
    runtime_options = frozenset({"asr_batch_size", "keep_audio", "metrics"})

    def protocol(self) -> dict:
        from tokbench.metrics.asr import asr_protocol

        o = self.options
        leak = {"prompt": "self (leak: the utterance is its own prompt)"} if o.prompt == "self" else {}
        return {"asr": asr_protocol(o.asr, o.asr_model, o.asr_checkpoint, o.asr_backend,
                                    self.device), **leak}

    def _asr(self, ctx: RunContext):
        from tokbench.metrics.asr import task_scorer

        o = self.options
        return task_scorer(o.asr, o.asr_model, o.asr_checkpoint, ctx.device, o.asr_batch_size,
                           ctx.log, backend=o.asr_backend)

    def still_unavailable(self, metrics: set[str], log: Callable[[str], None]) -> bool:
        """ASR metrics whose model is still neither cached nor downloadable (a quick check when
        it is missing; when it is there it loads, once per process, for the run that follows)."""
        from tokbench.metrics.asr import task_scorer
        from tokbench.run.scoring import ASR_ALL

        if not metrics <= set(ASR_ALL):
            return False
        o = self.options
        scorer = task_scorer(o.asr, o.asr_model, o.asr_checkpoint, self.device or "cpu",
                             o.asr_batch_size, log, backend=o.asr_backend)
        return scorer is not None and not scorer.available

    def run(self, ctx: RunContext) -> Iterator[Output]:
        from tokbench.metrics.selection import resolve_metrics

        selected = resolve_metrics(self.options.metrics)
        # Utterances without a record, and recorded ones lacking selected metrics (supplements).
        todo, lacking = ctx.todo_for(selected)
        if not todo:
            return
        meta = ctx.meta
        keep = {u.id for u in ctx.dataset.utterances[: self.options.keep_audio]}
        loader = PromptLoader(ctx.dataset, meta.sample_rate) if meta.can("speaker_prompt") else None
        warm_up(ctx)
        refkeys = ReferenceKeys(ctx.dataset.name, ctx.dataset.revision)

        def convert(batch: list[Item]) -> list[Produced]:
            prompts = [i.data["prompt"] for i in batch] if loader is not None else None
            out = []
            for k, d in enumerate(decode_batch(ctx, batch, prompt_batch(loader, prompts, ctx.device))):
                extra = {**d.extra, **(prompts[k].describe() if prompts else {})}
                item = ScoreItem(d.item.utt.id, d.item.ref16, d.hyp16, d.item.utt.text, d.reason, extra,
                                 metrics=lacking.get(d.item.utt.id))
                examples = []
                if d.hyp16 is not None and d.item.utt.id in keep:
                    examples = [AudioExample(d.item.utt.id, "original", d.item.ref16, SCORING_SAMPLE_RATE),
                                AudioExample(d.item.utt.id, "reconstruction", d.hyp16, SCORING_SAMPLE_RATE)]
                out.append(Produced(item, d.values, examples=examples))
            return out

        bar = iter(ctx.progress(range(len(todo)), total=len(todo), desc=f"recon {meta.name}"))
        with Scorer(ctx.cache, refkeys, workers=ctx.workers, asr=self._asr(ctx), metrics=selected,
                    device=ctx.device) as scorer:
            chunks = model_chunks(ctx, todo, convert,
                                  attach=self._attach_prompt(ctx) if loader is not None else None)
            yield from as_supplements(score_stream(scorer, chunks, progress=lambda n: next(bar, None)),
                                      lacking)
        for _ in bar:
            pass

    def _attach_prompt(self, ctx: RunContext) -> Callable[[Item], None]:
        """Chooses each item's prompt (``item.data["prompt"]``); an item without one fails."""
        def attach(item: Item) -> None:
            try:
                item.data["prompt"] = same_speaker_prompt(
                    item.utt, ctx.dataset, self.options.prompt,
                    max_seconds=self.options.prompt_seconds)
            except PromptError as exc:
                item.error = f"no speaker prompt: {exc} (--set prompt=self uses the utterance itself)"
        return attach

    def corpus_records(self, ctx: RunContext, records: list[dict]) -> list[dict]:
        """Nominal bitrate from the metadata; entropy bitrate and the token statistics of every
        codebook (``param`` = codebook) from the tokens of all recorded utterances. Tokens come
        from the token cache, or are encoded again where the cache lacks them (another node, a
        fresh cache), so the corpus figures always cover the whole run."""
        meta = ctx.meta
        ids = {r["utterance_id"] for r in records if r.get("utterance_id") is not None}
        utts = [u for u in ctx.dataset.utterances if u.id in ids]
        encoded = encode_dataset(ctx.tokenizer, ctx.dataset, utts, ctx.cache,
                                 batch_size=ctx.batch_size, device=ctx.device, progress=ctx.progress)
        codes = [encoded.codes[u.id] for u in utts if u.id in encoded.codes]
        extra = {"n_utterances": len(codes)}
        stats = stat_records(token_stats(codes, meta.codebook_sizes, meta.codebook_strides),
                             frame_rate=meta.frame_rate,
                             extra=extra)
        return [make_record(None, {"bitrate_nominal": meta.bitrate_nominal}, extra=extra), *stats]
