"""The token cache: tokens are encoded once per (tokenizer variant, dataset, utterance) and
reused by every task (``encode_dataset``), keyed by the model, its revision and options and the
exact input audio."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from tokbench.data import Dataset, Utterance
from tokbench.data.batches import length_sorted_batches, load_item, to_batch
from tokbench.io.cache import Cache
from tokbench.options import stable_hash
from tokbench.run.timing import timed
from tokbench.types import Tokenizer, TokenizerMeta, Tokens

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
                errors[item.utt.id] = item.error or "unreadable"
        for batch in length_sorted_batches(chunk, batch_size):
            audio = to_batch(batch, meta.sample_rate, device)
            tokens, seconds = timed(lambda a=audio: tokenizer.encode(a.wav, a.lengths), device)  # type: ignore[misc]
            total_seconds += seconds
            tokens = Tokens(tokens.codes.cpu(), tokens.frame_lengths.cpu())
            for k, item in enumerate(batch):
                c = tokens.item(k).clone()
                dur = len(item.wav) / meta.sample_rate
                codes[item.utt.id], durations[item.utt.id] = c, dur
                save_tokens(cache, meta, dataset, item.utt.id, c, dur)
    return EncodedSet(codes, errors, durations, total_seconds)
