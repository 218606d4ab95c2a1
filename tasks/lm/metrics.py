"""The lm task's own metrics: how hard the tokens are to model with a small causal transformer.

Per held-out utterance with param = the training seed; per codebook "<seed>/cb<q>". Only bits
per second compare across tokenizers (frame rates and vocabularies differ), so it alone has a
direction; the per-token figures are descriptive."""

from __future__ import annotations

from tokbench.metrics.kit import MetricSpec, declare

declare(
    MetricSpec("lm_bits_per_token", "cross-entropy of a small causal transformer LM trained on "
               "the tokens (held-out speakers), bits per token; corpus figure = total bits / "
               "total tokens; not comparable across vocabularies or frame rates (see "
               "lm_bits_per_second)", "none", "bit/token", aggregation="ratio",
               category="statistic"),
    MetricSpec("lm_bits_per_second", "the LM's cross-entropy in bits per second of audio (all "
               "codebooks; comparable across frame rates and codebook counts); corpus = total "
               "bits / total seconds", "lower", "bit/s", aggregation="ratio",
               category="statistic"),
    MetricSpec("lm_perplexity", "2 ** (held-out corpus bits per token) of the token LM", "none",
               "tokens", level="corpus", aggregation="value", category="statistic"),
    MetricSpec("lm_unigram_gap", "unigram entropy of the held-out tokens (per codebook, averaged "
               "over codebooks) minus the LM's bits per token: what context buys", "none",
               "bit/token", level="corpus", aggregation="value", category="statistic"),
    where="recorded",
    citation="token LM cross-entropy as in the DATES survey's language-modelling study",
    implementation="tokbench.tasks.lm.model",
)
