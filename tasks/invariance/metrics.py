"""The invariance task's own metrics: token stability under meaning-preserving perturbations.
`param` = "<perturbation>/cb<q>" or "<perturbation>/frames" (all codebooks as one symbol)."""

from __future__ import annotations

from tokbench.metrics.kit import MetricSpec, declare

declare(
    MetricSpec("ued", "unit edit distance: Levenshtein distance between the tokens of the "
               "original and of the perturbed audio / the original's length (Gat et al. 2023; "
               "param = perturbation/codebook)", "lower", "ratio", lo=0.0, hi=1.0,
               category="statistic",
               valid_hi=float("inf")),  # above 1 when the perturbed copy is longer (speed 0.9)
    MetricSpec("ued_dedup", "unit edit distance after collapsing consecutive repeats on both "
               "sides / the collapsed original's length (param = perturbation/codebook)",
               "lower", "ratio", lo=0.0, hi=1.0, category="statistic", valid_hi=float("inf")),
    MetricSpec("code_change_rate", "share of the original's frames whose code differs at the "
               "same frame index, for time-aligned perturbations (gain, noise, sub-frame shift, "
               "re-encoding)", "lower", "ratio", lo=0.0, hi=1.0, category="statistic"),
    where="recorded",
    citation="Gat et al., 'Augmentation invariant discrete representation for generative "
             "spoken language modeling', IWSLT 2023",
    implementation="tokbench.tasks.invariance.unit_edit (rapidfuzz Levenshtein)",
)
