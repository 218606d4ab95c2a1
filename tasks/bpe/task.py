"""Task ``bpe``: how much acoustic BPE and deduplication shorten token sequences, plus the token
statistics (entropy, conditional entropy, codebook utilisation, perplexity) of every codebook.

The study follows the BPE figure of Guo et al. (2025), "Recent Advances in Discrete Speech
Tokens": reduction ratio against vocabulary size, one line per tokenizer starting at its base
vocabulary. Everything here is corpus level, so it runs once all tokens exist:

- ``run`` encodes this rank's utterances through the token cache (a recon run's tokens are
  reused, and ranks share the work);
- ``corpus_records`` (rank 0, after all ranks) reads every utterance's tokens back, splits them
  deterministically into a training and a held-out part, trains one BPE per target vocabulary
  size on the training part and measures on the held-out part.

Records (all with ``utterance_id`` None):

- ``param`` = codebook index: ``token_entropy``, ``token_cond_entropy``,
  ``codebook_utilisation``, ``token_perplexity`` (whole corpus, every codebook);
- ``param`` None: ``bitrate_entropy`` (whole corpus) and ``dedup_reduction`` (held-out part;
  its ``extra`` holds the held-out utterance ids);
- ``param`` = target vocabulary size: ``bpe_reduction``, ``bpe_tokens_per_s``, ``bpe_lossless``,
  ``bpe_vocab_size`` (held-out part).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokbench.metrics.tokens import stat_records, token_stats
from tokbench.options import OptionError
from tokbench.records import make_record
from tokbench.run.task import RunContext, Task
from tokbench.run.token_cache import EncodedSet, encode_dataset
from tokbench.tasks.bpe.merges import (
    UnitBPE,
    holdout_split,
    select_stream,
    stream_vocab,
)
from tokbench.types import TokenizerMeta

BPE_METRICS = ("bpe_reduction", "bpe_tokens_per_s", "bpe_lossless", "bpe_vocab_size")


@dataclass(frozen=True)
class BPEOptions:
    """Settings of the bpe task (``--set key=value``)."""

    # Which tokens BPE sees: "first" (codebook 0, as speech LMs model it), "all" (every
    # codebook, interleaved frame by frame, base vocabulary = sum of sizes) or an index "K".
    codebooks: str = "first"
    # Target vocabulary sizes as multiples of the base vocabulary ...
    multipliers: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    # ... or explicit target sizes (each >= the base vocabulary); when set, multipliers are unused.
    vocab_sizes: tuple[int, ...] = ()
    train_fraction: float = 0.8
    split: str = "utterance"  # "utterance", or "speaker" (held-out speakers unseen in training)
    seed: int = 0
    chunk_length: int = 256  # units per chunk; BPE tokens never cross a chunk boundary
    max_token_length: int | None = 32  # units per BPE token at most (None: unbounded)
    min_frequency: int = 2  # a pair must occur this often in training to be merged

    def __post_init__(self) -> None:
        if self.codebooks not in ("first", "all") and not str(self.codebooks).isdigit():
            raise ValueError(f"codebooks must be 'first', 'all' or a codebook index, got {self.codebooks!r}")
        if not self.multipliers and not self.vocab_sizes:
            raise ValueError("give at least one multiplier or vocabulary size")
        if any(m < 1 for m in self.multipliers):
            raise ValueError(f"multipliers must be >= 1, got {list(self.multipliers)}")
        if not 0.0 < self.train_fraction < 1.0:
            raise ValueError(f"train_fraction must lie in (0, 1), got {self.train_fraction}")
        if self.split not in ("utterance", "speaker"):
            raise ValueError(f"split must be 'utterance' or 'speaker', got {self.split!r}")
        if self.chunk_length < 2:
            raise ValueError(f"chunk_length must be >= 2, got {self.chunk_length}")
        if self.max_token_length is not None and self.max_token_length < 2:
            raise ValueError(f"max_token_length must be >= 2 or none, got {self.max_token_length}")
        if self.min_frequency < 1:
            raise ValueError(f"min_frequency must be >= 1, got {self.min_frequency}")

    def targets(self, base: int) -> list[int]:
        """The target vocabulary sizes for a base vocabulary, ascending."""
        if self.vocab_sizes:
            small = [v for v in self.vocab_sizes if v < base]
            if small:
                raise OptionError(f"vocab_sizes {small} are below the base vocabulary {base}")
            return sorted(set(self.vocab_sizes))
        return sorted({base * m for m in self.multipliers})


class BPEStudy(Task):
    name = "bpe"
    version = "1"
    Options = BPEOptions

    def __init__(self, options: BPEOptions):
        super().__init__(options)
        self._encoded: EncodedSet | None = None

    def prepare(self, ctx: RunContext) -> None:
        """Encode this rank's shard into the token cache; the study itself is a corpus record."""
        try:  # a bad codebook index or vocabulary size fails before any encoding
            _, base = stream_vocab(self.options.codebooks, ctx.meta.codebook_sizes)
            self.options.targets(base)
        except ValueError as exc:
            raise OptionError(f"task bpe on {ctx.meta.name}: {exc}") from None
        self._encoded = encode_dataset(ctx.model, ctx.dataset, ctx.utterances, ctx.cache,
                                       batch_size=ctx.batch_size, device=ctx.device,
                                       progress=ctx.progress)

    def corpus_records(self, ctx: RunContext, records: list[dict]) -> list[dict]:
        encoded = _all_tokens(ctx, self._encoded)
        speakers = {u.id: u.speaker for u in ctx.dataset.utterances}
        return study(encoded, ctx.meta, self.options, speakers=speakers, log=ctx.log)


