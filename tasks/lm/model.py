"""A small causal transformer LM over discrete tokens, its windows, trainer and evaluation.

Everything here works on plain ``[Q, F]`` code tensors, so tests can train on synthetic tokens
with known answers (a deterministic sequence: about 0 bits; uniform random codes: log2 K bits).

**Factorisation of multi-codebook tokens: flattened, frame-major** (codebook 0, 1, ..., Q-1 of
frame 0, then of frame 1, ...), each code offset into its own codebook's range of one shared
vocabulary. The model predicts each code from every code before it, including the lower
codebooks of the same frame, and each prediction is a softmax over that codebook's codes only
(one output layer per codebook).
By the chain rule, the summed log-loss is then an exact code length of the whole token stream,
so bits per second compare across frame rates and codebook counts, and the bits of each
codebook are its conditional cross-entropy given everything before it. A parallel or summed
factorisation (one prediction of all codebooks of a frame from past frames only) drops the
dependence between the codebooks of a frame and so overstates the cost of residual codebooks;
it is cheaper for many codebooks, which this small study does not need.

Sequences are cut into non-overlapping windows of whole frames (``context`` tokens at most);
each window starts with a BOS token, so the first code of a window is predicted without
context (a small, stated overestimate on long utterances, the same for every tokenizer at the
same context in frames).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tokbench.runtime import cpu_threads

LN2 = math.log(2.0)


@dataclass(frozen=True)
class LMConfig:
    layers: int = 4
    width: int = 128
    heads: int = 4
    ff_mult: int = 4
    dropout: float = 0.1
    context: int = 256  # tokens per window (whole frames: rounded down to a multiple of Q)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 6
    steps_per_epoch: int = 50
    patience: int = 2
    lr: float = 1e-3
    weight_decay: float = 0.01
    batch: int = 8
    eval_batch: int = 32
    max_eval_windows: int = 256  # dev windows scored per epoch (seeded sample); 0 = all
    device: str = "cpu"
    threads: int = 1  # CPU threads while training (small models: 1 is fastest); 0 = torch's


class CausalLM(nn.Module):
    """Pre-norm transformer decoder (self-attention only) with learned positions."""

    def __init__(self, codebook_sizes: Sequence[int], config: LMConfig):
        super().__init__()
        sizes = [int(s) for s in codebook_sizes]
        self.codebook_sizes = sizes
        self.n_codebooks = len(sizes)
        self.frames_per_window = max(1, config.context // self.n_codebooks)
        self.window = self.frames_per_window * self.n_codebooks
        offsets = [0]
        for s in sizes[:-1]:
            offsets.append(offsets[-1] + s)
        self.offsets = offsets  # where each codebook's codes start in the shared vocabulary
        total = sum(sizes)
        self.bos = total
        self.embed = nn.Embedding(total + 1, config.width)
        self.pos = nn.Embedding(self.window, config.width)
        layer = nn.TransformerEncoderLayer(config.width, config.heads, config.ff_mult * config.width,
                                           config.dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.width)
        # One output layer per codebook: each position's softmax runs over its own codebook only
        # (and a 32 x 2048 vocabulary never needs logits over all 65,536 codes at once).
        self.heads = nn.ModuleList(nn.Linear(config.width, s) for s in sizes)

    def flatten(self, codes: torch.Tensor) -> torch.Tensor:
        """``[Q, F]`` codes -> ``[Q*F]`` shared-vocabulary ids, frame-major."""
        shift = torch.tensor(self.offsets, device=codes.device)[:, None]
        return (codes.to(torch.long) + shift).T.reshape(-1)

    def windows(self, codes: torch.Tensor) -> list[torch.Tensor]:
        flat = self.flatten(codes)
        return [flat[k:k + self.window] for k in range(0, len(flat), self.window)]

    def nll_bits(self, targets: torch.Tensor) -> torch.Tensor:
        """Bits of each target token ``[B, T]`` (shared-vocabulary ids; padding = -1 gives 0)."""
        b, t = targets.shape
        valid = targets >= 0
        inputs = torch.cat([torch.full((b, 1), self.bos, device=targets.device),
                            targets[:, :-1].clamp(min=0)], dim=1)
        positions = torch.arange(t, device=targets.device)
        causal = torch.triu(torch.full((t, t), float("-inf"), device=targets.device), diagonal=1)
        h = self.norm(self.blocks(self.embed(inputs) + self.pos(positions)[None], mask=causal,
                                  is_causal=True))
        nll = torch.zeros(b, t, device=targets.device)
        for q, head in enumerate(self.heads):  # windows start on frame boundaries: t mod Q = q
            local = (targets[:, q::self.n_codebooks] - self.offsets[q]).clamp(min=0)
            logits = head(h[:, q::self.n_codebooks])
            nll[:, q::self.n_codebooks] = F.cross_entropy(logits.transpose(1, 2), local,
                                                          reduction="none")
        return torch.where(valid, nll, torch.zeros_like(nll)) / LN2


def _pad(windows: Sequence[torch.Tensor]) -> torch.Tensor:
    return nn.utils.rnn.pad_sequence(list(windows), batch_first=True, padding_value=-1)



@dataclass
class Evaluation:
    """Bits and scored token counts per item and codebook (``[Q]`` each), and how many of each
    item's tokens were scored (all of them unless windows were sampled)."""

    bits: dict[str, list[float]] = field(default_factory=dict)
    tokens: dict[str, list[int]] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)  # all tokens of the item (Q x F)
    windows: dict[str, list[int]] = field(default_factory=dict)  # [scored, all]

    def total_bits(self) -> float:
        return float(sum(sum(b) for b in self.bits.values()))

    def total_tokens(self) -> int:
        return int(sum(sum(t) for t in self.tokens.values()))

    def bits_per_token(self) -> float:
        n = self.total_tokens()
        return self.total_bits() / n if n else math.nan

    def scored_fraction(self, uid: str) -> float:
        return sum(self.tokens[uid]) / self.total[uid] if self.total[uid] else 0.0


