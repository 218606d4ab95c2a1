"""Token statistics every tokenizer report needs, per codebook and over the whole corpus.

- ``token_entropy``: unigram entropy H(X) in bits per token;
- ``token_cond_entropy``: H(X_t | X_{t-1}) = H(X_{t-1}, X_t) - H(X_{t-1}), from the bigram
  counts of the corpus (pairs within each utterance only, never across utterances);
- ``codebook_utilisation``: share of the codebook's codes that occur at least once;
- ``token_perplexity``: 2 ** token_entropy.

In results these metrics are corpus-level records with ``param`` = the codebook index (0-based).
``bitrate_entropy`` (frame rate x sum over codebooks of the unigram entropy) comes from the same
counts (:func:`bitrate_entropy_of_counts`); every entropy here goes through :func:`entropy_bits`.
Counts come from whole-corpus token streams: per-utterance counts are too few.

Multi-rate tokenizers (``TokenizerMeta.codebook_strides``) keep every codebook time-aligned at
the fastest rate, a slow code repeated over its frames; pass ``strides`` so each codebook's
stream holds each of its tokens once and ``bitrate_entropy`` weighs it by its own rate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tokbench.metrics.base import NotComputable
from tokbench.metrics.kit import MetricSpec, declare
from tokbench.records import make_record

if TYPE_CHECKING:
    import torch

STAT_METRICS = ("token_entropy", "token_cond_entropy", "codebook_utilisation", "token_perplexity")


def entropy_bits(counts: np.ndarray) -> float:
    """Shannon entropy (bits) of the distribution given by non-negative ``counts``."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if total <= 0:
        raise ValueError("entropy of an empty distribution is undefined")
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum())


def bitrate_entropy_of_counts(frame_rate: float, counts_per_codebook: Sequence[np.ndarray]) -> float:
    """frame_rate (Hz) x sum over codebooks of the unigram entropy (bits) of its code counts.
    Uniform counts over K codes give frame_rate x log2(K) per codebook. NotComputable if a
    codebook has no counts."""
    if frame_rate <= 0:
        raise ValueError(f"frame_rate must be positive, got {frame_rate}")
    if len(counts_per_codebook) == 0:
        raise NotComputable("no codebooks")
    bits = 0.0
    for q, counts in enumerate(counts_per_codebook):
        counts = np.asarray(counts)
        if counts.sum() <= 0:
            raise NotComputable(f"codebook {q} has no codes counted (no frames)")
        bits += entropy_bits(counts)
    return float(frame_rate * bits)


def _as_int_array(x: np.ndarray | torch.Tensor) -> np.ndarray:
    import torch

    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.int64)


def _check_range(stream: np.ndarray, size: int, codebook: int) -> None:
    if len(stream) and (int(stream.min()) < 0 or int(stream.max()) >= size):
        raise ValueError(
            f"codebook {codebook}: codes must lie in [0, {size}) but range over "
            f"[{int(stream.min())}, {int(stream.max())}]; the adapter's codebook_sizes are wrong"
        )


def unigram_counts(streams: Iterable[np.ndarray], size: int, codebook: int = 0) -> np.ndarray:
    """How often each of the ``size`` codes occurs over all ``streams`` (1-D code arrays)."""
    counts = np.zeros(size, dtype=np.int64)
    for s in streams:
        s = _as_int_array(s)
        _check_range(s, size, codebook)
        counts += np.bincount(s, minlength=size)
    return counts


