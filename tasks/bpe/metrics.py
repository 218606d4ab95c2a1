"""The bpe task's own metrics: corpus level, one value per run; `param` carries the target BPE
vocabulary size."""

from __future__ import annotations

from tokbench.metrics.kit import MetricSpec, declare

_CORPUS = {"level": "corpus", "aggregation": "value"}

declare(
    MetricSpec("bpe_reduction", "original tokens / BPE tokens on the held-out part (param = "
               "target BPE vocabulary size)", "higher", "x", category="efficiency",
               valid_lo=0.0, **_CORPUS),
    MetricSpec("bpe_tokens_per_s", "BPE tokens per second of held-out audio (param = target "
               "vocabulary size)", "lower", "tokens/s", category="efficiency", valid_lo=0.0,
               **_CORPUS),
    MetricSpec("bpe_lossless", "share of held-out utterances whose BPE encoding decodes to the "
               "exact original tokens; must be 1 (param = target vocabulary size)", "higher",
               "ratio", lo=0.0, hi=1.0, category="statistic", **_CORPUS),
    MetricSpec("bpe_vocab_size", "vocabulary size BPE learned (below param when no pair is "
               "frequent enough any more; param = target vocabulary size)", "none", "tokens",
               category="statistic", valid_lo=0.0, **_CORPUS),
    MetricSpec("dedup_reduction", "original tokens / tokens after removing consecutive repeats "
               "(held-out part)", "higher", "x", category="efficiency", valid_lo=0.0, **_CORPUS),
    where="recorded",
    citation="acoustic BPE as in Shen et al. 2024 and the Guo et al. 2025 review's BPE study",
    implementation="tokbench.tasks.bpe.merges (byte-level BPE over unit strings)",
)
