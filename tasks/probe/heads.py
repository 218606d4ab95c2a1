"""Probe machinery: frame-rate plans, token frontends, heads and their trainer.

``tasks/probe.py`` wires these to the runner; everything here works on plain tensors, so tests
can probe synthetic tokens with known answers without any audio.

- A :class:`FramePlan` brings a tokenizer's native frame rate into [50, 100] Hz: slow tokenizers
  (Mimi, 12.5 Hz) repeat frames, fast ones (mu-law, 16 kHz) are mean-pooled over windows.
- A frontend turns codes ``[Q, F]`` into vectors: a learned table per codebook (mean-pooled into
  the output frames with ``EmbeddingBag``), or the adapter's own ``embed()`` (frozen), combined
  by a learned softmax-weighted sum over codebooks (as DASB does) and projected to ``width``.
- A head (:class:`ProbeHead`) says which items it trains and tests on, builds its small module,
  and scores test items. New heads (emotion, ...) subclass it and call :func:`register_head`;
  adapters never change.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from tokbench.data.splits import Split, SplitError, split_items, split_within_groups
from tokbench.io.files import finite_or_none
from tokbench.metrics.asr import normalize, wer_cer
from tokbench.metrics.base import NotComputable
from tokbench.registry import suggest
from tokbench.runtime import cpu_threads
from tokbench.types import Tokens

MIN_RATE = 50.0
MAX_RATE = 100.0
_TOL = 1e-6


# ------------------------------------------------------------------------------- frame rate


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


# -------------------------------------------------------------------------------------- heads


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


# ------------------------------------------------------------------------------------ trainer


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    patience: int = 5
    lr: float = 1e-3
    batch: int = 16
    device: str = "cpu"
    # CPU threads while training. These models are small: one thread was 2-4x faster than two
    # on the 2-core build machine (thread hand-offs cost more than the matrix products). 0 =
    # leave torch's setting alone.
    threads: int = 1



@dataclass
class HeadResult:
    scores: dict[str, Scored]  # test item id -> result
    info: dict[str, Any]  # learning curve, sizes, timings: JSON-ready


def _batches(items: Sequence[ProbeItem], size: int) -> list[list[ProbeItem]]:
    return [list(items[k:k + size]) for k in range(0, len(items), size)]


def _shuffled_batches(items: Sequence[ProbeItem], size: int, gen: torch.Generator,
                      pool: int = 8) -> list[list[ProbeItem]]:
    """Random batches of similar lengths: shuffle, sort within pools of ``pool`` batches, cut,
    shuffle the batches (less padding, still a random order)."""
    perm = torch.randperm(len(items), generator=gen).tolist()
    batches: list[list[ProbeItem]] = []
    for start in range(0, len(perm), size * pool):
        chunk = sorted(perm[start:start + size * pool], key=lambda k: items[k].codes.shape[1])
        batches += [[items[k] for k in chunk[b:b + size]] for b in range(0, len(chunk), size)]
    order = torch.randperm(len(batches), generator=gen).tolist()
    return [batches[k] for k in order]


def _infer(model: ProbeModel, head: ProbeHead, items: Sequence[ProbeItem], plan: FramePlan,
           config: TrainConfig) -> tuple[list[Any], float]:
    """Predictions (in ``items`` order) and the mean loss, in eval mode."""
    model.eval()
    order = sorted(range(len(items)), key=lambda k: -items[k].codes.shape[1])  # less padding
    preds: list[Any] = [None] * len(items)
    loss_sum = 0.0
    with torch.no_grad():
        for chunk in _batches(order, config.batch):  # type: ignore[arg-type]  # indices
            batch_items = [items[k] for k in chunk]  # type: ignore[call-overload]
            batch = collate([i.codes for i in batch_items], plan).to(config.device)
            out = model(batch)
            loss_sum += float(head.loss(out, batch.lengths, batch_items)) * len(chunk)
            for k, p in zip(chunk, head.predict(out, batch.lengths), strict=True):
                preds[k] = p  # type: ignore[call-overload]
    return preds, loss_sum / max(1, len(items))


def train_head(
    head: ProbeHead,
    make_frontend: Callable[[], nn.Module],
    items: dict[str, ProbeItem],
    split: Split,
    plan: FramePlan,
    config: TrainConfig,
    seed: int,
    log: Callable[[str], None] = lambda _msg: None,
) -> HeadResult:
    """Train ``head`` on ``split.train`` (early stopping on ``split.dev`` by the head's error,
    ties broken by dev loss; the best epoch's weights are kept) and score ``split.test``."""
    with cpu_threads(config.threads, config.device):
        return _train_head(head, make_frontend, items, split, plan, config, seed, log)


def _train_head(head, make_frontend, items, split, plan, config, seed, log) -> HeadResult:
    train = [items[i] for i in split.train]
    dev = [items[i] for i in split.dev]
    test = [items[i] for i in split.test]
    head.fit_labels(train)
    torch.manual_seed(seed)
    model = ProbeModel(make_frontend(), head.build()).to(config.device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(seed)
    curve: list[dict[str, Any]] = []
    best_key, best_state, best_epoch, bad = (math.inf, math.inf), None, 0, 0
    train_seconds = 0.0
    stopped_early = False
    for epoch in range(1, config.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        loss_sum = 0.0
        for chunk in _shuffled_batches(train, config.batch, gen):
            batch = collate([i.codes for i in chunk], plan).to(config.device)
            loss = head.loss(model(batch), batch.lengths, chunk)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            loss_sum += float(loss.detach()) * len(chunk)
        if config.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        train_seconds += seconds
        point: dict[str, Any] = {"epoch": epoch, "train_loss": finite_or_none(loss_sum / len(train)),
                                 "seconds": round(seconds, 4)}
        if dev:
            preds, dev_loss = _infer(model, head, dev, plan, config)
            dev_error = head.error(dev, preds)
            point.update(dev_loss=finite_or_none(dev_loss), dev_error=finite_or_none(dev_error))
            key = (dev_error, dev_loss)
            if key < best_key:
                best_key, best_epoch, bad = key, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad += 1
        curve.append(point)
        if dev and bad >= config.patience:
            stopped_early = True
            break
    epochs_run = len(curve)
    if best_state is not None:
        model.load_state_dict(best_state)
    else:  # no dev set: the last epoch's weights
        best_epoch = epochs_run
    preds, test_loss = _infer(model, head, test, plan, config)
    scores = {i.id: head.score(i, p) for i, p in zip(test, preds, strict=True)}
    frontend = model.frontend
    info = {
        **head.describe(),
        "split": split.describe(),
        "curve": curve,
        "best_epoch": best_epoch,
        "epochs_run": epochs_run,
        "stopped_early": stopped_early,
        "early_stopping": "dev error, then dev loss" if dev else "none (no dev items): last epoch",
        "test_loss": finite_or_none(test_loss),
        "train_seconds": round(train_seconds, 3),
        "train_utt_per_s": round(len(train) * epochs_run / train_seconds, 2) if train_seconds > 0 else None,
        "n_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "codebook_weights": frontend.codebook_weights() if hasattr(frontend, "codebook_weights") else None,  # type: ignore[operator]
    }
    log(f"probe {head.name} seed {seed}: best epoch {best_epoch}/{epochs_run}, "
        f"{info['train_utt_per_s']} utt/s")
    return HeadResult(scores, info)
