"""The entropy bitrate of code counts (corpus counts come from tokbench.metrics.tokens)."""

import math

import numpy as np
import pytest

from tokbench.metrics.base import NotComputable
from tokbench.metrics.tokens import bitrate_entropy_of_counts as bitrate_entropy
from tokbench.metrics.tokens import unigram_counts
from tokbench.types import TokenizerMeta


def test_uniform_counts_give_log2_k_bits_per_codebook():
    counts = [np.full(1024, 7), np.full(1024, 3)]
    assert bitrate_entropy(75.0, counts) == pytest.approx(75.0 * 2 * 10)
    assert bitrate_entropy(50.0, [np.full(16, 1), np.full(64, 2)]) == pytest.approx(50.0 * (4 + 6))


def test_uniform_use_reaches_the_nominal_bitrate():
    meta = TokenizerMeta(name="t", family="f", kind="acoustic", sample_rate=16000,
                         frame_rate=86.13, n_codebooks=3, codebook_sizes=(256, 256, 1024))
    codes = np.stack([np.arange(1024) % 256, np.arange(1024)[::-1] % 256, np.arange(1024)])
    counts = [unigram_counts([codes[q]], size, q) for q, size in enumerate(meta.codebook_sizes)]
    assert bitrate_entropy(meta.frame_rate, counts) == pytest.approx(meta.bitrate_nominal)


def test_skewed_use_is_below_nominal_and_one_code_is_zero_bits():
    counts = [np.array([90, 5, 5, 0])]
    h = -(0.9 * math.log2(0.9) + 2 * 0.05 * math.log2(0.05))
    assert bitrate_entropy(10.0, counts) == pytest.approx(10.0 * h)
    assert bitrate_entropy(10.0, [np.array([0, 12, 0])]) == 0.0


def test_no_codes_is_not_computable():
    with pytest.raises(NotComputable, match="no codes"):
        bitrate_entropy(50.0, [np.zeros(4)])
    with pytest.raises(NotComputable):
        bitrate_entropy(50.0, [])
