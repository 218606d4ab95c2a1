"""The probe trainer: one head on one frontend, early stopping on the dev split, scored on
the test split (:func:`train_head`)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tokbench.data.splits import Split
from tokbench.io.files import finite_or_none
from tokbench.runtime import cpu_threads
from tokbench.tasks.probe.frames import FramePlan, ProbeModel, collate
from tokbench.tasks.probe.heads import ProbeHead, ProbeItem, Scored


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

