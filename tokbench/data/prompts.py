"""Speaker prompts and voice-conversion pairs (docs/protocol.md), shared by ``vc`` and ``recon``.

A **prompt** is a set of whole utterances of one speaker, drawn from the dataset's prompt
candidates (:meth:`tokbench.data.Dataset.prompt_candidates`) in a seeded order and capped at
``max_seconds`` of audio: utterances are taken whole until the next one would pass the cap, and
that one is cut so the total equals the cap (kNN-VC's quality grows with prompt length). The
utterance being decoded is never part of its prompt, except under the review's protocol
(:func:`self_prompt`), which is marked ``leak``. The cap applies to the audio handed to the
decoder; a vocoder may trim silence from it.

**Pairs.** :func:`target_speaker` gives every source utterance a target speaker different from its
own, drawn uniformly from the other speakers with a generator seeded by (seed, utterance id):
the pair of an utterance does not depend on dataset order, ``--limit`` or sharding.

Everything here is deterministic: the same dataset, seed and cap give the same prompts in every
run and on every rank.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import soundfile as sf
import torch

from tokbench.data import Dataset, Utterance
from tokbench.io.audio import AudioError, resample
from tokbench.types import PromptAudio

PROMPT_SECONDS = 60.0  # default cap, as the review's kNN-VC setting allows; recorded with every run


class PromptError(Exception):
    """No prompt (or no target speaker) can be made for an utterance; the message is the reason
    recorded with it."""


@dataclass(frozen=True)
class Prompt:
    """Which audio makes a prompt: utterance ids in order and the seconds used from each."""

    speaker: str | None
    utterance_ids: tuple[str, ...]
    seconds: tuple[float, ...]  # seconds used from each utterance (only the last may be cut)
    leak: bool = False  # the prompt holds the utterance being decoded (review protocol)

    @property
    def total_seconds(self) -> float:
        return float(sum(self.seconds))

    def describe(self) -> dict[str, Any]:
        """What records keep about a prompt."""
        return {"prompt_speaker": self.speaker, "prompt_utterances": list(self.utterance_ids),
                "prompt_seconds": round(self.total_seconds, 3), "prompt_leak": self.leak}


def audio_seconds(utt: Utterance) -> float:
    """Duration of an utterance's file from its header (no decoding)."""
    try:
        info = sf.info(utt.path)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"{utt.path}: unreadable audio ({exc})") from None
    return info.frames / info.samplerate


def speaker_order(candidates: Iterable[Utterance], speaker: str, seed: int) -> list[Utterance]:
    """All candidate utterances of ``speaker`` in the seeded prompt order. The order is drawn over
    the speaker's full list, so excluding one utterance never reshuffles the others."""
    mine = sorted((u for u in candidates if u.speaker == speaker), key=lambda u: u.id)
    random.Random(f"tokbench-prompt:{seed}:{speaker}").shuffle(mine)
    return mine


def select_prompt(
    candidates: Sequence[Utterance], speaker: str | None, *, exclude: Iterable[str] = (),
    max_seconds: float = PROMPT_SECONDS, seed: int = 0,
    duration: Callable[[Utterance], float] = audio_seconds,
) -> Prompt:
    """A prompt of ``speaker`` from ``candidates`` without the ids in ``exclude``, capped at
    ``max_seconds`` (see the module docstring). Unreadable candidates are skipped. Raises
    :class:`PromptError` when the speaker is unknown or has nothing else to offer."""
    if max_seconds <= 0:
        raise ValueError(f"the prompt cap must be positive, got {max_seconds} s")
    if speaker is None:
        raise PromptError("the utterance has no speaker label, so no prompt of its speaker can "
                          "be chosen")
    excluded = set(exclude)
    ids: list[str] = []
    secs: list[float] = []
    total = 0.0
    for utt in speaker_order(candidates, speaker, seed):
        if total >= max_seconds:
            break
        if utt.id in excluded:
            continue
        try:
            d = float(duration(utt))
        except AudioError:
            continue
        if d <= 0:
            continue
        take = min(d, max_seconds - total)
        ids.append(utt.id)
        secs.append(take)
        total += take
    if not ids:
        raise PromptError(f"speaker {speaker} has no other utterance to serve as a prompt")
    return Prompt(speaker, tuple(ids), tuple(secs))


