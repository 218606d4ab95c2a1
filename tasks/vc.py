"""Task ``vc``: voice conversion, the timbre controllability of tokens (Guo et al. review).

Each source utterance is encoded, and its tokens are decoded with the prompt of a *different*
speaker (:mod:`tokbench.data.prompts`: the target is drawn from the seed and the utterance id; the
prompt is other utterances of the target, capped at ``prompt_seconds``). Per utterance, at 16 kHz:

- ``wer`` / ``cer``: Whisper on the converted speech against the source text (content kept);
- ``secs_target``: Resemblyzer cosine of the converted speech and the target prompt, embedded as
  one signal (the prompt's utterances concatenated, exactly the audio given to the decoder);
- ``secs_source``: the same against the source utterance (timbre leakage; lower is better);
- ``f0_corr``: Pearson correlation of the WORLD Harvest F0 of source and converted speech over
  frames voiced in both (P.Corr).

The converted speech is fitted to the source length like every output. The pair list (source,
its speaker, the target speaker, or why there is none) is saved as ``pairs.json`` in the run
folder, and every record keeps its prompt. Tokenizers without the ``speaker_prompt`` capability
are reported as not supported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tokbench.data.prompts import (
    PROMPT_SECONDS,
    Prompt,
    PromptError,
    PromptLoader,
    candidate_speakers,
    conversion_prompt,
)
from tokbench.io.audio import fit_length, resample, write_audio
from tokbench.io.files import atomic_write_json
from tokbench.metrics.base import NotComputable, Scores
from tokbench.options import stable_hash
from tokbench.protocol import SCORING_SAMPLE_RATE
from tokbench.records import make_record
from tokbench.run.batching import (
    Item,
    length_sorted_batches,
    load_item,
    save_tokens,
    timed,
    to_batch,
)
from tokbench.run.scoring import (
    ASR_METRICS,
    ReferenceKeys,
    ScoreItem,
    Scorer,
    check_output,
    collect,
)
from tokbench.run.task import RunContext, Task
from tokbench.types import Audio, Tokens

VC_METRICS = ("secs_target", "secs_source", "f0_corr")
PAIRS_FILE = "pairs.json"


@dataclass(frozen=True)
class VCOptions:
    seed: int = 0  # draws the target speakers and the prompt order
    prompt_seconds: float = PROMPT_SECONDS  # cap on each prompt's audio
    asr: bool = True  # compute WER/CER with Whisper
    asr_model: str = "large-v3"  # any openai-whisper model name
    asr_checkpoint: str | None = None  # a local Whisper checkpoint file instead of the download
    asr_batch_size: int = 16
    asr_backend: str = "whisper"  # whisper | whisper-beam5 | hubert-ctc (tokbench.metrics.asr_backends)
    keep_audio: int = 0  # store this many source/prompt/converted examples in the run folder

    def __post_init__(self) -> None:
        from tokbench.metrics.asr_backends import check_backend

        check_backend(self.asr_backend)
        if not self.prompt_seconds > 0:
            raise ValueError(f"prompt_seconds must be positive, got {self.prompt_seconds}")


def prompt_key(refkeys: ReferenceKeys, prompt: Prompt) -> str:
    """Reference-cache key of a prompt's speaker embedding (shared by every source it serves)."""
    from tokbench.metrics.reference_features import reference_key

    ident = stable_hash({"ids": list(prompt.utterance_ids),
                         "seconds": [round(s, 6) for s in prompt.seconds]}, 24)
    return reference_key(refkeys.dataset, refkeys.revision, f"prompt:{ident}", "speaker")


def score_conversion(hyp16: np.ndarray, src16: np.ndarray, target16: np.ndarray, cache: Any,
                     refkeys: ReferenceKeys, utterance_id: str, target_key: str) -> Scores:
    """``secs_target``, ``secs_source`` and ``f0_corr`` of one converted utterance (runs in a
    worker process; source and prompt features come from the reference cache)."""
    from tokbench.metrics import pitch, speaker
    from tokbench.metrics import reference_features as reference

    scores = Scores()
    try:
        emb = speaker.speaker_embedding(hyp16, role="output")
    except NotComputable as exc:
        scores.fail(("secs_target", "secs_source"), str(exc))
    else:
        src_key = reference.reference_key(refkeys.dataset, refkeys.revision, utterance_id, "speaker")
        scores.compute("secs_source", lambda: speaker.cosine(
            reference.cached_embedding(cache, src_key, src16), emb))

        def target() -> float:
            try:
                ref = reference.cached_embedding(cache, target_key, target16)
            except NotComputable as exc:
                raise NotComputable(f"target prompt: {exc}") from None
            return speaker.cosine(ref, emb)

        scores.compute("secs_target", target)
    try:
        f0_key = reference.reference_key(refkeys.dataset, refkeys.revision, utterance_id, "f0")
        p = pitch.pitch_scores(reference.cached_f0(cache, f0_key, src16), pitch.f0_contour(hyp16))
        scores.put("f0_corr", p.values.get("f0_corr"), p.reasons.get("f0_corr"))
        scores.extra["pitch_frames_both_voiced"] = p.extra.get("pitch_frames_both_voiced")
    except NotComputable as exc:
        scores.fail(("f0_corr",), str(exc))
    return scores