def evaluate(model: CausalLM, items: dict[str, torch.Tensor], batch: int, device: str,
             max_windows: int = 0, seed: int = 0) -> Evaluation:
    """Bits per codebook of every item (``id -> [Q, F]`` codes), in eval mode. With
    ``max_windows`` > 0 and more windows than that, a seeded uniform sample of ``max_windows``
    windows is scored (the same windows for the same items and seed)."""
    model.eval()
    q_count = model.n_codebooks
    out = Evaluation()
    refs: list[tuple[str, torch.Tensor]] = []
    for uid in sorted(items):
        codes = items[uid]
        out.bits[uid] = [0.0] * q_count
        out.tokens[uid] = [0] * q_count
        out.total[uid] = int(codes.numel())
        mine = model.windows(codes)
        out.windows[uid] = [0, len(mine)]
        refs += [(uid, w) for w in mine]
    if 0 < max_windows < len(refs):
        pick = torch.randperm(len(refs), generator=torch.Generator().manual_seed(seed))
        refs = [refs[k] for k in sorted(pick[:max_windows].tolist())]
    with torch.no_grad():
        for start in range(0, len(refs), batch):
            chunk = refs[start:start + batch]
            targets = _pad([w for _, w in chunk]).to(device)
            bits = model.nll_bits(targets).double().cpu()
            valid = (targets >= 0).cpu().double()
            q = torch.arange(targets.shape[1]) % q_count
            for k, (uid, _) in enumerate(chunk):
                per_q = torch.zeros(q_count, dtype=torch.float64).index_add_(0, q, bits[k])
                n_q = torch.zeros(q_count, dtype=torch.float64).index_add_(0, q, valid[k])
                out.windows[uid][0] += 1
                for j in range(q_count):
                    out.bits[uid][j] += float(per_q[j])
                    out.tokens[uid][j] += int(n_q[j])
    return out


@dataclass
class TrainResult:
    model: CausalLM
    info: dict[str, Any]


def train_lm(
    codebook_sizes: Sequence[int],
    train: dict[str, torch.Tensor],
    dev: dict[str, torch.Tensor],
    config: LMConfig,
    train_config: TrainConfig,
    seed: int,
    log: Callable[[str], None] = lambda _msg: None,
) -> TrainResult:
    """Train on the windows of ``train`` (random batches, ``steps_per_epoch`` per epoch), early
    stopping on the bits per token of ``dev`` (best epoch's weights kept)."""
    with cpu_threads(train_config.threads, train_config.device):
        return _train(codebook_sizes, train, dev, config, train_config, seed, log)


def _train(codebook_sizes, train, dev, config, tc, seed, log) -> TrainResult:
    torch.manual_seed(seed)
    model = CausalLM(codebook_sizes, config).to(tc.device)
    windows = [w for codes in train.values() for w in model.windows(codes)]
    if not windows:
        raise ValueError("no training tokens")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    total_steps = tc.epochs * tc.steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: min(1.0, (step + 1) / max(1, tc.steps_per_epoch)))  # 1-epoch warm-up
    curve: list[dict[str, Any]] = []
    best, best_state, best_epoch, bad = math.inf, None, 0, 0
    seconds = 0.0
    tokens_seen = 0
    stopped_early = False
    for epoch in range(1, tc.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        loss_sum = 0.0
        for _ in range(tc.steps_per_epoch):
            pick = torch.randint(len(windows), (tc.batch,), generator=gen).tolist()
            targets = _pad([windows[k] for k in pick]).to(tc.device)
            bits = model.nll_bits(targets)
            n = int((targets >= 0).sum())
            loss = bits.sum() / n
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            loss_sum += float(loss.detach())
            tokens_seen += n
        if tc.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds += time.perf_counter() - t0
        point: dict[str, Any] = {"epoch": epoch, "train_bits_per_token": loss_sum / tc.steps_per_epoch}
        if dev:
            # the same dev windows for every epoch and training seed
            dev_bpt = evaluate(model, dev, tc.eval_batch, tc.device, tc.max_eval_windows,
                               0).bits_per_token()
            point["dev_bits_per_token"] = dev_bpt
            if dev_bpt < best:
                best, best_epoch, bad = dev_bpt, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad += 1
        curve.append(point)
        log(f"lm epoch {epoch}: train {point['train_bits_per_token']:.3f} bit/token"
            + (f", dev {point['dev_bits_per_token']:.3f}" if dev else ""))
        if dev and bad >= tc.patience:
            stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        best_epoch = len(curve)
    info = {
        "curve": curve, "best_epoch": best_epoch, "epochs_run": len(curve),
        "stopped_early": stopped_early, "planned_steps": total_steps,
        "early_stopping": "dev bits per token" if dev else "none (no dev items): last epoch",
        "train_seconds": round(seconds, 3),
        "train_tokens_per_s": round(tokens_seen / seconds) if seconds > 0 else None,
        "n_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "window_tokens": model.window, "window_frames": model.frames_per_window,
        "n_train_windows": len(windows),
        # how much of the training data the steps saw: sized for a quick run by default
        "train_tokens_seen": tokens_seen,
        "train_tokens_available": int(sum(len(w) for w in windows)),
    }
    return TrainResult(model, info)
