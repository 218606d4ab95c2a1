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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from tokbench.data.batches import Item
from tokbench.data.prompts import PROMPT_SECONDS, PromptError, PromptLoader, same_speaker_prompt
from tokbench.metrics.tokens import stat_records, token_stats
from tokbench.protocol import SCORING_SAMPLE_RATE
from tokbench.records import make_record
from tokbench.run.decode_score import Decoded, Produced, prompt_batch
from tokbench.run.decode_task import DecodeTask
from tokbench.run.scoring import ScoreItem, Scorer
from tokbench.run.task import AudioExample, RunContext
from tokbench.run.token_cache import encode_dataset
from tokbench.types import Audio


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


class Reconstruction(DecodeTask):
    name = "recon"
    version = "1"
    Options = ReconOptions
    requires = frozenset({"decode"})
    runtime_options = frozenset({"asr_batch_size", "keep_audio", "metrics"})

    def protocol(self) -> dict:
        leak = {"prompt": "self (leak: the utterance is its own prompt)"} if self.options.prompt == "self" else {}
        return {**super().protocol(), **leak}

    def selected_metrics(self) -> tuple[str, ...]:
        from tokbench.metrics.selection import resolve_metrics

        return resolve_metrics(self.options.metrics)

    def begin(self, ctx: RunContext, scorer: Scorer) -> None:
        self._keep = {u.id for u in ctx.dataset.utterances[: self.options.keep_audio]}
        self._loader = (PromptLoader(ctx.dataset, ctx.meta.sample_rate)
                        if ctx.meta.can("speaker_prompt") else None)

    def attach(self, ctx: RunContext, item: Item) -> None:
        """A speaker-prompt tokenizer's prompt (``item.data["prompt"]``); without one the item fails."""
        if self._loader is None:
            return
        try:
            item.data["prompt"] = same_speaker_prompt(
                item.utt, ctx.dataset, self.options.prompt, max_seconds=self.options.prompt_seconds)
        except PromptError as exc:
            item.error = f"no speaker prompt: {exc} (--set prompt=self uses the utterance itself)"

    def prompt_audio(self, ctx: RunContext, batch: Sequence[Item]) -> Audio | None:
        if self._loader is None:
            return None
        return prompt_batch(self._loader, [i.data["prompt"] for i in batch], ctx.device)

    def produce(self, ctx: RunContext, scorer: Scorer, d: Decoded) -> Produced:
        uid = d.item.utt.id
        prompt = d.item.data.get("prompt")
        extra = {**d.extra, **(prompt.describe() if prompt is not None else {})}
        item = ScoreItem(uid, d.item.ref16, d.hyp16, d.item.utt.text, d.reason, extra,
                         audio_rate=d.audio_rate)
        examples = []
        if d.hyp16 is not None and uid in self._keep:
            examples = [AudioExample(uid, "original", d.item.ref16, SCORING_SAMPLE_RATE),
                        AudioExample(uid, "reconstruction", d.hyp16, SCORING_SAMPLE_RATE)]
        return Produced(item, d.values, examples=examples)

    def corpus_records(self, ctx: RunContext, records: list[dict]) -> list[dict]:
        """Nominal bitrate from the metadata; entropy bitrate and the token statistics of every
        codebook (``param`` = codebook) from the tokens of all recorded utterances. Tokens come
        from the token cache, or are encoded again where the cache lacks them (another node, a
        fresh cache), so the corpus figures always cover the whole run."""
        meta = ctx.meta
        ids = {r["utterance_id"] for r in records if r.get("utterance_id") is not None}
        utts = [u for u in ctx.dataset.utterances if u.id in ids]
        encoded = encode_dataset(ctx.model, ctx.dataset, utts, ctx.cache,
                                 batch_size=ctx.batch_size, device=ctx.device, progress=ctx.progress)
        codes = [encoded.codes[u.id] for u in utts if u.id in encoded.codes]
        extra = {"n_utterances": len(codes)}
        stats = stat_records(token_stats(codes, meta.codebook_sizes, meta.codebook_strides),
                             frame_rate=meta.frame_rate,
                             extra=extra)
        return [make_record(None, {"bitrate_nominal": meta.bitrate_nominal}, extra=extra), *stats]
