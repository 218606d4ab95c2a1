"""The probe task's own metrics: lightweight heads trained on frozen tokens (`param` = seed)."""

from __future__ import annotations

from tokbench.metrics.kit import MetricSpec, declare

declare(
    MetricSpec("probe_spk_acc", "speaker-ID accuracy of a mean-pooling + MLP probe trained on "
               "the tokens (per test utterance 1 if right, else 0; the mean is the accuracy)",
               "higher", "", lo=0.0, hi=1.0),
    MetricSpec("probe_cer", "character error rate (spaces included) of a 2-layer BiLSTM CTC "
               "probe trained on the tokens, greedy decoding, EnglishTextNormalizer", "lower",
               "%", aggregation="ratio", lo=0.0, hi=100.0, scale=100.0, valid_hi=float("inf")),
    MetricSpec("probe_wer", "word error rate of the CTC content probe (as probe_cer)", "lower",
               "%", aggregation="ratio", lo=0.0, hi=100.0, scale=100.0, valid_hi=float("inf")),
    where="recorded",
    citation="probing as in DASB (Mousavi et al. 2024)",
    implementation="tokbench.tasks.probe.heads",
)
