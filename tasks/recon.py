"""Task ``recon``: encode, decode, and score the output against the original.

Per utterance: signal metrics (PESQ, STOI/ESTOI, SECS, GPE/VDE/FFE, F0 correlation, mel
distance), WER/CER of Whisper on the output, token rate and real-time factors. Per corpus:
nominal and entropy bitrate. Everything is scored at 16 kHz (DESIGN.md section 4).

Tokenizers that decode with a speaker prompt (capability ``speaker_prompt``, e.g. semantic
tokens with ``vocoder=knn-vc``) get one per utterance from :mod:`tokbench.data.prompts`: other
utterances of the same speaker, capped at ``prompt_seconds`` (``prompt=other``), or the utterance
itself (``prompt=self``, the review's protocol: marked ``leak`` in the records and the protocol).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from tokbench.data.prompts import PROMPT_SECONDS, PromptError, PromptLoader, same_speaker_prompt
from tokbench.io.audio import fit_length, resample, write_audio
from tokbench.metrics.tokens import stat_records, token_stats
from tokbench.protocol import SCORING_SAMPLE_RATE
from tokbench.records import make_record
from tokbench.run.batching import (
    Item,
    encode_dataset,
    length_sorted_batches,
    load_item,
    save_tokens,
    timed,
    to_batch,
)
from tokbench.run.scoring import ReferenceKeys, ScoreItem, Scorer, check_output
from tokbench.run.task import RunContext, Task
from tokbench.types import Audio, Tokens


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

    def run(self, ctx: RunContext) -> None:
        from tokbench.metrics.selection import lacking, resolve_metrics

        selected = resolve_metrics(self.options.metrics)
        # Utterances without a record, and recorded ones lacking selected metrics (supplements).
        self._lacking: dict[str, tuple[str, ...]] = {}
        todo = []
        for u in ctx.utterances:
            have = ctx.store.recorded_metrics(u.id)
            if have is None:
                todo.append(u)
            elif missing := lacking({"metrics": dict.fromkeys(have)}, selected):
                self._lacking[u.id] = missing
                todo.append(u)
        if not todo:
            return
        keep = {u.id for u in ctx.dataset.utterances[: self.options.keep_audio]}
        meta = ctx.meta
        _warm_up(ctx)
        refkeys = ReferenceKeys(ctx.dataset.name, ctx.dataset.revision)
        chunk = ctx.batch_size * 4  # utterances loaded at once; scored while the next chunk runs
        loader = PromptLoader(ctx.dataset, meta.sample_rate) if meta.can("speaker_prompt") else None
        with Scorer(ctx.cache, refkeys, workers=ctx.workers, asr=self._asr(ctx), metrics=selected,
                    device=ctx.device) as scorer:
            pending = None
            bar = ctx.progress(range(len(todo)), total=len(todo), desc=f"recon {meta.name}")
            progress = iter(bar)
            for start in range(0, len(todo), chunk):
                items = [load_item(ctx.dataset, u, meta.sample_rate) for u in todo[start:start + chunk]]
                if loader is not None:
                    self._attach_prompts(ctx, items)
                for item in items:
                    if not item.ok:  # unreadable audio or no prompt: record why, and go on
                        self._write(ctx, ScoreItem(item.utt.id, np.zeros(0, np.float32), None,
                                                   reason=item.error), None)
                        next(progress, None)
                score_items = []
                for batch in length_sorted_batches(items, ctx.batch_size):
                    score_items += self._model_batch(ctx, batch, keep, loader)
                for si in score_items:
                    si.metrics = self._lacking.get(si.utterance_id)
                # Signal metrics of this chunk run in the pool while the model works on the next.
                new = scorer.start(score_items)
                if pending is not None:
                    for it, scores in scorer.finish(pending):
                        self._write(ctx, it, scores)
                        next(progress, None)
                pending = new
            if pending is not None:
                for it, scores in scorer.finish(pending):
                    self._write(ctx, it, scores)
                    next(progress, None)
            for _ in progress:
                pass

    def _attach_prompts(self, ctx: RunContext, items: list[Item]) -> None:
        """Choose each item's prompt (``item.data["prompt"]``); an item without one fails."""
        for item in items:
            if not item.ok:
                continue
            try:
                item.data["prompt"] = same_speaker_prompt(
                    item.utt, ctx.dataset, self.options.prompt,
                    max_seconds=self.options.prompt_seconds)
            except PromptError as exc:
                item.error = f"no speaker prompt: {exc} (--set prompt=self uses the utterance itself)"

    def _model_batch(self, ctx: RunContext, batch: list[Item], keep: set[str],
                     loader: PromptLoader | None = None) -> list[ScoreItem]:
        meta, tok = ctx.meta, ctx.tokenizer
        audio = to_batch(batch, meta.sample_rate, ctx.device)
        prompts = [i.data["prompt"] for i in batch] if loader is not None else None
        prompt = loader.batch(prompts).to(ctx.device) if prompts else None
        tokens, t_enc = timed(lambda: tok.encode(audio.wav, audio.lengths), ctx.device)
        decoded, t_dec = timed(lambda: tok.decode(tokens, prompt), ctx.device)
        tokens = Tokens(tokens.codes.cpu(), tokens.frame_lengths.cpu())
        seconds = sum(len(i.wav) for i in batch) / meta.sample_rate
        out = []
        for k, item in enumerate(batch):
            codes = tokens.item(k)
            duration = len(item.wav) / meta.sample_rate
            save_tokens(ctx.cache, meta, ctx.dataset, item.utt.id, codes, duration)
            hyp = decoded.item(k).detach().float().cpu().numpy()
            extra = {
                "n_frames": int(codes.shape[1]),
                "duration": duration,
                # output samples minus input samples, at the decoder's rate
                "length_mismatch": int(len(hyp) - round(len(item.wav) * decoded.sample_rate / meta.sample_rate)),
                "source_rate": item.source_rate,
                "downmixed": bool(item.channels and item.channels > 1),
                # The batch's time, shared by audio length. The corpus figure is a ratio (total
                # processing seconds / total audio seconds), so batches weigh by their audio.
                "rtf_encode": t_enc / seconds,
                "rtf_decode": t_dec / seconds,
                "token_rate": codes.numel() / duration if duration > 0 else None,
                "ratio": {"rtf_encode": [t_enc * duration / seconds, duration],
                          "rtf_decode": [t_dec * duration / seconds, duration],
                          "token_rate": [codes.numel(), duration]},
                "device": ctx.device,
                **(prompts[k].describe() if prompts else {}),
            }
            reason = check_output(hyp)
            hyp16 = None
            if reason is None:
                hyp16, extra["length_mismatch_16k"] = fit_length(
                    resample(hyp, decoded.sample_rate, SCORING_SAMPLE_RATE), len(item.ref16))
                if item.utt.id in keep:
                    folder = ctx.store.examples_dir(item.utt.id)
                    write_audio(folder / "original.wav", item.ref16, SCORING_SAMPLE_RATE)
                    write_audio(folder / "reconstruction.wav", hyp16, SCORING_SAMPLE_RATE)
            out.append(ScoreItem(item.utt.id, item.ref16, hyp16, item.utt.text, reason, extra))
        return out

    def _write(self, ctx: RunContext, item: ScoreItem, scores) -> None:
        extra = dict(item.extra)
        metrics = {name: extra.pop(name, None) for name in ("token_rate", "rtf_encode", "rtf_decode")}
        reasons = {name: item.reason or "not computed" for name, v in metrics.items() if v is None}
        values, why, more = {}, {}, {}
        if scores is not None:
            values, why, more = scores.values, scores.reasons, scores.extra
        else:
            from tokbench.metrics.selection import resolve_metrics

            values = dict.fromkeys(resolve_metrics(self.options.metrics))
            why = dict.fromkeys(values, item.reason or "not computed")
        if item.utterance_id in getattr(self, "_lacking", {}):
            # Added metrics of a recorded utterance: only what its record lacks.
            ctx.store.supplement(make_record(item.utterance_id, values, why, extra=more))
            return
        ratio = {**extra.pop("ratio", {}), **more.get("ratio", {})}
        ctx.store.append(make_record(item.utterance_id, {**values, **metrics}, {**why, **reasons},
                                     extra={**extra, **more, "ratio": ratio}))

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
        stats = stat_records(token_stats(codes, meta.codebook_sizes), frame_rate=meta.frame_rate,
                             extra=extra)
        return [make_record(None, {"bitrate_nominal": meta.bitrate_nominal}, extra=extra), *stats]


def _warm_up(ctx: RunContext) -> None:
    """One encode/decode of a short signal so that timings exclude first-call costs."""
    sr = ctx.meta.sample_rate
    wav = torch.zeros(1, sr, device=ctx.device)
    wav[0] = 0.1 * torch.sin(torch.arange(sr, device=ctx.device) * 2 * np.pi * 220 / sr)
    lengths = torch.tensor([sr], device=ctx.device)
    # A prompt-driven decoder gets the tone as its own prompt.
    prompt = Audio(wav, lengths, sr) if ctx.meta.can("speaker_prompt") else None
    with torch.inference_mode():
        ctx.tokenizer.decode(ctx.tokenizer.encode(wav, lengths), prompt)
