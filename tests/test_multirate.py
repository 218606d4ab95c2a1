"""The multi-rate token contract (docs/adapter-contract.md), on a toy tokenizer whose three
codebooks run at 25, 50 and 100 Hz (as SNAC's run at about 12, 23 and 47 Hz): the adapter
checks, bitrate and token rate, token statistics and BPE streams all count each token once."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from tokbench.adapters.framed import FramedCodec, align_codebooks, split_codebooks
from tokbench.meta import TokenizerMeta
from tokbench.metrics.tokens import bitrate_entropy, entropy_bits, token_stats
from tokbench.tasks.bpe.merges import select_stream
from tokbench.testing import ContractError, check_tokenizer, speechlike_items
from tokbench.types import ModelSource, Tokens

STRIDES, SIZES, HOP = (4, 2, 1), (16, 32, 64), 160


@dataclass(frozen=True)
class ToyOptions:
    pass


class ToyMultiRate(FramedCodec):
    """Residual scalar quantisation of frame means: codebook q quantises the mean residual over
    windows of ``STRIDES[q]`` frames. Weight-free, deterministic, exact in a batch."""

    Options = ToyOptions
    name = family = "toy-multirate"
    sample_rate, hop_length, codebook_size = 16_000, HOP, max(SIZES)
    codebook_strides = STRIDES
    frame_multiple = 4  # whole slow frames

    @classmethod
    def n_codebooks_for(cls, options: ToyOptions) -> int:
        return len(SIZES)

    @classmethod
    def codebook_sizes_for(cls, options: ToyOptions) -> tuple[int, ...]:
        return SIZES

    def _load(self, checkpoint: str | None, device: str) -> ModelSource:
        return ModelSource()

    @staticmethod
    def _levels(size: int) -> torch.Tensor:
        return torch.linspace(-1, 1, size)

    def _encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[-1] // HOP
        residual, per = x[:, 0].clone(), []
        for s, size in zip(STRIDES, SIZES, strict=True):
            means = residual.reshape(x.shape[0], -1, s * HOP).mean(-1)
            code = torch.bucketize(means, (self._levels(size)[1:] + self._levels(size)[:-1]) / 2)
            residual -= self._levels(size)[code].repeat_interleave(s * HOP, dim=-1)
            per.append(code)
        return align_codebooks(per, STRIDES, frames)

    def _decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        parts = [self._levels(size)[c].repeat_interleave(s * HOP, dim=-1)[:, : codes.shape[-1] * HOP]
                 for c, s, size in zip(split_codebooks(codes, STRIDES), STRIDES, SIZES, strict=True)]
        return torch.stack(parts).sum(0)

    def _codebook_tables(self) -> list[torch.Tensor]:
        return [self._levels(size)[:, None].repeat(1, 4) for size in SIZES]


class Packed(ToyMultiRate):
    """Breaks the layout: slow codes packed at the start instead of held over their frames."""

    def _encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        aligned = super()._encode_frames(x)
        out = torch.zeros_like(aligned)
        for q, c in enumerate(split_codebooks(aligned, STRIDES)):
            out[:, q, : c.shape[-1]] = c
        return out


@pytest.fixture(scope="module")
def toy() -> ToyMultiRate:
    return ToyMultiRate(ToyOptions())


def test_meta_declares_per_codebook_rates(toy):
    meta = toy.meta
    assert meta.frame_rate == 100.0 and meta.multi_rate and meta.codebook_strides == STRIDES
    assert meta.codebook_rates == (25.0, 50.0, 100.0)
    assert meta.token_rate == 175.0
    assert meta.bitrate_nominal == pytest.approx(25 * 4 + 50 * 5 + 100 * 6)  # log2 16, 32, 64
    assert meta.tokens_in(100) == 175 and meta.tokens_in(101) == 26 + 51 + 101
    d = meta.to_dict()
    assert d["codebook_rates"] == [25.0, 50.0, 100.0] and d["token_rate"] == 175.0
    # single-rate metadata is unchanged: no stride keys, the same rates as before
    single = TokenizerMeta(name="m", family="f", kind="acoustic", sample_rate=16000,
                           frame_rate=50.0, n_codebooks=2, codebook_sizes=(1024, 1024),
                           codebook_strides=(1, 1))
    assert single.codebook_strides == () and "codebook_strides" not in single.to_dict()
    assert single.token_rate == 100.0 and single.bitrate_nominal == 1000.0


@pytest.mark.parametrize("strides, message", [((2, 4, 4), "smallest codebook stride must be 1"),
                                              ((1, 2), "one positive stride per codebook")])
def test_bad_strides_are_refused(strides, message):
    with pytest.raises(ValueError, match=message):
        TokenizerMeta(name="m", family="f", kind="acoustic", sample_rate=16000, frame_rate=50.0,
                      n_codebooks=3, codebook_sizes=(4, 4, 4), codebook_strides=strides)


def test_toy_meets_the_contract(toy):
    report = check_tokenizer(toy)
    assert report.code_agreement == 1.0 and report.snr_db == math.inf and report.embed_dim == 4


def test_check_tokenizer_refuses_packed_slow_codes():
    with pytest.raises(ContractError, match="codebook 0 \\(stride 4\\): codes change within a slow frame"):
        check_tokenizer(Packed(ToyOptions()))


def _one_second(toy) -> Tokens:
    x = speechlike_items([16_000], 16_000)[0][None]
    return toy.encode(x, torch.tensor([16_000]))


def test_token_statistics_count_each_token_once(toy):
    tokens = _one_second(toy)
    codes = tokens.item(0)
    assert codes.shape == (3, 100)
    stats = token_stats([codes], SIZES, toy.meta.codebook_strides)
    assert [s.n_tokens for s in stats] == [25, 50, 100]
    assert sum(s.n_tokens for s in stats) == toy.meta.tokens_in(100)
    expected = sum(r * entropy_bits(np.bincount(toy.meta.codebook_tokens(codes, q).numpy(),
                                                minlength=SIZES[q]))
                   for q, r in enumerate(toy.meta.codebook_rates))
    assert bitrate_entropy(stats, toy.meta.frame_rate) == pytest.approx(expected)
    assert [s.n_pairs for s in stats] == [24, 49, 99]  # bigrams of neighbouring tokens
    # without the strides the repeats would count as tokens (and as pairs)
    naive = token_stats([codes], SIZES)
    assert [s.n_tokens for s in naive] == [100, 100, 100] and naive[0].n_pairs == 99


def test_bpe_streams_hold_each_token_once_in_time_order(toy):
    codes = _one_second(toy).item(0).numpy()
    strides = toy.meta.codebook_strides
    assert select_stream(codes, "first", SIZES, strides).units.tolist() == codes[0, ::4].tolist()
    assert select_stream(codes, "2", SIZES, strides).units.tolist() == codes[2].tolist()
    stream = select_stream(codes, "all", SIZES, strides)
    assert len(stream.units) == toy.meta.tokens_in(100)
    # frame 0: all three codebooks; frame 1: the fast one; frame 2: the middle and fast ones
    assert stream.units[:6].tolist() == [codes[0, 0], 16 + codes[1, 0], 48 + codes[2, 0],
                                         48 + codes[2, 1], 16 + codes[1, 2], 48 + codes[2, 2]]
    assert stream.dedup_tokens() <= len(stream.units)
    held = np.zeros((3, 8), dtype=np.int64)  # nothing changes: one frame and its tokens remain
    assert select_stream(held, "all", SIZES, strides).dedup_tokens() == 3
