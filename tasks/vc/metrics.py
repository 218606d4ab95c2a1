"""The vc task's own metrics (with wer, cer and f0_corr of the shared set): how much of the
target's timbre the converted speech takes and how much of the source's it keeps."""

from __future__ import annotations

from tokbench.metrics.kit import MetricSpec, declare

declare(
    MetricSpec("secs_target", "SECS of converted speech vs the target speaker's prompt",
               "higher", "cosine", lo=0.0, hi=1.0, valid_lo=-1.0),
    MetricSpec("secs_source", "SECS of converted speech vs the source utterance (timbre "
               "leakage)", "lower", "cosine", lo=0.0, hi=1.0, valid_lo=-1.0),
    where="recorded",
    citation="the Guo et al. 2025 review's voice-conversion table (Resemblyzer SECS)",
    implementation="tokbench.tasks.vc.task.score_conversion (Resemblyzer, as secs)",
)
