"""Dataset -> model input: one utterance loaded and resampled (soxr HQ) to the model's rate and to
the scoring rate, and length-sorted batches of them.

The runner's half of "dataset -> runner (batches, resampling) -> adapter": tasks call these so
that every task feeds tokenizers the same way and the model is timed the same way (tokens are cached by :mod:`tokbench.run.token_cache`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from tokbench.data import Dataset, Utterance
from tokbench.io.audio import AudioError, resample
from tokbench.protocol import SCORING_SAMPLE_RATE
from tokbench.types import Audio


@dataclass
class Item:
    """One utterance ready for a model: its audio at the model's rate and at the scoring rate."""

    utt: Utterance
    wav: np.ndarray | None = None  # at the tokenizer's sample rate
    ref16: np.ndarray | None = None  # at the scoring rate (16 kHz)
    source_rate: int | None = None
    channels: int | None = None
    error: str | None = None  # why this utterance could not be used
    data: dict[str, Any] = field(default_factory=dict)  # anything a task attaches

    @property
    def ok(self) -> bool:
        return self.error is None


def load_item(dataset: Dataset, utt: Utterance, model_rate: int, scoring: bool = True) -> Item:
    """Read one utterance and resample it (soxr HQ) to the model's rate and, when ``scoring``,
    to the scoring rate (16 kHz) as well."""
    try:
        audio = dataset.load(utt)
    except AudioError as exc:
        return Item(utt, error=str(exc))
    wav = resample(audio.wav, audio.sample_rate, model_rate)
    ref16 = None
    if scoring:
        same = model_rate == SCORING_SAMPLE_RATE
        ref16 = wav if same else resample(audio.wav, audio.sample_rate, SCORING_SAMPLE_RATE)
    return Item(utt, wav=wav, ref16=ref16, source_rate=audio.sample_rate, channels=audio.channels)


def length_sorted_batches(items: Sequence[Item], batch_size: int) -> list[list[Item]]:
    """Batches of similar lengths (longest first), so padding and peak memory stay small."""
    ok = sorted((i for i in items if i.ok), key=lambda i: -len(i.wav))
    return [ok[k : k + batch_size] for k in range(0, len(ok), batch_size)]


def to_batch(items: Sequence[Item], sample_rate: int, device: str = "cpu") -> Audio:
    return Audio.from_list([torch.from_numpy(i.wav) for i in items], sample_rate).to(device)
