"""Token rate, code counts and the entropy bitrate."""

import math

import numpy as np
import pytest
import torch

from tokbench.metrics.base import NotComputable
from tokbench.metrics.rates import bitrate_entropy, codebook_counts, sum_counts, token_rate
from tokbench.types import TokenizerMeta


def test_uniform_counts_give_log2_k_bits_per_codebook():
    counts = [np.full(1024, 7), np.full(1024, 3)]
    assert bitrate_entropy(75.0, counts) == pytest.approx(75.0 * 2 * 10)
    assert bitrate_entropy(50.0, [np.full(16, 1), np.full(64, 2)]) == pytest.approx(50.0 * (4 + 6))


def test_uniform_use_reaches_the_nominal_bitrate():
    meta = TokenizerMeta(name="t", family="f", kind="acoustic", sample_rate=16000,
                         frame_rate=86.13, n_codebooks=3, codebook_sizes=(256, 256, 1024))
    codes = np.stack([np.arange(1024) % 256, np.arange(1024)[::-1] % 256, np.arange(1024)])
    counts = codebook_counts(codes, meta.codebook_sizes)
    assert bitrate_entropy(meta.frame_rate, counts) == pytest.approx(meta.bitrate_nominal)


def test_skewed_use_is_below_nominal_and_one_code_is_zero_bits():
    counts = [np.array([90, 5, 5, 0])]
    h = -(0.9 * math.log2(0.9) + 2 * 0.05 * math.log2(0.05))
    assert bitrate_entropy(10.0, counts) == pytest.approx(10.0 * h)
    assert bitrate_entropy(10.0, [np.array([0, 12, 0])]) == 0.0


def test_codebook_counts_from_numpy_and_torch_and_corpus_sum():
    codes = torch.tensor([[0, 1, 1, 3], [2, 2, 2, 2]])
    a = codebook_counts(codes, (4, 8))
    assert [c.tolist() for c in a] == [[1, 2, 0, 1], [0, 0, 4, 0, 0, 0, 0, 0]]
    b = codebook_counts(np.array([[3], [7]]), [4, 8])
    total = sum_counts([a, b])
    assert [c.tolist() for c in total] == [[1, 2, 0, 2], [0, 0, 4, 0, 0, 0, 0, 1]]
    assert [c.tolist() for c in a] == [[1, 2, 0, 1], [0, 0, 4, 0, 0, 0, 0, 0]]  # not mutated
    empty = codebook_counts(np.zeros((2, 0), dtype=np.int64), (4, 8))
    assert [c.sum() for c in empty] == [0, 0] and [len(c) for c in empty] == [4, 8]


def test_codebook_counts_reject_bad_input():
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        codebook_counts(np.array([[0, 4]]), (4,))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        codebook_counts(np.array([[-1, 0]]), (4,))
    with pytest.raises(ValueError, match="2 sizes"):
        codebook_counts(np.zeros((1, 3), dtype=np.int64), (4, 4))
    with pytest.raises(ValueError, match=r"\[Q, F\]"):
        codebook_counts(np.zeros(3, dtype=np.int64), (4,))
    with pytest.raises(ValueError, match="layouts"):
        sum_counts([[np.zeros(4)], [np.zeros(5)]])


def test_no_codes_is_not_computable():
    with pytest.raises(NotComputable, match="no codes"):
        bitrate_entropy(50.0, [np.zeros(4)])
    with pytest.raises(NotComputable):
        bitrate_entropy(50.0, [])
    with pytest.raises(NotComputable):
        sum_counts([])


def test_token_rate():
    assert token_rate(8 * 50, 4.0) == 100.0
    with pytest.raises(NotComputable, match="0"):
        token_rate(0, 0.0)
