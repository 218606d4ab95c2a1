"""Task ``lm``: how hard the tokens are to model, measured by a small causal LM trained on them.

The tokenizer is frozen; its tokens come from the token cache. Utterances are split by speaker
(:func:`tokbench.data.splits.split_groups`: whole speakers per part, so held-out speakers are
unseen in training); the LM (:mod:`tokbench.tasks.lm.model`: a pre-norm transformer over the
flattened, frame-major codes, one softmax per codebook) is trained on the training part with
early stopping on the dev part, and measured on the test part.

Records (``param`` = the training seed; per codebook ``"<seed>/cb<q>"`` when there are several):

- per test utterance: ``lm_bits_per_token`` and ``lm_bits_per_second`` (edit-count style
  ratios in ``extra.ratio``, so the corpus figure is total bits / total tokens or seconds);
- per seed, ``utterance_id`` None: ``lm_perplexity`` (2 ** corpus bits per token) and
  ``lm_unigram_gap`` (unigram entropy of the test tokens minus the LM's bits per token), with
  the learning curve, model and training settings, split sizes and throughput in ``extra``.

Under ``torchrun`` every rank encodes its shard into the token cache, then the seeds are dealt
out over the ranks (seed ``k`` on rank ``k mod world``), as the probe does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tokbench.data.splits import SplitError, cap_per_group, split_groups
from tokbench.metrics.tokens import entropy_bits, unigram_counts
from tokbench.options import options_dict
from tokbench.records import make_record
from tokbench.run.task import Artefact, Output, RecordGroup, RunContext, Task
from tokbench.run.token_cache import encode_dataset
from tokbench.runtime import cpu_threads
from tokbench.tasks.lm.model import LMConfig, TrainConfig, evaluate, train_lm
from tokbench.types import TokenizerMeta

SPLITS_FILE = "splits.json"
LM_METRICS = ("lm_bits_per_token", "lm_bits_per_second")
CORPUS_METRICS = ("lm_perplexity", "lm_unigram_gap")
FACTORISATION = ("flattened frame-major: each code predicted from all earlier codes (lower "
                 "codebooks of the same frame included), softmax over its own codebook")
# Below this much training audio the figures say little about the tokenizer: the run says so.
MEANINGFUL_TRAIN_SECONDS = 3600.0


@dataclass(frozen=True)
class LMOptions:
    layers: int = 4
    width: int = 128
    heads: int = 4
    ff_mult: int = 4
    dropout: float = 0.1
    context: int = 256  # tokens per window (whole frames)
    epochs: int = 6  # at most
    steps_per_epoch: int = 50
    patience: int = 2  # epochs without dev improvement before stopping
    lr: float = 1e-3
    weight_decay: float = 0.01
    train_batch: int = 8  # windows per step
    eval_batch: int = 32
    # Windows scored on dev (each epoch) and on test: a seeded uniform sample when there are
    # more (16 kHz waveform tokens make 62.5 windows of 256 per second of audio); 0 = all.
    max_eval_windows: int = 256
    threads: int = 1  # CPU threads while training; 0 = torch's setting
    seeds: int = 1  # training seeds seed, seed+1, ...; each kept with param = seed
    seed: int = 0
    split_seed: int = 0
    dev_fraction: float = 0.1  # of the speakers
    test_fraction: float = 0.1
    max_per_speaker: int = 0  # utterances per speaker kept (seeded choice); 0 = all

    def __post_init__(self) -> None:
        for name in ("layers", "width", "heads", "ff_mult", "context", "epochs", "steps_per_epoch",
                     "patience", "train_batch", "eval_batch", "seeds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("threads", "max_eval_windows"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be a multiple of heads ({self.heads})")
        if not (0 <= self.dev_fraction < 1 and 0 < self.test_fraction < 1
                and self.dev_fraction + self.test_fraction < 1):
            raise ValueError("need 0 <= dev_fraction, 0 < test_fraction and dev + test < 1; got "
                             f"{self.dev_fraction}, {self.test_fraction}")
        if not 0 <= self.dropout < 1 or self.lr <= 0 or self.weight_decay < 0:
            raise ValueError("need 0 <= dropout < 1, lr > 0 and weight_decay >= 0")

    def model_config(self) -> LMConfig:
        return LMConfig(layers=self.layers, width=self.width, heads=self.heads,
                        ff_mult=self.ff_mult, dropout=self.dropout, context=self.context)


def codebook_param(seed: int, codebook: int) -> str:
    return f"{seed}/cb{codebook}"


class TokenLM(Task):
    name = "lm"
    version = "1"
    Options = LMOptions
    runtime_options = frozenset({"seeds", "threads", "eval_batch"})

    def protocol(self) -> dict[str, Any]:
        settings = options_dict(self.options)
        for key in ("seeds", "seed", "threads", "eval_batch"):
            settings.pop(key)
        return {"lm": {**settings, "factorisation": FACTORISATION, "split": "by speaker",
                       "split_order": "sha256(seed:speaker)", "optimiser": "AdamW"}}

    def seeds(self) -> list[int]:
        return [self.options.seed + k for k in range(self.options.seeds)]

    def _selected(self, ctx: RunContext) -> list:
        o = self.options
        keep = set(cap_per_group({u.id: u.speaker for u in ctx.dataset}, o.max_per_speaker,
                                 o.split_seed))
        return [u for u in ctx.dataset if u.id in keep]

    def prepare(self, ctx: RunContext) -> None:
        """Every rank encodes its own shard into the shared token cache first."""
        mine = {u.id for u in ctx.utterances}
        encode_dataset(ctx.model, ctx.dataset, [u for u in self._selected(ctx) if u.id in mine],
                       ctx.cache, batch_size=ctx.batch_size, device=ctx.device,
                       progress=ctx.progress)

    def run(self, ctx: RunContext) -> Iterator[Output]:
        o, meta = self.options, ctx.meta
        selected = self._selected(ctx)
        encoded = encode_dataset(ctx.model, ctx.dataset, selected, ctx.cache,
                                 batch_size=ctx.batch_size, device=ctx.device, progress=ctx.progress)
        excluded = dict(encoded.errors)
        codes: dict[str, torch.Tensor] = {}
        for utt in selected:
            c = encoded.codes.get(utt.id)
            if c is None:
                continue
            _check_codes(meta, utt.id, c)
            if c.shape[1] == 0:
                excluded[utt.id] = "no frames"
            else:
                codes[utt.id] = c
        speakers = {u.id: u.speaker for u in selected if u.id in codes}
        why_not = None
        try:
            split = split_groups(speakers, dev_fraction=o.dev_fraction,
                                 test_fraction=o.test_fraction, seed=o.split_seed)
        except SplitError as exc:
            split, why_not = None, f"cannot split by speaker: {exc}"
        yield Artefact(SPLITS_FILE, {
            "dataset": ctx.dataset.name, "dataset_revision": ctx.dataset.revision,
            "split": split.to_dict() if split else None, "why_not": why_not,
            "excluded": excluded})
        durations = encoded.durations
        train_seconds = sum(durations[i] for i in split.train) if split else 0.0
        warning = None
        if train_seconds < MEANINGFUL_TRAIN_SECONDS:
            warning = (f"the LM was trained on {train_seconds / 60:.1f} min of audio: far too "
                       "little for these figures to mean anything about the tokenizer (train on "
                       "at least an hour, e.g. LibriSpeech train-clean-100)")
        for seed in self.seeds()[ctx.rank::ctx.world_size]:
            if ctx.is_done(None, seed):
                ctx.log(f"lm seed {seed}: already recorded, skipped")
                continue
            if warning:
                ctx.log(f"lm: WARNING: {warning}")
            if split is None:
                yield from _not_computable(meta, seed, why_not or "no split")
                continue
            # One seed's records stand or fall together: a kill while writing them leaves none,
            # so a rerun never mixes two trainings of one seed.
            yield RecordGroup(list(self._one_seed(ctx, codes, durations, split, seed, warning)))

    def _one_seed(self, ctx: RunContext, codes: dict[str, torch.Tensor],
                  durations: dict[str, float], split, seed: int,
                  warning: str | None) -> Iterator[dict]:
        o, meta = self.options, ctx.meta
        config = o.model_config()
        tc = TrainConfig(epochs=o.epochs, steps_per_epoch=o.steps_per_epoch, patience=o.patience,
                         lr=o.lr, weight_decay=o.weight_decay, batch=o.train_batch,
                         eval_batch=o.eval_batch, max_eval_windows=o.max_eval_windows,
                         device=ctx.device, threads=o.threads)
        train = {i: codes[i] for i in split.train}
        dev = {i: codes[i] for i in split.dev}
        test = {i: codes[i] for i in split.test}
        result = train_lm(meta.codebook_sizes, train, dev, config, tc, seed, log=ctx.log)
        with cpu_threads(o.threads, ctx.device):
            ev = evaluate(result.model, test, tc.eval_batch, ctx.device, o.max_eval_windows,
                          o.split_seed)
        many = meta.n_codebooks > 1
        for uid in sorted(test):
            bits, tokens = ev.bits[uid], ev.tokens[uid]
            # seconds of audio the scored windows cover (all of it unless windows were sampled)
            seconds = durations[uid] * ev.scored_fraction(uid)
            scored = {"windows_scored": ev.windows[uid][0], "windows": ev.windows[uid][1]}
            if not sum(tokens):
                why = (f"none of its {ev.windows[uid][1]} windows was in the sample of "
                       f"max_eval_windows={o.max_eval_windows}")
                yield make_record(uid, dict.fromkeys(LM_METRICS), dict.fromkeys(LM_METRICS, why),
                                  param=seed, extra=scored)
                continue
            yield _utterance_record(uid, seed, sum(bits), sum(tokens), seconds, scored)
            if many:
                for q in range(meta.n_codebooks):
                    yield _utterance_record(uid, codebook_param(seed, q), bits[q], tokens[q],
                                            seconds, scored)
        # Unigram entropy of the very tokens the LM is measured on (an oracle unigram model).
        unigram = [entropy_bits(unigram_counts([c[q].numpy() for c in test.values()], size, q))
                   for q, size in enumerate(meta.codebook_sizes)]  # all test tokens, not a sample
        per_q_bits = np.sum([ev.bits[u] for u in test], axis=0)
        per_q_tokens = np.sum([ev.tokens[u] for u in test], axis=0)
        bpt = ev.bits_per_token()
        info = {
            "record": "lm seed", "seed": seed, "model": config.to_dict(),
            "architecture": "pre-norm transformer decoder, learned positions, GELU, BOS per window",
            "factorisation": FACTORISATION,
            "training": {k: v for k, v in tc.__dict__.items() if k != "device"},
            "split": split.describe(), "train_seconds_audio": round(
                sum(durations[i] for i in split.train), 3),
            "test_tokens": ev.total_tokens(), "test_bits": ev.total_bits(),
            "test_seconds_audio": round(sum(durations[u] for u in test), 3),
            "test_seconds_scored": round(sum(durations[u] * ev.scored_fraction(u) for u in test), 3),
            "test_windows": [sum(ev.windows[u][0] for u in test), sum(ev.windows[u][1] for u in test)],
            "unigram_entropy": unigram, "bits_per_token": bpt, **result.info,
        }
        if warning:
            info["warning"] = warning
        yield make_record(None, {"lm_perplexity": 2.0**bpt,
                                 "lm_unigram_gap": float(np.mean(unigram)) - bpt},
                          param=seed, extra=info)
        if many:
            for q in range(meta.n_codebooks):
                q_bpt = float(per_q_bits[q] / per_q_tokens[q])
                yield make_record(None, {"lm_perplexity": 2.0**q_bpt,
                                         "lm_unigram_gap": unigram[q] - q_bpt},
                                  param=codebook_param(seed, q),
                                  extra={"seed": seed, "codebook": q, "bits_per_token": q_bpt,
                                         "unigram_entropy": unigram[q]})
        ctx.log(f"lm seed {seed}: {bpt:.3f} bit/token, "
                f"{ev.total_bits() / info['test_seconds_scored']:.1f} bit/s on "
                f"{len(test)} held-out utterances (unigram {np.mean(unigram):.3f} bit/token)"
                + (" -- MEANINGLESS: " + warning if warning else ""))


def _utterance_record(uid: str, param: Any, bits: float, tokens: int, seconds: float,
                      scored: dict[str, int]) -> dict:
    reasons = {} if seconds > 0 else {"lm_bits_per_second": "the utterance has no duration"}
    return make_record(uid, {"lm_bits_per_token": bits / tokens,
                             "lm_bits_per_second": bits / seconds if seconds > 0 else None},
                       reasons=reasons, param=param,
                       extra={"ratio": {"lm_bits_per_token": [bits, tokens],
                                        **({"lm_bits_per_second": [bits, seconds]}
                                           if seconds > 0 else {})},
                              "seconds_scored": seconds, **scored})


def _not_computable(meta: TokenizerMeta, seed: int, why: str) -> Iterator[dict]:
    yield make_record(None, dict.fromkeys(CORPUS_METRICS), dict.fromkeys(CORPUS_METRICS, why),
                      param=seed, extra={"record": "lm seed", "seed": seed})


def _check_codes(meta: TokenizerMeta, uid: str, codes: torch.Tensor) -> None:
    """Codes outside the declared codebooks are an adapter bug: say so, do not train on them."""
    if codes.shape[0] != meta.n_codebooks:
        raise ValueError(f"{meta.name} returned {codes.shape[0]} codebooks for {uid}; its meta "
                         f"declares {meta.n_codebooks}")
    for q, size in enumerate(meta.codebook_sizes):
        if codes.shape[1] and (int(codes[q].min()) < 0 or int(codes[q].max()) >= size):
            raise ValueError(f"{meta.name}: codebook {q} of {uid} holds codes outside [0, {size}); "
                             "fix the adapter's codebook_sizes")
