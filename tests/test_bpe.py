import json

import numpy as np
import pytest

from tokbench.options import OptionError, build_options
from tokbench.tasks.bpe.merges import (
    MAX_UNITS,
    UnitBPE,
    dedup,
    dedup_frames,
    holdout_split,
    select_stream,
    stream_vocab,
    text_to_units,
    units_to_text,
)
from tokbench.tasks.bpe.task import BPEOptions


def reduction(bpe: UnitBPE, seqs: list[np.ndarray]) -> float:
    return sum(len(s) for s in seqs) / sum(len(e) for e in bpe.encode(seqs))


def round_trips(bpe: UnitBPE, seqs: list[np.ndarray]) -> bool:
    return all(np.array_equal(bpe.decode(e), s) for e, s in zip(bpe.encode(seqs), seqs, strict=True))


def test_dedup_removes_consecutive_repeats():
    assert dedup(np.array([1, 1, 2, 2, 2, 3])).tolist() == [1, 2, 3]
    assert dedup(np.array([4, 4, 1, 4])).tolist() == [4, 1, 4]
    assert dedup(np.array([], dtype=int)).tolist() == []
    # Frames: dropped only when every codebook repeats.
    frames = np.array([[1, 1, 1, 2], [7, 7, 8, 8]])
    assert dedup_frames(frames) == 3
    assert dedup_frames(frames[:1]) == len(dedup(frames[0])) == 2
    assert dedup_frames(np.zeros((2, 0), int)) == 0


def test_unit_characters_round_trip_over_the_whole_range():
    units = np.array([0, 1, 255, 65535, 65536, MAX_UNITS - 1])
    text = units_to_text(units)
    assert len(text) == len(units) and not any(c.isspace() for c in text)
    assert text_to_units(text).tolist() == units.tolist()
    with pytest.raises(ValueError, match="unit ids"):
        units_to_text(np.array([MAX_UNITS]))


def test_iid_uniform_units_barely_shrink_and_round_trip():
    rng = np.random.default_rng(0)
    k = 64
    train = [rng.integers(0, k, 5000) for _ in range(40)]
    held = [rng.integers(0, k, 5000) for _ in range(10)]
    bpe = UnitBPE.train(train, k, 2 * k, chunk_length=256)
    assert bpe.vocab_size == 2 * k
    r = reduction(bpe, held)
    assert 1.0 < r < 1.05, r  # 64 merges of pairs each seen ~1/4096 of the time
    assert round_trips(bpe, held)


def test_repetitive_units_shrink_a_lot():
    rng = np.random.default_rng(1)
    k = 20
    # Units held for 12 frames each, like a slow speaker's semantic units.
    def seq():
        return np.repeat(rng.integers(0, k, 300), 12)

    train, held = [seq() for _ in range(20)], [seq() for _ in range(5)]
    bpe = UnitBPE.train(train, k, 8 * k, chunk_length=256, max_token_length=32)
    r = reduction(bpe, held)
    assert r > 5.0, r
    assert round_trips(bpe, held)
    assert reduction(UnitBPE.train(train, k, k, chunk_length=256), held) == 1.0


def test_round_trip_is_exact_for_any_lengths_and_chunkings():
    rng = np.random.default_rng(2)
    k = 30
    seqs = [np.repeat(rng.integers(0, k, n), rng.integers(1, 4, n)) for n in (0, 1, 2, 7, 255, 256, 257, 1000)]
    for chunk in (2, 3, 256, 10_000):
        bpe = UnitBPE.train(seqs, k, 3 * k, chunk_length=chunk, max_token_length=None, min_frequency=1)
        encoded = bpe.encode(seqs)
        assert [len(e) == 0 for e in encoded] == [len(s) == 0 for s in seqs]
        assert round_trips(bpe, seqs)


def test_tokens_never_cross_chunk_boundaries():
    seq = [np.zeros(1000, dtype=int)]
    bpe = UnitBPE.train(seq, 2, 100, chunk_length=10, max_token_length=None, min_frequency=1)
    # Each 10-unit chunk becomes one token at best, so the reduction is bounded by the chunk.
    assert len(bpe.encode(seq)[0]) == 100 and reduction(bpe, seq) == 10.0