@dataclass
class _Converted:
    item: ScoreItem
    pending: Any  # future (or Scores) of score_conversion; None when there is no output


class VoiceConversion(Task):
    name = "vc"
    version = "1"
    Options = VCOptions
    requires = frozenset({"decode", "speaker_prompt"})
    runtime_options = frozenset({"asr_batch_size", "keep_audio"})

    def protocol(self) -> dict:
        from tokbench.metrics.asr import asr_protocol

        o = self.options
        return {"asr": asr_protocol(o.asr, o.asr_model, o.asr_checkpoint, o.asr_backend,
                                    self.device),
                "vc": {"target": "another speaker of the prompt candidates, uniform, seeded by "
                                 "(seed, utterance id)",
                       "prompt": "other utterances of the target speaker, seeded order, whole "
                                 "utterances, the last cut to the cap",
                       "prompt_seconds": o.prompt_seconds,
                       "secs_target": "converted vs the concatenated prompt audio",
                       "f0_corr": "source vs converted"}}

    def unsupported_reason(self, meta) -> str | None:
        reason = super().unsupported_reason(meta)
        if reason and "decode" in meta.capabilities:
            return (f"{meta.name} cannot take a speaker prompt (capability speaker_prompt), so "
                    f"task vc cannot convert its voice")
        return reason

    def _asr(self, ctx: RunContext):
        from tokbench.metrics.asr import task_scorer

        o = self.options
        return task_scorer(o.asr, o.asr_model, o.asr_checkpoint, ctx.device, o.asr_batch_size,
                           ctx.log, backend=o.asr_backend)

    def pairs(self, ctx: RunContext) -> tuple[dict[str, Prompt], dict[str, str], list[dict]]:
        """Prompts of the dataset's utterances (or why there is none) and the pair list."""
        speakers = candidate_speakers(ctx.dataset.prompt_candidates())
        prompts: dict[str, Prompt] = {}
        errors: dict[str, str] = {}
        listing = []
        for utt in ctx.dataset.utterances:
            row: dict[str, Any] = {"source": utt.id, "source_speaker": utt.speaker}
            try:
                prompts[utt.id] = p = conversion_prompt(
                    utt, ctx.dataset, max_seconds=self.options.prompt_seconds,
                    seed=self.options.seed, speakers=speakers)
                row.update(target_speaker=p.speaker, prompt=list(p.utterance_ids),
                           prompt_seconds=round(p.total_seconds, 3))
            except PromptError as exc:
                errors[utt.id] = str(exc)
                row.update(target_speaker=None, reason=str(exc))
            listing.append(row)
        return prompts, errors, listing

    def run(self, ctx: RunContext) -> None:
        prompts, errors, listing = self.pairs(ctx)
        if ctx.store.rank == 0:
            atomic_write_json(ctx.store.path / PAIRS_FILE, {
                "seed": self.options.seed, "prompt_seconds": self.options.prompt_seconds,
                "n_prompt_candidates": len(ctx.dataset.prompt_candidates()), "pairs": listing})
        todo = [u for u in ctx.utterances if not ctx.store.is_done(u.id)]
        if not todo:
            return
        meta = ctx.meta
        keep = {u.id for u in ctx.dataset.utterances[: self.options.keep_audio]}
        loader = PromptLoader(ctx.dataset, meta.sample_rate)
        _warm_up(ctx)
        refkeys = ReferenceKeys(ctx.dataset.name, ctx.dataset.revision)
        chunk = ctx.batch_size * 4  # utterances loaded at once; scored while the next chunk runs
        bar = iter(ctx.progress(range(len(todo)), total=len(todo), desc=f"vc {meta.name}"))
        with Scorer(ctx.cache, refkeys, workers=ctx.workers, asr=self._asr(ctx)) as scorer:
            pending: list[_Converted] = []
            for start in range(0, len(todo), chunk):
                items = []
                for utt in todo[start:start + chunk]:
                    if utt.id in errors:
                        self._write(ctx, ScoreItem(utt.id, np.zeros(0, np.float32), None,
                                                   reason=errors[utt.id]), None, None)
                        next(bar, None)
                        continue
                    item = load_item(ctx.dataset, utt, meta.sample_rate)
                    if not item.ok:
                        self._write(ctx, ScoreItem(utt.id, np.zeros(0, np.float32), None,
                                                   reason=item.error), None, None)
                        next(bar, None)
                        continue
                    items.append(item)
                new = []
                for batch in length_sorted_batches(items, ctx.batch_size):
                    new += self._convert(ctx, batch, prompts, loader, scorer, refkeys, keep)
                # The CPU metrics of this chunk run in the pool while the model converts the next.
                for conv, asr in zip(pending, scorer.asr_scores([c.item for c in pending]), strict=True):
                    self._write(ctx, conv.item, conv.pending, asr)
                    next(bar, None)
                pending = new
            for conv, asr in zip(pending, scorer.asr_scores([c.item for c in pending]), strict=True):
                self._write(ctx, conv.item, conv.pending, asr)
                next(bar, None)
            for _ in bar:
                pass

    def _convert(self, ctx: RunContext, batch: list[Item], prompts: dict[str, Prompt],
                 loader: PromptLoader, scorer: Scorer, refkeys: ReferenceKeys,
                 keep: set[str]) -> list[_Converted]:
        meta, tok = ctx.meta, ctx.tokenizer
        audio = to_batch(batch, meta.sample_rate, ctx.device)
        batch_prompts = [prompts[i.utt.id] for i in batch]
        prompt_audio = loader.batch(batch_prompts).to(ctx.device)
        tokens, t_enc = timed(lambda: tok.encode(audio.wav, audio.lengths), ctx.device)
        decoded, t_dec = timed(lambda: tok.decode(tokens, prompt_audio), ctx.device)
        tokens = Tokens(tokens.codes.cpu(), tokens.frame_lengths.cpu())
        seconds = sum(len(i.wav) for i in batch) / meta.sample_rate
        out = []
        for k, (item, prompt) in enumerate(zip(batch, batch_prompts, strict=True)):
            codes = tokens.item(k)
            duration = len(item.wav) / meta.sample_rate
            save_tokens(ctx.cache, meta, ctx.dataset, item.utt.id, codes, duration)
            hyp = decoded.item(k).detach().float().cpu().numpy()
            extra = {"source_speaker": item.utt.speaker, "target_speaker": prompt.speaker,
                     **prompt.describe(), "n_frames": int(codes.shape[1]), "duration": duration,
                     "length_mismatch": int(len(hyp) - round(duration * decoded.sample_rate)),
                     "source_rate": item.source_rate, "device": ctx.device,
                     # the batch's time, shared by audio length; corpus figure = total / total
                     "rtf_encode": t_enc / seconds, "rtf_decode": t_dec / seconds,
                     "ratio": {"rtf_encode": [t_enc * duration / seconds, duration],
                               "rtf_decode": [t_dec * duration / seconds, duration]}}
            reason = check_output(hyp)
            if reason is not None:
                out.append(_Converted(ScoreItem(item.utt.id, item.ref16, None, item.utt.text,
                                                reason, extra), None))
                continue
            hyp16, _ = fit_length(resample(hyp, decoded.sample_rate, SCORING_SAMPLE_RATE),
                                  len(item.ref16))
            target16 = loader.waveform(prompt, SCORING_SAMPLE_RATE)
            if item.utt.id in keep:
                folder = ctx.store.examples_dir(item.utt.id)
                write_audio(folder / "source.wav", item.ref16, SCORING_SAMPLE_RATE)
                write_audio(folder / "prompt.wav", target16, SCORING_SAMPLE_RATE)
                write_audio(folder / "converted.wav", hyp16, SCORING_SAMPLE_RATE)
            pend = scorer.call(score_conversion, hyp16, item.ref16, target16, ctx.cache, refkeys,
                               item.utt.id, prompt_key(refkeys, prompt))
            out.append(_Converted(ScoreItem(item.utt.id, item.ref16, hyp16, item.utt.text, None,
                                            extra), pend))
        return out

    def _write(self, ctx: RunContext, item: ScoreItem, pending: Any, asr: Scores | None) -> None:
        scores = Scores()
        if pending is None:
            scores.fail((*VC_METRICS, *ASR_METRICS), item.reason or "no output")
        else:
            scores.update(collect(pending))
            if asr is not None:
                scores.update(asr)
        extra = dict(item.extra)
        timing = {name: extra.pop(name, None) for name in ("rtf_encode", "rtf_decode")}
        why = {name: item.reason or "not computed" for name, v in timing.items() if v is None}
        ratio = {**extra.pop("ratio", {}), **scores.extra.get("ratio", {})}  # rtf and wer/cer
        ctx.store.append(make_record(item.utterance_id, {**scores.values, **timing},
                                     {**scores.reasons, **why},
                                     extra={**extra, **scores.extra, "ratio": ratio}))


def _warm_up(ctx: RunContext) -> None:
    """One conversion of a short tone (its own prompt) so timings exclude first-call costs."""
    sr = ctx.meta.sample_rate
    t = torch.arange(sr, device=ctx.device)
    wav = (0.1 * torch.sin(t * 2 * np.pi * 220 / sr))[None]
    lengths = torch.tensor([sr], device=ctx.device)
    with torch.inference_mode():
        ctx.tokenizer.decode(ctx.tokenizer.encode(wav, lengths), Audio(wav, lengths, sr))