def bigram_counts(streams: Iterable[np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts of the observed (previous, next) pairs within each stream.

    Returns ``(pairs [N, 2], counts [N])``: only observed pairs are kept, so a 65536-code
    codebook does not need a 65536 x 65536 table.
    """
    keys = [s[:-1] * size + s[1:] for s in (_as_int_array(s) for s in streams) if len(s) > 1]
    if not keys:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.int64)
    uniq, counts = np.unique(np.concatenate(keys), return_counts=True)
    return np.stack([uniq // size, uniq % size], axis=1), counts


def conditional_entropy_bits(pairs: np.ndarray, counts: np.ndarray) -> float:
    """H(next | previous) in bits from bigram counts: H(previous, next) - H(previous)."""
    if len(counts) == 0:
        raise NotComputable("no token pairs: every utterance has fewer than 2 frames")
    prev, inverse = np.unique(pairs[:, 0], return_inverse=True)
    prev_counts = np.bincount(inverse, weights=counts, minlength=len(prev))
    # Rounding can make the difference a hair negative when it is truly 0.
    return max(0.0, entropy_bits(counts) - entropy_bits(prev_counts))


@dataclass(frozen=True)
class CodebookStats:
    """Corpus statistics of one codebook. ``None`` fields come with a reason in ``reasons``."""

    codebook: int
    size: int
    n_tokens: int
    n_pairs: int
    entropy: float | None
    cond_entropy: float | None
    utilisation: float | None
    perplexity: float | None
    reasons: Mapping[str, str]
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False,
                               compare=False)  # unigram counts, by code
    stride: int = 1  # frames per token of this codebook (multi-rate tokenizers)

    def metrics(self) -> dict[str, float | None]:
        return {"token_entropy": self.entropy, "token_cond_entropy": self.cond_entropy,
                "codebook_utilisation": self.utilisation, "token_perplexity": self.perplexity}


def codebook_stats(streams: Sequence[np.ndarray], size: int, codebook: int = 0) -> CodebookStats:
    """Statistics of one codebook from its per-utterance 1-D code streams."""
    streams = [_as_int_array(s) for s in streams]
    counts = unigram_counts(streams, size, codebook)
    pairs, pair_counts = bigram_counts(streams, size)
    reasons: dict[str, str] = {}
    n = int(counts.sum())
    entropy = utilisation = perplexity = cond = None
    if n == 0:
        for name in STAT_METRICS:
            reasons[name] = "no tokens"
    else:
        entropy = entropy_bits(counts)
        perplexity = float(2.0**entropy)
        utilisation = float(np.count_nonzero(counts) / size)
        try:
            cond = conditional_entropy_bits(pairs, pair_counts)
        except NotComputable as exc:
            reasons["token_cond_entropy"] = str(exc)
    return CodebookStats(codebook, size, n, int(pair_counts.sum()), entropy, cond, utilisation,
                         perplexity, reasons, counts)


def token_stats(
    codes: Iterable[np.ndarray | torch.Tensor], codebook_sizes: Sequence[int],
    strides: Sequence[int] | None = None,
) -> list[CodebookStats]:
    """Per-codebook statistics of a corpus given per-utterance codes ``[Q, F_i]``; with
    ``strides`` (``meta.codebook_strides``), codebook q's tokens are ``codes[q, ::stride]``."""
    steps = [int(s) for s in strides] if strides else [1] * len(codebook_sizes)
    if len(steps) != len(codebook_sizes):
        raise ValueError(f"{len(steps)} strides for {len(codebook_sizes)} codebooks")
    per_codebook: list[list[np.ndarray]] = [[] for _ in codebook_sizes]
    for c in codes:
        c = _as_int_array(c)
        if c.ndim != 2 or c.shape[0] != len(codebook_sizes):
            raise ValueError(f"codes must be [Q={len(codebook_sizes)}, F], got {tuple(c.shape)}")
        for q in range(c.shape[0]):
            per_codebook[q].append(c[q, :: steps[q]])
    return [dataclasses.replace(codebook_stats(s, int(size), q), stride=step)
            for q, (s, size, step) in enumerate(zip(per_codebook, codebook_sizes, steps, strict=True))]


def bitrate_entropy(stats: Sequence[CodebookStats], frame_rate: float) -> float:
    """``bitrate_entropy`` (bit/s) of these counts (sum over codebooks of its rate,
    ``frame_rate / stride``, x the unigram entropy), as recon computes it."""
    if len({s.stride for s in stats}) <= 1:
        stride = stats[0].stride if stats else 1
        return bitrate_entropy_of_counts(frame_rate / stride, [s.counts for s in stats])
    return sum(bitrate_entropy_of_counts(frame_rate / s.stride, [s.counts]) for s in stats)


def stat_records(
    stats: Sequence[CodebookStats], frame_rate: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> list[dict]:
    """Corpus records: one per codebook (``param`` = codebook index) with the four statistics,
    plus one ``bitrate_entropy`` record (``param`` None) when ``frame_rate`` is given."""
    records = [
        make_record(None, s.metrics(), reasons=dict(s.reasons), param=s.codebook,
                    extra={**(extra or {}), "codebook_size": s.size, "n_tokens": s.n_tokens,
                           "n_pairs": s.n_pairs, **({"stride": s.stride} if s.stride > 1 else {})})
        for s in stats
    ]
    if frame_rate is not None:
        try:
            value, reasons = bitrate_entropy(stats, frame_rate), {}
        except NotComputable as exc:
            value, reasons = None, {"bitrate_entropy": str(exc)}
        records.append(make_record(None, {"bitrate_entropy": value}, reasons=reasons,
                                   extra={**(extra or {}), "frame_rate": frame_rate}))
    return records


# All corpus level, one value per run, recorded by the tasks that read tokens (recon, bpe); the
# record's `param` is the codebook index (0-based).
def _stat(name: str, description: str, direction: Any = "none", unit: str = "bit/token",
          **limits: Any) -> MetricSpec:
    return MetricSpec(name, description + " (param = codebook index)", direction, unit,
                      level="corpus", aggregation="value", category="statistic", **limits)


declare(
    _stat("token_entropy", "unigram entropy of one codebook's tokens over the corpus",
          valid_lo=0.0),
    _stat("token_cond_entropy", "H(X_t | X_t-1) of one codebook's tokens from corpus bigram "
          "counts, pairs within utterances", valid_lo=0.0),
    _stat("codebook_utilisation", "share of one codebook's codes used at least once in the "
          "corpus", "higher", "ratio", lo=0.0, hi=1.0),
    _stat("token_perplexity", "2 ** token_entropy", unit="tokens", valid_lo=1.0),
    where="recorded",
    citation="entropy and utilisation as in the DASB and Codec-SUPERB token analyses",
    implementation="tokbench.metrics.tokens (corpus counts per codebook)",
)