@pytest.mark.parametrize("limit", [2, 4, 7])
def test_max_token_length_is_the_longest_token(limit):
    seq = [np.tile(np.arange(10), 300), np.repeat(np.arange(10), 40)]
    bpe = UnitBPE.train(seq, 10, 200, chunk_length=256, max_token_length=limit, min_frequency=1)
    assert int(bpe.token_lengths().max()) == limit
    assert round_trips(bpe, seq)


def test_smaller_vocabularies_are_prefixes_of_the_largest():
    rng = np.random.default_rng(3)
    k = 40
    seqs = [np.repeat(rng.integers(0, k, 800), rng.integers(1, 5, 800)) for _ in range(30)]
    train, held = seqs[:24], seqs[24:]
    full = UnitBPE.train(train, k, 16 * k, chunk_length=128, max_token_length=8)
    for size in (k, 2 * k, 5 * k, 16 * k):
        direct = UnitBPE.train(train, k, size, chunk_length=128, max_token_length=8)
        cut = full.truncated(size)
        assert cut.vocab_size == direct.vocab_size == size
        for a, b in zip(direct.encode(held), cut.encode(held), strict=True):
            assert np.array_equal(a, b)
        assert round_trips(cut, held)


def test_training_is_deterministic():
    rng = np.random.default_rng(4)
    seqs = [np.repeat(rng.integers(0, 50, 500), rng.integers(1, 4, 500)) for _ in range(10)]

    def model():
        return json.loads(UnitBPE.train(seqs, 50, 400, chunk_length=64).tokenizer.to_str())["model"]

    assert model() == model()


def test_stream_selection():
    codes = np.array([[0, 1, 2], [3, 3, 0]])
    sizes = (4, 5)
    assert stream_vocab("first", sizes) == ([0], 4)
    assert stream_vocab("1", sizes) == ([1], 5)
    assert stream_vocab("all", sizes) == ([0, 1], 9)
    assert select_stream(codes, "first", sizes).units.tolist() == [0, 1, 2]
    assert select_stream(codes, "1", sizes).units.tolist() == [3, 3, 0]
    # Frame by frame, codebook 1 offset by codebook 0's size.
    assert select_stream(codes, "all", sizes).units.tolist() == [0, 7, 1, 7, 2, 4]
    with pytest.raises(ValueError, match="codebooks 0..1"):
        stream_vocab("2", sizes)
    with pytest.raises(ValueError, match="out of range"):
        select_stream(np.array([[4]]), "first", (4,))


def test_holdout_split_is_deterministic_complete_and_disjoint():
    ids = [f"utt{i:03d}" for i in range(50)]
    train, held = holdout_split(ids, 0.8, seed=0)
    assert len(train) == 40 and len(held) == 10
    assert sorted(train + held) == ids and not set(train) & set(held)
    assert holdout_split(list(reversed(ids)), 0.8, seed=0) == (train, held)
    assert holdout_split(ids, 0.8, seed=1) != (train, held)
    assert holdout_split(["a", "b"], 0.8) in ((["a"], ["b"]), (["b"], ["a"]))
    assert holdout_split(["a"], 0.8) == (["a"], [])


def test_speaker_split_holds_out_whole_speakers():
    ids = [f"s{s}-{u}" for s in range(8) for u in range(4)]
    speakers = {i: i.split("-")[0] for i in ids}
    train, held = holdout_split(ids, 0.75, seed=0, by="speaker", speakers=speakers)
    assert {speakers[i] for i in train}.isdisjoint({speakers[i] for i in held})
    assert len(train) == 24 and len(held) == 8
    with pytest.raises(ValueError, match="speaker labels"):
        holdout_split(ids, 0.75, by="speaker", speakers={})


def test_task_options_are_checked():
    opts = build_options(BPEOptions, {}, {"codebooks": "3", "multipliers": "1,2", "max_token_length": "none"})
    assert opts.codebooks == "3" and opts.multipliers == (1, 2) and opts.max_token_length is None
    assert opts.targets(100) == [100, 200]
    assert build_options(BPEOptions, {}, {"vocab_sizes": "600,300"}).targets(300) == [300, 600]
    with pytest.raises(OptionError, match="below the base"):
        build_options(BPEOptions, {}, {"vocab_sizes": "200"}).targets(300)
    for bad in ({"codebooks": "second"}, {"train_fraction": "1.0"}, {"split": "random"},
                {"max_token_length": "1"}, {"multipliers": "0"}):
        with pytest.raises(OptionError):
            build_options(BPEOptions, {}, bad)