def self_prompt(utt: Utterance, *, max_seconds: float = PROMPT_SECONDS,
                duration: Callable[[Utterance], float] = audio_seconds) -> Prompt:
    """The utterance as its own prompt (the review's protocol for semantic-token
    reconstruction), capped like any prompt and marked ``leak``."""
    d = float(duration(utt))
    return Prompt(utt.speaker, (utt.id,), (min(d, max_seconds),), leak=True)


def target_speaker(source: Utterance, speakers: Iterable[str], seed: int = 0) -> str:
    """The target speaker of ``source`` for voice conversion: never its own (module docstring)."""
    if source.speaker is None:
        raise PromptError("the source utterance has no speaker label, so no other speaker can be "
                          "chosen as the target")
    others = sorted({s for s in speakers if s is not None and s != source.speaker})
    if not others:
        raise PromptError(f"no speaker other than {source.speaker} among the prompt candidates")
    return random.Random(f"tokbench-vc:{seed}:{source.id}").choice(others)


def candidate_speakers(candidates: Iterable[Utterance]) -> list[str]:
    return sorted({u.speaker for u in candidates if u.speaker is not None})


PromptMode = Literal["other", "self"]


def same_speaker_prompt(utt: Utterance, dataset: Dataset, mode: PromptMode = "other", *,
                        max_seconds: float = PROMPT_SECONDS, seed: int = 0) -> Prompt:
    """The prompt for decoding ``utt`` in its own voice (``recon``): other utterances of its
    speaker (``mode="other"``), or itself (``mode="self"``, the review's protocol, ``leak``)."""
    if mode == "self":
        return self_prompt(utt, max_seconds=max_seconds)
    if mode != "other":
        raise ValueError(f"prompt mode must be 'other' or 'self', got {mode!r}")
    return select_prompt(dataset.prompt_candidates(), utt.speaker, exclude={utt.id},
                         max_seconds=max_seconds, seed=seed)


def conversion_prompt(utt: Utterance, dataset: Dataset, *, max_seconds: float = PROMPT_SECONDS,
                      seed: int = 0, speakers: Sequence[str] | None = None) -> Prompt:
    """The prompt for converting ``utt`` to its target speaker (``vc``): other utterances of the
    speaker :func:`target_speaker` picks (never the source's own)."""
    candidates = dataset.prompt_candidates()
    target = target_speaker(utt, speakers if speakers is not None else candidate_speakers(candidates), seed)
    return select_prompt(candidates, target, exclude={utt.id}, max_seconds=max_seconds, seed=seed)


class PromptLoader:
    """Reads prompt audio at one sample rate, cut to each prompt's seconds; recently used
    utterances stay in memory (prompts of one speaker are reused across many sources)."""

    def __init__(self, dataset: Dataset, sample_rate: int, cache_size: int = 128):
        self.dataset = dataset
        self.sample_rate = sample_rate
        self.by_id = {u.id: u for u in dataset.prompt_candidates()}
        for u in dataset.utterances:
            self.by_id.setdefault(u.id, u)
        self._load = functools.lru_cache(maxsize=cache_size)(self._read)

    def _read(self, utterance_id: str, rate: int) -> np.ndarray:
        loaded = self.dataset.load(self.by_id[utterance_id])
        return resample(loaded.wav, loaded.sample_rate, rate)

    def segments(self, prompt: Prompt, rate: int | None = None) -> list[np.ndarray]:
        """The prompt's utterances at ``rate`` (default: the loader's), the last cut to fit."""
        rate = rate or self.sample_rate
        out = []
        for uid, secs in zip(prompt.utterance_ids, prompt.seconds, strict=True):
            wav = self._load(uid, rate)
            out.append(wav[: min(len(wav), int(round(secs * rate)))])
        return out

    def batch(self, prompts: Sequence[Prompt]) -> PromptAudio:
        """A :class:`PromptAudio` of ``prompts`` at the loader's rate."""
        return PromptAudio.from_segments(
            [[torch.from_numpy(s) for s in self.segments(p)] for p in prompts], self.sample_rate)

    def waveform(self, prompt: Prompt, rate: int) -> np.ndarray:
        """The prompt as one waveform at ``rate`` (e.g. 16 kHz for its speaker embedding)."""
        segs = self.segments(prompt, rate)
        return np.concatenate(segs) if segs else np.zeros(0, np.float32)


__all__ = ["PROMPT_SECONDS", "Prompt", "PromptAudio", "PromptError", "PromptLoader", "PromptMode",
           "audio_seconds", "candidate_speakers", "conversion_prompt", "same_speaker_prompt",
           "select_prompt", "self_prompt", "speaker_order", "target_speaker"]
