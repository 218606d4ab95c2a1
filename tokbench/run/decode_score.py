"""The pieces of the one decode-and-score loop, which :class:`tokbench.run.decode_task.DecodeTask`
(the base of recon, vc and score) assembles.

Two halves, joined by :class:`Produced` (one utterance ready to score):

- :func:`model_chunks` (tasks with a model): loads a chunk of utterances, encodes and decodes
  them in length-sorted batches (:func:`decode_batch`), and lets the task turn each decoded item
  into a :class:`Produced` (its prompt, its own CPU metrics, its audio examples). A model error on
  a batch is retried one utterance at a time, so one bad utterance gets a record with the reason
  and the others are scored.
- :func:`score_stream` scores chunk after chunk: the signal metrics of a chunk run in the
  scorer's worker pool while the model works on the next chunk; ASR runs batched here; each
  utterance becomes one record, yielded to the runner (which alone writes the store).

Lengths (protocol ``length``): an output within ``tolerance`` samples of the reference (one
frame of the tokenizer: codecs pad to whole frames) is trimmed or zero-padded to the reference
length. Beyond that nothing is discarded: a shorter output is zero-padded (the missing part
counts as silence) and a longer output is kept whole while the signal metrics compare it with the
reference zero-padded to its length (the extra part counts against it). Every record carries
``length_ratio`` = output / reference duration at 16 kHz.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from tokbench.data import Utterance
from tokbench.data.batches import Item, length_sorted_batches, load_item, to_batch
from tokbench.data.prompts import PromptLoader
from tokbench.io.audio import resample
from tokbench.metrics.base import Scores
from tokbench.protocol import SCORING_SAMPLE_RATE
from tokbench.records import make_record
from tokbench.run.scoring import Pending, ScoreItem, Scorer, check_output
from tokbench.run.task import SUPPLEMENT, AudioExample, Output, RunContext
from tokbench.run.timing import timed
from tokbench.run.token_cache import save_tokens
from tokbench.types import Audio, Tokens

TIMING_METRICS = ("rtf_encode", "rtf_decode", "token_rate")


def fit_output(hyp16: np.ndarray, n_ref: int, tolerance: int) -> tuple[np.ndarray, int]:
    """The output as it is scored against a reference of ``n_ref`` samples, and the mismatch
    (output minus reference samples). See the module docstring for the rule."""
    mismatch = len(hyp16) - n_ref
    if abs(mismatch) <= tolerance or mismatch < 0:
        out = np.zeros(n_ref, dtype=np.float32)
        n = min(n_ref, len(hyp16))
        out[:n] = hyp16[:n]
        return out, mismatch
    return hyp16.astype(np.float32, copy=False), mismatch


def frame_tolerance(frame_rate: float) -> int:
    """One frame of a tokenizer at the scoring rate, in samples."""
    return int(math.ceil(SCORING_SAMPLE_RATE / frame_rate))


def length_fields(hyp_samples: int, ref_samples: int, mismatch: int) -> dict[str, Any]:
    """``length_ratio`` (a metric) and the sample mismatch at 16 kHz (extra)."""
    ratio = hyp_samples / ref_samples if ref_samples else None
    return {"length_ratio": ratio, "length_mismatch_16k": int(mismatch)}


@dataclass
class Produced:
    """One utterance ready to score: the item, the task's own metric values (timings), a
    pending task-specific CPU score (e.g. vc's speaker similarities), and audio examples."""

    item: ScoreItem
    values: dict[str, float | None] = field(default_factory=dict)
    pending: Any = None  # what Scorer.call returned, or None
    task_metrics: tuple[str, ...] = ()  # names the pending score fills (null when it fails)
    examples: list[AudioExample] = field(default_factory=list)

    @classmethod
    def failed(cls, utterance_id: str, reason: str, values: Iterable[str] = (),
               task_metrics: tuple[str, ...] = (), text: str | None = None) -> Produced:
        return cls(ScoreItem(utterance_id, np.zeros(0, np.float32), None, text, reason),
                   dict.fromkeys(values), None, task_metrics)


@dataclass
class Decoded:
    """One utterance after encode and decode: its codes, its output at 16 kHz as scored (None
    with ``reason`` when the output cannot be scored) and what the record keeps."""

    item: Item
    codes: torch.Tensor
    hyp16: np.ndarray | None
    reason: str | None
    values: dict[str, float | None]
    extra: dict[str, Any]
    # the rate the output's audio really has: the lower of the source's and the decoder's
    audio_rate: int | None = None


def warm_up(ctx: RunContext) -> None:
    """One encode/decode of a short tone so that timings exclude first-call costs."""
    sr = ctx.meta.sample_rate
    wav = torch.zeros(1, sr, device=ctx.device)
    wav[0] = 0.1 * torch.sin(torch.arange(sr, device=ctx.device) * 2 * np.pi * 220 / sr)
    lengths = torch.tensor([sr], device=ctx.device)
    # A prompt-driven decoder gets the tone as its own prompt.
    prompt = Audio(wav, lengths, sr) if ctx.meta.can("speaker_prompt") else None
    with torch.inference_mode():
        ctx.model.decode(ctx.model.encode(wav, lengths), prompt)


def decode_batch(ctx: RunContext, batch: Sequence[Item], prompt: Audio | None = None) -> list[Decoded]:
    """Encode and decode one batch (timed), cache the tokens, and prepare each output for
    scoring: NaN/inf outputs get a reason; the rest are resampled to 16 kHz and fitted."""
    meta, tok = ctx.meta, ctx.model
    audio = to_batch(batch, meta.sample_rate, ctx.device)
    tokens, t_enc = timed(lambda: tok.encode(audio.wav, audio.lengths), ctx.device)
    decoded, t_dec = timed(lambda: tok.decode(tokens, prompt), ctx.device)
    tokens = Tokens(tokens.codes.cpu(), tokens.frame_lengths.cpu())
    seconds = sum(len(i.wav) for i in batch) / meta.sample_rate
    tolerance = frame_tolerance(meta.frame_rate)
    out = []
    for k, item in enumerate(batch):
        codes = tokens.item(k)
        n_tokens = meta.tokens_in(int(codes.shape[1]))
        duration = len(item.wav) / meta.sample_rate
        save_tokens(ctx.cache, meta, ctx.dataset, item.utt.id, codes, duration)
        hyp = decoded.item(k).detach().float().cpu().numpy()
        # The batch's time, shared by audio length. The corpus figure is a ratio (total
        # processing seconds / total audio seconds), so batches weigh by their audio.
        values: dict[str, float | None] = {
            "rtf_encode": t_enc / seconds, "rtf_decode": t_dec / seconds,
            # tokens actually sent: a slow codebook's repeats (multi-rate layout) count once
            "token_rate": n_tokens / duration if duration > 0 else None}
        extra: dict[str, Any] = {
            "n_frames": int(codes.shape[1]), "duration": duration,
            # output samples minus input samples, at the decoder's rate
            "length_mismatch": int(len(hyp) - round(len(item.wav) * decoded.sample_rate
                                                    / meta.sample_rate)),
            "source_rate": item.source_rate, "downmixed": bool(item.channels and item.channels > 1),
            "device": ctx.device,
            "ratio": {"rtf_encode": [t_enc * duration / seconds, duration],
                      "rtf_decode": [t_dec * duration / seconds, duration],
                      "token_rate": [n_tokens, duration]},
        }
        reason = check_output(hyp)
        hyp16 = None
        if reason is None:
            raw16 = resample(hyp, decoded.sample_rate, SCORING_SAMPLE_RATE)
            hyp16, mismatch = fit_output(raw16, len(item.ref16), tolerance)
            lf = length_fields(len(raw16), len(item.ref16), mismatch)
            values["length_ratio"] = lf.pop("length_ratio")
            extra.update(lf)
        rates = [r for r in (item.source_rate, decoded.sample_rate) if r]
        out.append(Decoded(item, codes, hyp16, reason, values, extra,
                           min(rates) if rates else None))
    return out


def model_chunks(
    ctx: RunContext,
    todo: Sequence[Utterance],
    convert: Callable[[list[Item]], list[Produced]],
    *,
    failure_values: Iterable[str] = TIMING_METRICS,
    task_metrics: tuple[str, ...] = (),
    attach: Callable[[Item], None] | None = None,
    chunk_size: int | None = None,
) -> Iterator[list[Produced]]:
    """Chunks of produced utterances for :func:`score_stream`.

    ``convert`` turns a length-sorted batch of loaded items into :class:`Produced` (it calls
    :func:`decode_batch`). ``attach`` may set ``item.error`` (e.g. no prompt) before batching.
    A batch whose model call raises is retried one item at a time; an item that still fails
    gets a record with the error."""
    chunk_size = chunk_size or ctx.batch_size * 4
    names = tuple(failure_values)
    for start in range(0, len(todo), chunk_size):
        items = [load_item(ctx.dataset, u, ctx.meta.sample_rate) for u in todo[start:start + chunk_size]]
        if attach is not None:
            for item in items:
                if item.ok:
                    attach(item)
        produced = [Produced.failed(i.utt.id, i.error or "", names, task_metrics, i.utt.text)
                    for i in items if not i.ok]
        for batch in length_sorted_batches(items, ctx.batch_size):
            produced += _convert_isolated(ctx, batch, convert, names, task_metrics)
        yield produced


def _convert_isolated(ctx: RunContext, batch: list[Item], convert: Callable[[list[Item]], list[Produced]],
                      names: tuple[str, ...], task_metrics: tuple[str, ...]) -> list[Produced]:
    try:
        return convert(batch)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except Exception as exc:
        if len(batch) > 1:
            ctx.log(f"a batch of {len(batch)} failed ({type(exc).__name__}: {exc}); "
                    "retrying its utterances one at a time")
            out: list[Produced] = []
            for item in batch:
                out += _convert_isolated(ctx, [item], convert, names, task_metrics)
            return out
        reason = f"the tokenizer failed on this utterance: {type(exc).__name__}: {exc}"
        ctx.log(f"{batch[0].utt.id}: {reason}")
        return [Produced.failed(batch[0].utt.id, reason, names, task_metrics, batch[0].utt.text)]


def score_stream(
    scorer: Scorer,
    chunks: Iterable[list[Produced]],
    *,
    signal: bool = True,
    progress: Callable[[int], None] = lambda n: None,
) -> Iterator[Output]:
    """Score chunk after chunk (the pool works on chunk k while chunk k+1 is produced) and yield
    each utterance's audio examples and record. ``signal=False`` skips the shared signal metrics
    (a task that scores with its own metrics, e.g. vc)."""
    pending: tuple[list[Produced], Pending | None] | None = None
    for produced in chunks:
        started = scorer.start([p.item for p in produced]) if signal else None
        if pending is not None:
            yield from _finish(scorer, *pending, progress)
        pending = (produced, started)
    if pending is not None:
        yield from _finish(scorer, *pending, progress)


def _finish(scorer: Scorer, produced: list[Produced], started: Pending | None,
            progress: Callable[[int], None]) -> Iterator[Output]:
    if started is not None:
        scored = [s for _, s in scorer.finish(started)]
    else:
        scored = scorer.asr_scores([p.item for p in produced])
    for p, scores in zip(produced, scored, strict=True):
        yield from p.examples
        if p.task_metrics:
            if p.pending is None:
                scores.fail(p.task_metrics, p.item.reason or "no output")
            else:
                scores.update(scorer.collect(p.pending))
        yield record_of(p, scores)
        progress(1)


def as_supplements(outputs: Iterable[Output], lacking: Mapping[str, Sequence[str]]) -> Iterator[Output]:
    """``outputs`` with the records of already-recorded utterances (``lacking``: utterance id ->
    the selected metrics its record lacks) marked as supplements: the runner adds only their
    lacking metrics to the stored record (``RunStore.supplement``)."""
    for out in outputs:
        if isinstance(out, dict) and out.get("utterance_id") in lacking:
            out = {**out, SUPPLEMENT: True}
        yield out


def record_of(p: Produced, scores: Scores) -> dict[str, Any]:
    """The utterance's record: its scores (shared and the task's own) and the task's values."""
    item = p.item
    values = {**scores.values, **p.values}
    reasons = {**scores.reasons,
               **{k: item.reason or "not computed" for k, v in p.values.items() if v is None}}
    extra = dict(item.extra)
    ratio = {**extra.pop("ratio", {}), **scores.extra.get("ratio", {})}
    more = {k: v for k, v in scores.extra.items() if k != "ratio"}
    return make_record(item.utterance_id, values, reasons, extra={**extra, **more, "ratio": ratio})


def prompt_batch(loader: PromptLoader | None, prompts: Sequence[Any] | None, device: str) -> Audio | None:
    return loader.batch(list(prompts)).to(device) if loader is not None and prompts else None
