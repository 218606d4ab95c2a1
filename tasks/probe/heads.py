"""Probe heads: what a probe trains and tests on, its small module, and how it scores.

``tasks/probe/task.py`` wires the heads to the runner; the frames they read come from
:mod:`tokbench.tasks.probe.frames` and their training loop is :mod:`tokbench.tasks.probe.training`.
Everything works on plain tensors, so tests can probe synthetic tokens with known answers without
any audio.

A head (:class:`ProbeHead`) says which items it trains and tests on, builds its small module,
and scores test items. New heads (emotion, ...) subclass it and call :func:`register_head`;
adapters never change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from tokbench.data.splits import Split, SplitError, split_items, split_within_groups
from tokbench.metrics.asr import normalize, wer_cer
from tokbench.metrics.base import NotComputable
from tokbench.registry import suggest


@dataclass
class ProbeItem:
    """One utterance's tokens and labels."""

    id: str
    codes: torch.Tensor  # [Q, F] at the tokenizer's native frame rate
    speaker: str | None = None
    text: str | None = None


@dataclass
class Scored:
    """A head's result for one test item: metric values, ratio counts, anything else to keep."""

    metrics: dict[str, float]
    ratio: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HeadConfig:
    width: int = 128
    hidden: int = 128
    dropout: float = 0.1


class ProbeHead(ABC):
    """A probing head. Subclasses set ``name`` and ``metrics`` and implement the steps below."""

    name: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]]

    def __init__(self, config: HeadConfig):
        self.config = config

    @abstractmethod
    def split(self, items: Sequence[ProbeItem], *, dev_fraction: float, test_fraction: float,
              seed: int) -> Split:
        """Deterministic train/dev/test ids; raise NotComputable if the labels it needs are missing."""

    @abstractmethod
    def fit_labels(self, train: Sequence[ProbeItem]) -> None:
        """Build the output vocabulary from the training items."""

    @abstractmethod
    def build(self) -> nn.Module:
        """The head module: ``(frames [B, F, width], lengths [B]) -> outputs``."""

    @abstractmethod
    def loss(self, outputs: Any, lengths: torch.Tensor, items: Sequence[ProbeItem]) -> torch.Tensor: ...

    @abstractmethod
    def predict(self, outputs: Any, lengths: torch.Tensor) -> list[Any]: ...

    @abstractmethod
    def error(self, items: Sequence[ProbeItem], predictions: Sequence[Any]) -> float:
        """Dev criterion for early stopping (lower is better)."""

    @abstractmethod
    def score(self, item: ProbeItem, prediction: Any) -> Scored: ...

    def describe(self) -> dict[str, Any]:
        return {}


HEADS: dict[str, type[ProbeHead]] = {}


def register_head(cls: type[ProbeHead]) -> type[ProbeHead]:
    """Make a head available to ``--set heads=...`` (usable as a class decorator)."""
    if cls.name in HEADS and HEADS[cls.name] is not cls:
        raise ValueError(f"probe head {cls.name!r} is already registered")
    HEADS[cls.name] = cls
    return cls


def get_head(name: str) -> type[ProbeHead]:
    try:
        return HEADS[name]
    except KeyError:
        raise ValueError(f"unknown probe head {name!r}{suggest(name, HEADS)}; "
                         f"known: {', '.join(sorted(HEADS))}") from None


class _SpeakerModule(nn.Module):
    def __init__(self, width: int, hidden: int, n_out: int, dropout: float):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, n_out))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]).to(x.dtype)
        pooled = (x * mask[..., None]).sum(1) / lengths[:, None].to(x.dtype)
        return self.mlp(pooled)


@register_head
class SpeakerHead(ProbeHead):
    """Closed-set speaker identification: mean pooling over frames + MLP, cross-entropy.
    Each speaker's utterances are split, so every test speaker was seen in training."""

    name = "speaker"
    metrics = ("probe_spk_acc",)

    def split(self, items, *, dev_fraction, test_fraction, seed):
        labelled = {i.id: i.speaker for i in items if i.speaker is not None}
        s = split_within_groups(labelled, dev_fraction=dev_fraction, test_fraction=test_fraction,
                                seed=seed)
        n_speakers = len({labelled[i] for i in s.train})
        if n_speakers < 2:
            raise NotComputable(f"speaker probe needs at least 2 speakers with 2 or more utterances; "
                                f"the data has {n_speakers} ({len(labelled)} labelled utterances)")
        return Split(s.train, s.dev, s.test, s.excluded, how="within speaker", seed=seed)

    def fit_labels(self, train):
        self.labels = sorted({i.speaker for i in train})
        self.index = {s: k for k, s in enumerate(self.labels)}

    def build(self):
        c = self.config
        return _SpeakerModule(c.width, c.hidden, len(self.labels), c.dropout)

    def loss(self, outputs, lengths, items):
        target = torch.tensor([self.index[i.speaker] for i in items], device=outputs.device)
        return F.cross_entropy(outputs, target)

    def predict(self, outputs, lengths):
        return [self.labels[k] for k in outputs.argmax(-1).tolist()]

    def error(self, items, predictions):
        return sum(p != i.speaker for i, p in zip(items, predictions, strict=True)) / len(items)

    def score(self, item, prediction):
        return Scored({"probe_spk_acc": float(prediction == item.speaker)},
                      extra={"speaker_pred": prediction})

    def describe(self):
        return {"n_speakers": len(self.labels)}


