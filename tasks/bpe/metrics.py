"""The bpe task's own metrics: corpus level, one value per run; `param` carries the target BPE
vocabulary size."""

from __future__ import annotations

from tokbench.metrics.kit import Category, Direction, MetricSpec, declare


def _corpus(name: str, description: str, direction: Direction, unit: str, category: Category,
            lo: float | None = None, hi: float | None = None,
            valid_lo: float | None = None) -> MetricSpec:
    return MetricSpec(name, description, direction, unit, level="corpus", aggregation="value",
                      category=category, lo=lo, hi=hi, valid_lo=valid_lo)


declare(
    _corpus("bpe_reduction", "original tokens / BPE tokens on the held-out part (param = "
            "target BPE vocabulary size)", "higher", "x", category="efficiency",
               valid_lo=0.0),
    _corpus("bpe_tokens_per_s", "BPE tokens per second of held-out audio (param = target "
            "vocabulary size)", "lower", "tokens/s", category="efficiency", valid_lo=0.0),
    _corpus("bpe_lossless", "share of held-out utterances whose BPE encoding decodes to the "
            "exact original tokens; must be 1 (param = target vocabulary size)", "higher",
            "ratio", lo=0.0, hi=1.0, category="statistic"),
    _corpus("bpe_vocab_size", "vocabulary size BPE learned (below param when no pair is "
            "frequent enough any more; param = target vocabulary size)", "none", "tokens",
               category="statistic", valid_lo=0.0),
    _corpus("dedup_reduction", "original tokens / tokens after removing consecutive repeats "
            "(held-out part)", "higher", "x", category="efficiency", valid_lo=0.0),
    where="recorded",
    citation="acoustic BPE as in Shen et al. 2024 and the Guo et al. 2025 review's BPE study",
    implementation="tokbench.tasks.bpe.merges (byte-level BPE over unit strings)",
)
