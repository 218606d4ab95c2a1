"""Probe frames: frame-rate plans and token frontends (plain tensors, no audio).

- A :class:`FramePlan` brings a tokenizer's native frame rate into [50, 100] Hz: slow tokenizers
  (Mimi, 12.5 Hz) repeat frames, fast ones (mu-law, 16 kHz) are mean-pooled over windows.
- A frontend turns codes ``[Q, F]`` into vectors: a learned table per codebook (mean-pooled into
  the output frames with ``EmbeddingBag``), or the adapter's own ``embed()`` (frozen), combined
  by a learned softmax-weighted sum over codebooks (as DASB does) and projected to ``width``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tokbench.types import Tokens

MIN_RATE = 50.0
MAX_RATE = 100.0
_TOL = 1e-6


@dataclass(frozen=True)
class FramePlan:
    """How native frames map to probe frames. ``ratio`` = native frames per probe frame."""

    native: float
    target: float

    @property
    def ratio(self) -> float:
        return self.native / self.target

    @property
    def mode(self) -> str:
        if abs(self.target - self.native) <= _TOL * self.native:
            return "keep"
        return "repeat" if self.target > self.native else "pool"

    def n_out(self, n_in: int) -> int:
        if self.mode == "keep":
            return n_in
        return max(1, math.ceil(n_in / self.ratio - _TOL))

    def layout(self, n_in: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(index, starts)`` for an item of ``n_in`` native frames: probe frame ``j`` is the mean
        over native frames ``index[starts[j]:starts[j+1]]`` (one frame when repeating)."""
        return _layout(self.native, self.target, n_in)

    def to_dict(self) -> dict[str, Any]:
        return {"native_rate": self.native, "probe_rate": self.target, "mode": self.mode,
                "native_frames_per_probe_frame": self.ratio}


@functools.lru_cache(maxsize=8192)
def _layout(native: float, target: float, n_in: int) -> tuple[torch.Tensor, torch.Tensor]:
    plan = FramePlan(native, target)
    if n_in <= 0:
        raise ValueError("an item with no frames has no probe frames")
    n_out = plan.n_out(n_in)
    if plan.mode == "keep":
        a = torch.arange(n_in)
        return a, a
    pos = torch.floor(torch.arange(n_out, dtype=torch.float64) * plan.ratio + _TOL).long()
    pos = pos.clamp(max=n_in - 1)
    if plan.mode == "repeat":
        return pos, torch.arange(n_out)
    return torch.arange(n_in), pos  # pool: contiguous windows, each non-empty (ratio > 1)


def plan_frame_rate(native: float, target: float = 0.0) -> FramePlan:
    """The probe frame rate for a tokenizer at ``native`` Hz.

    ``target`` 0 (auto): keep rates in [50, 100] Hz; otherwise the lowest rate of at least 50 Hz
    that a whole factor reaches: repeat slower tokenizers (12.5 Hz -> x4 -> 50 Hz, 40 Hz -> x2 ->
    80 Hz), mean-pool faster ones (16 kHz -> /320 -> 50 Hz, 199 Hz -> /3 -> 66.3 Hz). Whole factors
    always land in [50, 100] Hz, and the lowest such rate keeps the BiLSTM cheap. An explicit
    ``target`` in [50, 100] uses fractional windows where needed.
    """
    if native <= 0:
        raise ValueError(f"native frame rate must be positive, got {native}")
    if target:
        if not MIN_RATE <= target <= MAX_RATE:
            raise ValueError(f"probe frame rate must lie in [{MIN_RATE:g}, {MAX_RATE:g}] Hz, got {target}")
        return FramePlan(float(native), float(target))
    if native < MIN_RATE:
        return FramePlan(float(native), native * math.ceil(MIN_RATE / native - _TOL))
    if native > MAX_RATE:
        return FramePlan(float(native), native / math.floor(native / MIN_RATE + _TOL))
    return FramePlan(float(native), float(native))


@dataclass
class FrameBatch:
    """A batch of items' native codes and how they map onto probe frames."""

    codes: torch.Tensor  # [Q, sum F_in]: native codes of all items, concatenated
    native_lengths: torch.Tensor  # [B]
    index: torch.Tensor  # [N]: native frames (into ``codes``) feeding the probe frames, in order
    offsets: torch.Tensor  # [sum F_out]: where each probe frame's window starts in ``index``
    lengths: torch.Tensor  # [B]: probe frames per item

    def to(self, device: str | torch.device) -> FrameBatch:
        return FrameBatch(*(t.to(device) for t in (self.codes, self.native_lengths, self.index,
                                                   self.offsets, self.lengths)))


