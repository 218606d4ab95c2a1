"""Efficiency figures every decoding run records itself: output length, bitrate, token rate and
speed (the decode loop measures them; tokbench.run.decode_score)."""

from __future__ import annotations

from tokbench.metrics.kit import MetricSpec, declare

declare(
    MetricSpec("length_ratio", "output duration / reference duration at 16 kHz (1 = same "
               "length; beyond one frame the extra part is scored against zero-padding, a "
               "missing part as silence)", "none", "x", lo=0.0, hi=None, category="statistic"),
    MetricSpec("bitrate_nominal", "frame_rate x sum of log2(codebook size) over codebooks",
               "lower", "bit/s", level="corpus", aggregation="value", category="efficiency",
               valid_lo=0.0),
    MetricSpec("bitrate_entropy", "frame_rate x sum over codebooks of the corpus unigram "
               "entropy", "lower", "bit/s", level="corpus", aggregation="value",
               category="efficiency", valid_lo=0.0),
    MetricSpec("token_rate", "tokens per second of audio (all codebooks); corpus: total tokens "
               "/ total seconds", "lower", "tokens/s", aggregation="ratio",
               category="efficiency", valid_lo=0.0),
    MetricSpec("rtf_encode", "encode seconds per audio second, after warm-up; corpus: total / "
               "total", "lower", "s/s", aggregation="ratio", category="efficiency",
               valid_lo=0.0),
    MetricSpec("rtf_decode", "decode seconds per audio second, after warm-up; corpus: total / "
               "total", "lower", "s/s", aggregation="ratio", category="efficiency",
               valid_lo=0.0),
    where="recorded",
    citation="bitrate and token rate as DATES and Codec-SUPERB report them",
    implementation="tokbench.run.decode_score (timed encode/decode, token counts, lengths)",
)