def _all_tokens(ctx: RunContext, mine: EncodedSet | None) -> EncodedSet:
    """Tokens of every utterance: this rank's from memory, the others' from the token cache."""
    have = mine or EncodedSet({}, {}, {})
    rest = [u for u in ctx.dataset.utterances if u.id not in have.codes and u.id not in have.errors]
    more = encode_dataset(ctx.model, ctx.dataset, rest, ctx.cache, batch_size=ctx.batch_size,
                          device=ctx.device, progress=ctx.progress)
    return EncodedSet({**have.codes, **more.codes}, {**have.errors, **more.errors},
                      {**have.durations, **more.durations})


def _sha(ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def study(
    encoded: EncodedSet, meta: TokenizerMeta, options: BPEOptions,
    speakers: Mapping[str, str | None] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> list[dict]:
    """All corpus records of the bpe task from the tokens of every utterance (see module doc)."""
    codes = {uid: c.cpu().numpy().astype(np.int64) for uid, c in encoded.codes.items()}
    ids = sorted(codes)
    failed = dict(sorted(encoded.errors.items()))
    corpus = {"n_utterances": len(ids), "n_failed": len(failed),
              "failed": dict(list(failed.items())[:20])}

    records = stat_records(token_stats([codes[i] for i in ids], meta.codebook_sizes,
                                       meta.codebook_strides),
                           frame_rate=meta.frame_rate, extra=corpus)

    picked, base = stream_vocab(options.codebooks, meta.codebook_sizes)
    streams = {i: select_stream(codes[i], options.codebooks, meta.codebook_sizes,
                                meta.codebook_strides) for i in ids}
    train_ids, held_ids = holdout_split(ids, options.train_fraction, options.seed, options.split,
                                        speakers)
    train_units = [streams[i].units for i in train_ids]
    held_units = [streams[i].units for i in held_ids]
    n_train = int(sum(len(u) for u in train_units))
    n_held = int(sum(len(u) for u in held_units))
    held_seconds = float(sum(encoded.durations[i] for i in held_ids))
    split = {"by": options.split, "seed": options.seed, "train_fraction": options.train_fraction,
             "n_train": len(train_ids), "n_heldout": len(held_ids), "train_tokens": n_train,
             "heldout_tokens": n_held, "heldout_seconds": round(held_seconds, 3),
             "heldout_sha": _sha(held_ids)}
    stream = {"codebooks": options.codebooks, "codebook_indices": picked, "base_vocab": base}
    why_not = None
    if not held_ids or n_held == 0:
        why_not = "the held-out part has no tokens (too few utterances to split)"
    elif not train_ids or n_train == 0:
        why_not = "the training part has no tokens (too few utterances to split)"

    # Deduplication: consecutive repeated frames removed (for one codebook: repeated tokens).
    if n_held:
        kept = sum(streams[i].dedup_tokens() for i in held_ids)
        dedup = {"dedup_reduction": n_held / kept}
        dedup_reasons: dict[str, str] = {}
    else:
        kept, dedup = 0, {"dedup_reduction": None}  # type: ignore[dict-item]
        dedup_reasons = {"dedup_reduction": "the held-out part has no tokens"}
    records.append(make_record(None, dedup, reasons=dedup_reasons, extra={
        **corpus, **stream, "split": split, "dedup_tokens": int(kept), "heldout_ids": held_ids}))

    common = {**stream, "chunk_length": options.chunk_length,
              "max_token_length": options.max_token_length,
              "min_frequency": options.min_frequency, "split": split}
    targets = options.targets(base)
    if why_not:
        return records + [make_record(None, dict.fromkeys(BPE_METRICS),
                                      reasons=dict.fromkeys(BPE_METRICS, why_not), param=target,
                                      extra=common) for target in targets]
    # One training at the largest size: each smaller vocabulary is a prefix of its merges.
    t0 = time.perf_counter()
    full = UnitBPE.train(train_units, base, max(targets), chunk_length=options.chunk_length,
                         max_token_length=options.max_token_length,
                         min_frequency=options.min_frequency)
    train_s = time.perf_counter() - t0
    log(f"bpe: trained {full.vocab_size} tokens (target {max(targets)}) on {n_train} tokens "
        f"in {train_s:.2f} s")
    training = {"train_vocab_size": max(targets), "train_seconds": round(train_s, 4),
                "train_tokens_per_s": round(n_train / train_s) if train_s > 0 else None}
    for target in targets:
        records.append(_measure(full.truncated(target), target, held_units, held_ids,
                                held_seconds, {**common, **training}, log))
    return records


def _measure(
    bpe: UnitBPE, target: int, held_units: list[np.ndarray], held_ids: list[str],
    held_seconds: float, extra: dict[str, Any], log: Callable[[str], None],
) -> dict:
    """Encode the held-out part with one BPE vocabulary: reduction, rate and round trip."""
    n_held = sum(len(u) for u in held_units)
    t0 = time.perf_counter()
    encoded = bpe.encode(held_units)
    encode_s = time.perf_counter() - t0
    n_bpe = int(sum(len(e) for e in encoded))
    broken = [uid for uid, e, u in zip(held_ids, encoded, held_units, strict=True)
              if not np.array_equal(bpe.decode(e), u)]
    metrics = {
        "bpe_reduction": n_held / n_bpe,
        "bpe_tokens_per_s": n_bpe / held_seconds if held_seconds > 0 else None,
        "bpe_lossless": 1.0 - len(broken) / len(held_ids),
        "bpe_vocab_size": float(bpe.vocab_size),
    }
    reasons = {} if held_seconds > 0 else {"bpe_tokens_per_s": "held-out audio has no duration"}
    log(f"bpe: vocab {target} (learned {bpe.vocab_size}): reduction {metrics['bpe_reduction']:.3f}, "
        f"lossless {metrics['bpe_lossless']:.3f}")
    return make_record(None, metrics, reasons=reasons, param=target, extra={
        **extra, "bpe_tokens": n_bpe, "longest_token": int(bpe.token_lengths().max()),
        "not_lossless": broken[:20], "encode_seconds": round(encode_s, 4),
        "encode_tokens_per_s": round(n_held / encode_s) if encode_s > 0 else None,
    })