def reverse_valid(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each item's first ``lengths[b]`` frames of ``x`` ``[B, T, D]``; padding stays put."""
    t = torch.arange(x.shape[1], device=x.device)[None, :]
    rev = lengths.to(x.device)[:, None] - 1 - t
    rev = torch.where(rev >= 0, rev, t.expand_as(rev))
    return x.gather(1, rev[..., None].expand_as(x))


class BiLSTM(nn.Module):
    """A bidirectional LSTM on padded batches whose outputs on valid frames never see padding:
    the backward direction runs on each item's reversed valid frames. (Packed sequences do the
    same but their CPU backward pass was ~10x slower here on batches of unequal lengths.)"""

    def __init__(self, width: int, hidden: int, layers: int = 2, dropout: float = 0.0):
        super().__init__()
        sizes = [width] + [2 * hidden] * (layers - 1)
        self.fwd = nn.ModuleList(nn.LSTM(n, hidden, batch_first=True) for n in sizes)
        self.bwd = nn.ModuleList(nn.LSTM(n, hidden, batch_first=True) for n in sizes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        for k, (fwd, bwd) in enumerate(zip(self.fwd, self.bwd, strict=True)):
            if k:
                x = self.dropout(x)  # between layers, as nn.LSTM(dropout=...)
            ahead, _ = fwd(x)
            back, _ = bwd(reverse_valid(x, lengths))
            x = torch.cat([ahead, reverse_valid(back, lengths)], dim=-1)
        return x


class _CTCModule(nn.Module):
    def __init__(self, width: int, hidden: int, n_out: int, dropout: float):
        super().__init__()
        self.lstm = BiLSTM(width, hidden, layers=2, dropout=dropout)
        self.out = nn.Linear(2 * hidden, n_out)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.out(self.lstm(x, lengths)).log_softmax(-1)  # [B, F, V]


@register_head
class ContentHead(ProbeHead):
    """Content: a 2-layer BiLSTM with CTC over the characters of the normalised transcript,
    greedy decoding, CER and WER after normalising both sides. Split by utterance."""

    name = "content"
    metrics = ("probe_cer", "probe_wer")

    def split(self, items, *, dev_fraction, test_fraction, seed):
        self.refs: dict[str, str] = {}  # id -> normalised transcript (the CTC target)
        excluded: dict[str, str] = {}
        for i in items:
            ref = normalize(i.text) if i.text else ""
            if ref.strip():
                self.refs[i.id] = ref
            else:
                excluded[i.id] = "no transcript" if not i.text else "transcript empty after normalising"
        try:
            s = split_items(list(self.refs), dev_fraction=dev_fraction, test_fraction=test_fraction,
                            seed=seed)
        except SplitError as exc:
            raise NotComputable(f"content probe: {exc} (utterances with transcripts)") from None
        return Split(s.train, s.dev, s.test, excluded, how="by utterance", seed=seed)

    def fit_labels(self, train):
        chars = sorted({ch for i in train for ch in self.refs[i.id]})
        self.chars = chars  # index 0 is the CTC blank
        self.index = {ch: k + 1 for k, ch in enumerate(chars)}

    def build(self):
        c = self.config
        return _CTCModule(c.width, c.hidden, len(self.chars) + 1, c.dropout)

    def loss(self, outputs, lengths, items):
        # Characters never seen in training (dev only) cannot be emitted: leave them out.
        targets = [torch.tensor([self.index[ch] for ch in self.refs[i.id] if ch in self.index],
                                dtype=torch.long) for i in items]
        target_lengths = torch.tensor([len(t) for t in targets])
        return F.ctc_loss(outputs.transpose(0, 1), torch.cat(targets).to(outputs.device),
                          lengths, target_lengths, blank=0, zero_infinity=True)

    def predict(self, outputs, lengths):
        best = outputs.argmax(-1).cpu()
        out = []
        for b, n in enumerate(lengths.tolist()):
            ids = torch.unique_consecutive(best[b, :n])
            out.append("".join(self.chars[k - 1] for k in ids.tolist() if k != 0))
        return out

    def error(self, items, predictions):
        counts = [wer_cer(i.text, p).extra["ratio"]["cer"] for i, p in zip(items, predictions, strict=True)]
        return sum(e for e, _ in counts) / sum(n for _, n in counts)

    def score(self, item, prediction):
        # The recon task's scorer: EnglishTextNormalizer on both sides, jiwer edit counts.
        s = wer_cer(item.text, prediction)
        ratio = s.extra["ratio"]
        return Scored({"probe_wer": s.values["wer"], "probe_cer": s.values["cer"]},
                      ratio={"probe_wer": ratio["wer"], "probe_cer": ratio["cer"]},
                      extra={"ref": s.extra["ref_norm"], "hyp": s.extra["asr_norm"]})

    def describe(self):
        return {"n_chars": len(self.chars), "chars": "".join(self.chars)}


