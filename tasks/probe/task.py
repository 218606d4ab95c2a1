"""Task ``probe``: what the tokens themselves carry, measured the way DASB does.

The tokenizer is frozen; its tokens come from the token cache (encoded once, shared with the
other tasks). Lightweight heads are trained on them (``tasks/probe/``: ``frames.py``,
``heads.py``, ``training.py``):

- ``speaker``: mean pooling + MLP, closed-set speaker ID (each speaker's utterances are split):
  ``probe_spk_acc``;
- ``content``: 2-layer BiLSTM + CTC over characters, greedy decoding: ``probe_cer``, ``probe_wer``
  (Whisper's EnglishTextNormalizer on both sides, as recon).

Every tokenizer is brought to a probe frame rate in [50, 100] Hz (``target_rate``; 0 = auto,
see :func:`plan_frame_rate`: 16 kHz mu-law is pooled to 50 Hz, 12.5 Hz
Mimi repeated to 50 Hz), recorded with the results.

Records (``param`` = the training seed):

- one record per test utterance and seed, holding the metrics of every head whose test split
  holds the utterance: ``probe_spk_acc`` is 1 or 0 (correct or not), so its mean is the
  accuracy and summaries get a bootstrap CI over utterances; ``probe_cer``/``probe_wer`` keep
  their edit counts in ``extra.ratio`` so the corpus figure is total edits / total length;
- one record per seed with ``utterance_id`` None: learning curves, best epoch, split sizes and
  digests, frame-rate plan, training throughput; a head that cannot run (e.g. no speaker labels)
  shows here as its metrics null with the reason;
- with ``seeds`` > 1, ``corpus.jsonl`` also holds per-utterance averages over the seeds with
  ``param`` = "mean" (edit counts summed), so the seed-averaged figure has a CI too.

The full split lists go to ``splits.json`` in the run folder. A seed whose per-seed record exists
is complete and is skipped when the same configuration runs again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch

from tokbench.data.splits import Split, cap_per_group
from tokbench.metrics.base import NotComputable
from tokbench.options import options_dict
from tokbench.records import make_record
from tokbench.run.task import Artefact, Output, RecordGroup, RunContext, Task
from tokbench.run.token_cache import encode_dataset
from tokbench.tasks.probe.frames import (
    MAX_RATE,
    MIN_RATE,
    AdapterEmbedding,
    LearnedEmbedding,
    plan_frame_rate,
)
from tokbench.tasks.probe.heads import HeadConfig, ProbeHead, ProbeItem, get_head
from tokbench.tasks.probe.training import TrainConfig, train_head
from tokbench.types import TokenizerMeta, Tokens

SPLITS_FILE = "splits.json"


@dataclass(frozen=True)
class ProbeOptions:
    heads: tuple[str, ...] = ("speaker", "content")
    target_rate: float = 0.0  # probe frame rate in Hz, in [50, 100]; 0 = auto (whole factors)
    embed: Literal["learned", "adapter"] = "learned"  # adapter: the tokenizer's own embed()
    width: int = 128  # embedding / projection width
    hidden: int = 128  # speaker MLP hidden size; BiLSTM hidden size per direction
    dropout: float = 0.1
    epochs: int = 30  # at most
    patience: int = 5  # epochs without dev improvement before stopping
    lr: float = 1e-3
    train_batch: int = 16
    threads: int = 1  # CPU threads while training (small models train fastest on one); 0 = torch's
    seeds: int = 1  # training seeds seed, seed+1, ...; each kept with param = seed
    seed: int = 0
    split_seed: int = 0
    dev_fraction: float = 0.1
    test_fraction: float = 0.1
    # Utterances per speaker kept (seeded choice; 0 = all): 25 turns LibriSpeech
    # train-clean-100 (251 speakers, 28,539 utterances) into ~6,300 utterances, ~22 h.
    max_per_speaker: int = 25

    def __post_init__(self) -> None:
        if not self.heads:
            raise ValueError("heads must name at least one probe head")
        for name in self.heads:
            get_head(name)
        if len(set(self.heads)) != len(self.heads):
            raise ValueError(f"heads lists a head twice: {list(self.heads)}")
        if self.target_rate and not MIN_RATE <= self.target_rate <= MAX_RATE:
            raise ValueError(f"target_rate must be 0 (auto) or lie in [{MIN_RATE:g}, {MAX_RATE:g}] Hz, "
                             f"got {self.target_rate}")
        if self.threads < 0:
            raise ValueError(f"threads must be 0 (torch's default) or more, got {self.threads}")
        for name in ("width", "hidden", "epochs", "patience", "train_batch", "seeds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not (0 <= self.dev_fraction < 1 and 0 < self.test_fraction < 1
                and self.dev_fraction + self.test_fraction < 1):
            raise ValueError("need 0 <= dev_fraction, 0 < test_fraction and dev + test < 1; got "
                             f"{self.dev_fraction}, {self.test_fraction}")
        if not 0 <= self.dropout < 1 or self.lr <= 0:
            raise ValueError(f"need 0 <= dropout < 1 and lr > 0; got {self.dropout}, {self.lr}")


def probe_items(meta: TokenizerMeta, encoded: dict[str, torch.Tensor], utterances: list) -> tuple[
        dict[str, ProbeItem], dict[str, str]]:
    """ProbeItems of the encoded utterances, and why any utterance was left out. Codes outside
    the declared codebooks are an adapter bug and raise."""
    items: dict[str, ProbeItem] = {}
    excluded: dict[str, str] = {}
    for utt in utterances:
        codes = encoded.get(utt.id)
        if codes is None:
            continue
        if codes.shape[0] != meta.n_codebooks:
            raise ValueError(f"{meta.name} returned {codes.shape[0]} codebooks for {utt.id}; its meta "
                             f"declares {meta.n_codebooks}")
        if codes.shape[1] == 0:
            excluded[utt.id] = "no frames"
            continue
        for q, size in enumerate(meta.codebook_sizes):
            lo, hi = int(codes[q].min()), int(codes[q].max())
            if lo < 0 or hi >= size:
                raise ValueError(f"{meta.name}: codebook {q} of {utt.id} holds codes in [{lo}, {hi}] "
                                 f"but its declared size is {size}; fix the adapter's codebook_sizes")
        items[utt.id] = ProbeItem(utt.id, codes, utt.speaker, utt.text)
    return items, excluded


class Probe(Task):
    name = "probe"
    version = "1"
    Options = ProbeOptions
    runtime_options = frozenset({"seeds", "threads"})  # more seeds resume; threads change no figure

    def protocol(self) -> dict[str, Any]:
        settings = options_dict(self.options)
        # Neither how many seeds ran nor the thread count changes what one seed's figure means.
        for key in ("seeds", "seed", "threads"):
            settings.pop(key)
        return {"probe": {**settings, "normaliser": "whisper EnglishTextNormalizer",
                          "ctc_decoding": "greedy", "split_order": "sha256(seed:id)"}}

    def unsupported_reason(self, meta: TokenizerMeta) -> str | None:
        if self.options.embed == "adapter" and not meta.can("embed"):
            return (f"{meta.name} has no embed(); run the probe with its learned embeddings "
                    "(--set embed=learned)")
        return super().unsupported_reason(meta)

    def seeds(self) -> list[int]:
        return [self.options.seed + k for k in range(self.options.seeds)]

    def _selected(self, ctx: RunContext) -> list:
        o = self.options
        keep = set(cap_per_group({u.id: u.speaker for u in ctx.dataset}, o.max_per_speaker, o.split_seed))
        return [u for u in ctx.dataset if u.id in keep]

    def prepare(self, ctx: RunContext) -> None:
        """The probe trains on all utterances: each rank first encodes its own shard into the
        shared token cache (the runner then waits for all ranks)."""
        mine = {u.id for u in ctx.utterances}
        encode_dataset(ctx.model, ctx.dataset, [u for u in self._selected(ctx) if u.id in mine],
                       ctx.cache, batch_size=ctx.batch_size, device=ctx.device,
                       progress=ctx.progress)

    def run(self, ctx: RunContext) -> Iterator[Output]:
        o = self.options
        rank, world = ctx.rank, ctx.world_size
        meta = ctx.meta
        plan = plan_frame_rate(meta.frame_rate, o.target_rate)
        ctx.log(f"probe: {meta.name} at {meta.frame_rate:g} Hz -> {plan.target:g} Hz ({plan.mode})")
        selected = self._selected(ctx)
        # Every rank reads the whole set (encoding whatever its cache lacks).
        encoded = encode_dataset(ctx.model, ctx.dataset, selected, ctx.cache,
                                 batch_size=ctx.batch_size, device=ctx.device, progress=ctx.progress)
        items, excluded = probe_items(meta, encoded.codes, selected)
        excluded.update(encoded.errors)

        config = HeadConfig(width=o.width, hidden=o.hidden, dropout=o.dropout)
        heads: dict[str, ProbeHead] = {name: get_head(name)(config) for name in o.heads}
        splits: dict[str, Split] = {}
        failed: dict[str, str] = {}
        for name, head in heads.items():
            try:
                splits[name] = head.split(list(items.values()), dev_fraction=o.dev_fraction,
                                          test_fraction=o.test_fraction, seed=o.split_seed)
            except NotComputable as exc:
                failed[name] = str(exc)
                ctx.log(f"probe {name}: not computable: {exc}")
        data = {"n_dataset": len(ctx.dataset), "n_selected": len(selected), "n_items": len(items),
                "max_per_speaker": o.max_per_speaker, "split_seed": o.split_seed,
                "excluded": excluded}
        yield Artefact(SPLITS_FILE, {
            **data, "dataset": ctx.dataset.name, "dataset_revision": ctx.dataset.revision,
            "heads": {name: s.to_dict() for name, s in splits.items()}, "failed": failed})

        make_frontend = self._frontend_factory(ctx, meta, items) if splits else None
        train_config = TrainConfig(epochs=o.epochs, patience=o.patience, lr=o.lr,
                                   batch=o.train_batch, device=ctx.device, threads=o.threads)
        for seed in self.seeds()[rank::world]:
            if ctx.is_done(None, seed):
                ctx.log(f"probe seed {seed}: already recorded, skipped")
                continue
            # make_frontend is None only when no head has a split: then nothing is trained
            results = {name: train_head(heads[name], make_frontend, items, split, plan,  # type: ignore[arg-type]
                                        train_config, seed, log=ctx.log)
                       for name, split in splits.items()}
            per_utt: dict[str, dict[str, Any]] = defaultdict(
                lambda: {"metrics": {}, "ratio": {}, "extra": {}})
            for result in results.values():
                for uid, scored in result.scores.items():
                    rec = per_utt[uid]
                    rec["metrics"].update(scored.metrics)
                    rec["ratio"].update(scored.ratio)
                    rec["extra"].update(scored.extra)
            # One seed's records stand or fall together: a kill in the middle of writing them
            # leaves none, so a rerun never mixes two trainings of one seed.
            group = []
            for uid in sorted(per_utt):
                rec = per_utt[uid]
                extra = {**rec["extra"], **({"ratio": rec["ratio"]} if rec["ratio"] else {})}
                group.append(make_record(uid, rec["metrics"], extra=extra, param=seed))
            nulls = {m: None for name in failed for m in heads[name].metrics}
            reasons = {m: failed[name] for name in failed for m in heads[name].metrics}
            group.append(make_record(None, nulls, reasons, param=seed, extra={
                "record": "probe seed", "seed": seed, "frame_plan": plan.to_dict(),
                "embed": o.embed, "data": {k: v for k, v in data.items() if k != "excluded"},
                "n_excluded": len(excluded), "failed": failed,
                "heads": {name: r.info for name, r in results.items()}}))
            yield RecordGroup(group)

    def _frontend_factory(self, ctx: RunContext, meta: TokenizerMeta, items: dict[str, ProbeItem]):
        o = self.options
        if o.embed == "learned":
            return lambda: LearnedEmbedding(meta.codebook_sizes, o.width)
        tokenizer, device = ctx.model, ctx.device

        def embed(tokens: Tokens) -> torch.Tensor:
            with torch.no_grad():
                return tokenizer.embed(tokens.to(device))  # type: ignore[attr-defined]  # capability embed

        first = next(iter(items.values())).codes[:, :1]
        dim = int(embed(Tokens.from_list([first])).shape[-1])
        return lambda: AdapterEmbedding(embed, meta.n_codebooks, dim, o.width)

    def corpus_records(self, ctx: RunContext, records: list[dict]) -> list[dict]:
        """With several seeds: per-utterance averages over seeds (``param`` "mean")."""
        if self.options.seeds < 2:
            return []
        seeds = set(self.seeds())
        values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        ratios: dict[str, dict[str, list[float]]] = defaultdict(dict)
        failed: dict[str, str] = {}
        for r in records:
            if r.get("param") not in seeds:
                continue
            if r.get("utterance_id") is None:
                failed.update({m: why for m, why in (r.get("reasons") or {}).items()})
                continue
            uid = r["utterance_id"]
            for metric, value in r["metrics"].items():
                if value is not None:
                    values[uid][metric].append(value)
            for metric, (num, den) in (r.get("extra") or {}).get("ratio", {}).items():
                acc = ratios[uid].setdefault(metric, [0.0, 0.0])
                acc[0] += num
                acc[1] += den
        out = []
        for uid in sorted(values):
            metrics = {m: sum(v) / len(v) for m, v in values[uid].items()}
            n_seeds = {m: len(v) for m, v in values[uid].items()}
            extra: dict[str, Any] = {"n_seeds": n_seeds}
            if ratios[uid]:
                extra["ratio"] = ratios[uid]
            out.append(make_record(uid, metrics, extra=extra, param="mean"))
        if failed:
            out.append(make_record(None, {m: None for m in failed}, failed, param="mean"))
        return out
