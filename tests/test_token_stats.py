import json
import math

import numpy as np
import pytest
import torch

from tokbench.metrics import get_metric
from tokbench.metrics.tokens import (
    bitrate_entropy,
    codebook_stats,
    conditional_entropy_bits,
    stat_records,
    token_stats,
)


def test_iid_uniform_tokens_have_entropy_log2_k():
    rng = np.random.default_rng(0)
    k = 16
    streams = [rng.integers(0, k, 20_000) for _ in range(10)]
    s = codebook_stats(streams, k)
    assert s.entropy == pytest.approx(math.log2(k), abs=0.005)
    # Independent tokens: knowing the previous one tells nothing.
    assert s.cond_entropy == pytest.approx(math.log2(k), abs=0.01)
    assert s.perplexity == pytest.approx(2**s.entropy) and s.perplexity == pytest.approx(k, rel=0.01)
    assert s.utilisation == 1.0 and s.n_tokens == 200_000 and s.n_pairs == 200_000 - 10


def test_deterministic_successor_has_zero_conditional_entropy():
    k = 8
    s = codebook_stats([np.arange(800) % k], k)
    assert s.entropy == pytest.approx(3.0)
    assert s.cond_entropy == pytest.approx(0.0, abs=1e-12)


def test_pairs_never_cross_utterances():
    # Within each utterance the next token is certain; a pair (0, 1) across the boundary would
    # make the conditional entropy positive.
    s = codebook_stats([np.zeros(50, int), np.ones(50, int)], 4)
    assert s.cond_entropy == pytest.approx(0.0, abs=1e-12)
    assert s.entropy == pytest.approx(1.0) and s.utilisation == 0.5 and s.n_pairs == 98


def test_conditional_entropy_of_a_known_chain():
    # prev 0 -> next uniform over {0, 1}; prev 1 -> always 0: H = 0.5 * 1 + 0.5 * 0 bits
    pairs = np.array([[0, 0], [0, 1], [1, 0]])
    counts = np.array([1, 1, 2])
    assert conditional_entropy_bits(pairs, counts) == pytest.approx(0.5)


def test_per_codebook_stats_and_bitrate_entropy():
    codes = [torch.tensor([[0, 1, 2, 3], [5, 5, 5, 5]]), torch.tensor([[3, 2, 1, 0], [5, 5, 5, 5]])]
    stats = token_stats(codes, (4, 8))
    assert [s.codebook for s in stats] == [0, 1]
    assert stats[0].entropy == pytest.approx(2.0) and stats[1].entropy == pytest.approx(0.0)
    assert stats[1].utilisation == 1 / 8 and stats[1].perplexity == pytest.approx(1.0)
    assert bitrate_entropy(stats, 50.0) == pytest.approx(100.0)


def test_undefined_statistics_are_null_with_a_reason():
    one_frame = codebook_stats([np.array([3]), np.array([1])], 4)
    assert one_frame.entropy == pytest.approx(1.0) and one_frame.cond_entropy is None
    assert "fewer than 2 frames" in one_frame.reasons["token_cond_entropy"]
    empty = codebook_stats([np.zeros(0, int)], 4)
    assert empty.entropy is None and empty.utilisation is None and empty.reasons["token_entropy"]
    records = stat_records([empty], frame_rate=50.0)
    assert records[0]["metrics"]["token_entropy"] is None and records[0]["reasons"]["token_entropy"]
    assert records[1]["metrics"]["bitrate_entropy"] is None and records[1]["reasons"]["bitrate_entropy"]


def test_codes_outside_the_codebook_are_an_error():
    with pytest.raises(ValueError, match="codebook_sizes are wrong"):
        codebook_stats([np.array([0, 4])], 4)
    with pytest.raises(ValueError, match=r"\[Q=2, F\]"):
        token_stats([np.zeros((3, 5), int)], (4, 4))


def test_records_put_the_codebook_in_param_and_declare_their_metrics():
    stats = token_stats([np.array([[0, 1, 1, 0], [2, 2, 3, 3]])], (2, 4))
    records = stat_records(stats, frame_rate=12.5, extra={"n_utterances": 1})
    assert [r["param"] for r in records] == [0, 1, None]
    assert records[1]["extra"]["codebook_size"] == 4 and records[0]["utterance_id"] is None
    assert records[2]["metrics"]["bitrate_entropy"] == pytest.approx(12.5 * (1.0 + 1.0))
    json.dumps(records)
    for name in ("token_entropy", "token_cond_entropy", "codebook_utilisation", "token_perplexity"):
        spec = get_metric(name)
        assert spec.level == "corpus" and spec.aggregation == "value"
