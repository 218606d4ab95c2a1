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

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokbench.data.batches import Item
from tokbench.data.prompts import (
    PROMPT_SECONDS,
    Prompt,
    PromptError,
    PromptLoader,
    candidate_speakers,
    conversion_prompt,
)
from tokbench.metrics.base import NotComputable, Scores
from tokbench.options import stable_hash
from tokbench.protocol import SCORING_SAMPLE_RATE
from tokbench.run.decode_score import Decoded, Produced, prompt_batch
from tokbench.run.decode_task import DecodeTask
from tokbench.run.scoring import ReferenceKeys, ScoreItem, Scorer
from tokbench.run.task import Artefact, AudioExample, Output, RunContext
from tokbench.types import Audio

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


score_conversion.metrics = VC_METRICS  # type: ignore[attr-defined]  # what a crash nulls


class VoiceConversion(DecodeTask):
    name = "vc"
    version = "1"
    Options = VCOptions
    requires = frozenset({"decode", "speaker_prompt"})
    runtime_options = frozenset({"asr_batch_size", "keep_audio"})
    # vc scores with its own metrics (score_conversion) plus ASR, not recon's signal set
    signal_metrics = False
    own_metrics = VC_METRICS
    failure_values = ("rtf_encode", "rtf_decode")

    def protocol(self) -> dict:
        o = self.options
        return {**super().protocol(),
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

    def prelude(self, ctx: RunContext) -> Iterator[Output]:
        self._prompts, self._errors, listing = self.pairs(ctx)
        yield Artefact(PAIRS_FILE, {
            "seed": self.options.seed, "prompt_seconds": self.options.prompt_seconds,
            "n_prompt_candidates": len(ctx.dataset.prompt_candidates()), "pairs": listing})

    def begin(self, ctx: RunContext, scorer: Scorer) -> None:
        self._keep = {u.id for u in ctx.dataset.utterances[: self.options.keep_audio]}
        self._loader = PromptLoader(ctx.dataset, ctx.meta.sample_rate)
        self._refkeys = scorer.refkeys

    def attach(self, ctx: RunContext, item: Item) -> None:
        if item.utt.id in self._errors:
            item.error = self._errors[item.utt.id]

    def prompt_audio(self, ctx: RunContext, batch: Sequence[Item]) -> Audio | None:
        return prompt_batch(self._loader, [self._prompts[i.utt.id] for i in batch], ctx.device)

    def produce(self, ctx: RunContext, scorer: Scorer, d: Decoded) -> Produced:
        uid = d.item.utt.id
        prompt = self._prompts[uid]
        timing = self.failure_values
        values = {k: d.values[k] for k in timing}
        if "length_ratio" in d.values:
            values["length_ratio"] = d.values["length_ratio"]
        extra = {"source_speaker": d.item.utt.speaker, "target_speaker": prompt.speaker,
                 **prompt.describe(), **d.extra}
        extra["ratio"] = {k: extra["ratio"][k] for k in timing}
        item = ScoreItem(uid, d.item.ref16, d.hyp16, d.item.utt.text, d.reason, extra,
                         audio_rate=d.audio_rate)
        if d.hyp16 is None:
            return Produced(item, values, None, VC_METRICS)
        target16 = self._loader.waveform(prompt, SCORING_SAMPLE_RATE)
        examples = []
        if uid in self._keep:
            examples = [AudioExample(uid, "source", d.item.ref16, SCORING_SAMPLE_RATE),
                        AudioExample(uid, "prompt", target16, SCORING_SAMPLE_RATE),
                        AudioExample(uid, "converted", d.hyp16, SCORING_SAMPLE_RATE)]
        pending = scorer.call(score_conversion, d.hyp16, d.item.ref16, target16, ctx.cache,
                              self._refkeys, uid, prompt_key(self._refkeys, prompt))
        return Produced(item, values, pending, VC_METRICS, examples)