def collate(codes: Sequence[torch.Tensor], plan: FramePlan) -> FrameBatch:
    index, offsets, lengths = [], [], []
    base_in = base_n = 0
    for c in codes:
        idx, starts = plan.layout(int(c.shape[1]))
        index.append(idx + base_in)
        offsets.append(starts + base_n)
        lengths.append(len(starts))
        base_in += int(c.shape[1])
        base_n += len(idx)
    return FrameBatch(torch.cat(list(codes), dim=1), torch.tensor([int(c.shape[1]) for c in codes]),
                      torch.cat(index), torch.cat(offsets), torch.tensor(lengths))


# ---------------------------------------------------------------------------------- frontends


class LearnedEmbedding(nn.Module):
    """One learned table per codebook, softmax-weighted sum over codebooks, linear projection."""

    def __init__(self, codebook_sizes: Sequence[int], width: int):
        super().__init__()
        self.tables = nn.ModuleList(nn.EmbeddingBag(int(s), width, mode="mean") for s in codebook_sizes)
        self.codebook_logits = nn.Parameter(torch.zeros(len(codebook_sizes)))
        self.proj = nn.Linear(width, width)

    def forward(self, batch: FrameBatch) -> torch.Tensor:
        """``[sum F_out, width]``: one vector per probe frame of every item."""
        x = batch.codes[:, batch.index]
        w = torch.softmax(self.codebook_logits, 0)
        e = sum(w[q] * table(x[q], batch.offsets) for q, table in enumerate(self.tables))
        return self.proj(e)

    def codebook_weights(self) -> list[float]:
        return torch.softmax(self.codebook_logits.detach(), 0).cpu().tolist()


class AdapterEmbedding(nn.Module):
    """The tokenizer's own ``embed()`` vectors (frozen, computed per batch), combined over
    codebooks by learned weights, mean-pooled or repeated to probe frames, projected."""

    def __init__(self, embed: Callable[[Tokens], torch.Tensor], n_codebooks: int, dim: int, width: int):
        super().__init__()
        self.embed = embed  # [B, Q, F, D] for a Tokens batch; never trained
        self.codebook_logits = nn.Parameter(torch.zeros(n_codebooks))
        self.proj = nn.Linear(dim, width)

    def forward(self, batch: FrameBatch) -> torch.Tensor:
        n_in = batch.native_lengths.tolist()
        tokens = Tokens.from_list(list(torch.split(batch.codes, n_in, dim=1)))
        with torch.no_grad():
            dense = self.embed(tokens).to(batch.codes.device, torch.float32)
        if dense.is_inference():  # autograd cannot save inference tensors; a clone is normal
            dense = dense.clone()
        if dense.dim() != 4 or dense.shape[:3] != tokens.codes.shape:
            raise ValueError(f"embed() must return [B, Q, F, D] for codes {tuple(tokens.codes.shape)}, "
                             f"got {tuple(dense.shape)}")
        w = torch.softmax(self.codebook_logits, 0)
        # Weighting codebooks and mean pooling are both linear: combine first, it is smaller.
        mixed = torch.einsum("bqfd,q->bfd", dense, w)
        flat = torch.cat([mixed[b, :n] for b, n in enumerate(n_in)])[batch.index]
        counts = torch.diff(batch.offsets, append=batch.offsets.new_tensor([len(batch.index)]))
        bag = torch.repeat_interleave(torch.arange(len(counts), device=flat.device), counts)
        pooled = flat.new_zeros(len(counts), flat.shape[1]).index_add_(0, bag, flat)
        return self.proj(pooled / counts[:, None].to(pooled.dtype))

    def codebook_weights(self) -> list[float]:
        return torch.softmax(self.codebook_logits.detach(), 0).cpu().tolist()


def pad_frames(flat: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``[sum F, W]`` -> ``[B, max F, W]`` (zero padding)."""
    return nn.utils.rnn.pad_sequence(list(torch.split(flat, lengths.tolist())), batch_first=True)


class ProbeModel(nn.Module):
    def __init__(self, frontend: nn.Module, head: nn.Module):
        super().__init__()
        self.frontend = frontend
        self.head = head

    def forward(self, batch: FrameBatch) -> Any:
        return self.head(pad_frames(self.frontend(batch), batch.lengths), batch.lengths)

