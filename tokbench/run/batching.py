"""Shared data plumbing for tasks: loading and resampling, length-sorted batches, cached tokens.

The runner's half of "dataset -> runner (batches, resampling) -> adapter": tasks call these so
that every task feeds tokenizers the same way and the same tokens are encoded once per dataset.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from tokbench.data import Dataset, Utterance
from tokbench.io.audio import AudioError, resample
from tokbench.io.cache import Cache
from tokbench.options import stable_hash
from tokbench.protocol import SCORING_SAMPLE_RATE
from tokbench.types import Audio, Tokenizer, TokenizerMeta, Tokens


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


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: str) -> tuple[Any, float]:
    """Run ``fn`` and return (result, seconds), synchronising the GPU around it."""
    _sync(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = fn()
    _sync(device)
    return out, time.perf_counter() - t0


# Libraries that compute tokens besides the adapter's own code: in the token cache key.
TOKEN_LIBRARIES = ("torch", "transformers", "numpy", "soxr")


def token_cache_key(meta: TokenizerMeta, dataset: Dataset, utterance_id: str,
                    code: str | None = None) -> str:
    """Tokens depend on the model, its revision, options and code version (``code``, see
    :mod:`tokbench.identity`), the libraries running it, and the exact input audio."""
    from tokbench.identity import library_versions

    return Cache.key(
        adapter=meta.name, family=meta.family,
        revision=meta.source.resolved or meta.source.revision,
        options=stable_hash(dict(meta.options)), dataset=dataset.name,
        dataset_revision=dataset.revision, utterance=utterance_id, code=code,
        libraries=library_versions(TOKEN_LIBRARIES),
    )


def _token_check(meta: TokenizerMeta) -> Callable[[dict[str, torch.Tensor]], None]:
    """What a cached entry of ``meta``'s tokens must look like to be used."""
    top = max(meta.codebook_sizes)

    def check(entry: dict[str, torch.Tensor]) -> None:
        codes, duration = entry["codes"], entry["duration"]
        if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dim() != 2 \
                or codes.shape[0] != meta.n_codebooks:
            raise ValueError(f"tokens of {meta.name} are [{meta.n_codebooks}, F] integers, got "
                             f"{codes.dtype} {tuple(codes.shape)}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= top):
            raise ValueError(f"token values outside [0, {top})")
        d = float(duration)
        if not (d > 0 and d < float("inf")):
            raise ValueError(f"duration {d} is not a positive number of seconds")

    return check


def _compact(codes: torch.Tensor) -> torch.Tensor:
    """The smallest integer dtype that holds the codes (identity tokens at 16 kHz are large)."""
    top = int(codes.max()) if codes.numel() else 0
    low = int(codes.min()) if codes.numel() else 0
    if low >= 0 and top < 256:
        return codes.to(torch.uint8)
    if low >= -(2**15) and top < 2**15:
        return codes.to(torch.int16)
    if low >= -(2**31) and top < 2**31:
        return codes.to(torch.int32)
    return codes


def save_tokens(cache: Cache, meta: TokenizerMeta, dataset: Dataset, utterance_id: str,
                codes: torch.Tensor, duration: float) -> None:
    """Cache the ``[Q, F]`` codes of one utterance (and its input duration in seconds)."""
    cache.save_tensors("tokens", token_cache_key(meta, dataset, utterance_id, cache.adapter_code),
                       {"codes": _compact(codes),
                        # float64: a resumed run must see the very duration a fresh one saw
                        "duration": torch.tensor(float(duration), dtype=torch.float64)})


def load_tokens(cache: Cache, meta: TokenizerMeta, dataset: Dataset,
                utterance_id: str) -> tuple[torch.Tensor, float] | None:
    hit = cache.load_tensors("tokens", token_cache_key(meta, dataset, utterance_id, cache.adapter_code),
                             check=_token_check(meta))
    if hit is None:
        return None
    return hit["codes"].to(torch.long), float(hit["duration"])


@dataclass
class EncodedSet:
    """Tokens of many utterances (``[Q, F_i]`` each) and the reasons for those that failed."""

    codes: dict[str, torch.Tensor]
    errors: dict[str, str]
    durations: dict[str, float]  # seconds of input audio
    encode_seconds: float = 0.0  # model time spent on the utterances not found in the cache


def encode_dataset(
    tokenizer: Tokenizer,
    dataset: Dataset,
    utterances: Iterable[Utterance],
    cache: Cache,
    *,
    batch_size: int = 8,
    device: str = "cpu",
    progress: Callable[..., Iterable] = lambda it, **_: it,
) -> EncodedSet:
    """Tokens for ``utterances``, from the token cache where present, else encoded in batches
    and cached. Every task that needs tokens (bpe, probe, ...) goes through here."""
    meta = tokenizer.meta
    utterances = list(utterances)
    codes: dict[str, torch.Tensor] = {}
    durations: dict[str, float] = {}
    errors: dict[str, str] = {}
    todo: list[Utterance] = []
    for utt in utterances:
        hit = load_tokens(cache, meta, dataset, utt.id)
        if hit is not None:
            codes[utt.id], durations[utt.id] = hit
        else:
            todo.append(utt)
    total_seconds = 0.0
    for start in progress(range(0, len(todo), batch_size), desc=f"encode {meta.name}"):
        chunk = [load_item(dataset, u, meta.sample_rate, scoring=False)
                 for u in todo[start : start + batch_size]]
        for item in chunk:
            if not item.ok:
                errors[item.utt.id] = item.error
        for batch in length_sorted_batches(chunk, batch_size):
            audio = to_batch(batch, meta.sample_rate, device)
            tokens, seconds = timed(lambda a=audio: tokenizer.encode(a.wav, a.lengths), device)
            total_seconds += seconds
            tokens = Tokens(tokens.codes.cpu(), tokens.frame_lengths.cpu())
            for k, item in enumerate(batch):
                c = tokens.item(k).clone()
                dur = len(item.wav) / meta.sample_rate
                codes[item.utt.id], durations[item.utt.id] = c, dur
                save_tokens(cache, meta, dataset, item.utt.id, c, dur)
    return EncodedSet(codes, errors, durations, total_seconds)
