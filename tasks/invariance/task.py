"""Task ``invariance``: how stable the tokens are when the audio changes but its meaning does not.

Each utterance's tokens come from the token cache (:func:`encode_dataset`, shared with every
other task); each perturbed copy (:mod:`tokbench.tasks.invariance.perturbations`) is encoded
through the tokenizer's own ``encode``, batched with the other copies of the same utterance.

Records, one per utterance, perturbation and codebook, ``param`` = ``"<perturbation>/cb<q>"``
(e.g. ``"noise-white=10dB/cb0"``, ``"gain=+6dB/cb3"``) and, for tokenizers with several
codebooks, ``"<perturbation>/frames"`` (a frame, the codes of all codebooks together, is one
symbol): ``ued``, ``ued_dedup`` and, for perturbations that keep the time axis (``reencode``,
gain, noise, shift), ``code_change_rate`` (:mod:`tokbench.metrics.unit_edit`). ``extra`` holds
the edit counts and lengths, the share of clipped samples and the perturbation's parameters;
``perturbations.json`` in the run folder describes every perturbation once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tokbench.data import Utterance
from tokbench.data.batches import load_item
from tokbench.data.splits import stable_order
from tokbench.records import make_record
from tokbench.run.task import Artefact, Output, RunContext, Task
from tokbench.run.token_cache import encode_dataset
from tokbench.tasks.invariance.perturbations import (
    DEFAULT_PERTURBATIONS,
    Perturbation,
    apply,
    parse_perturbation,
    seed_for,
)
from tokbench.tasks.invariance.unit_edit import Change, change, frame_ids
from tokbench.types import Audio, TokenizerMeta

INVARIANCE_METRICS = ("ued", "ued_dedup", "code_change_rate")
PERTURBATIONS_FILE = "perturbations.json"
FRAMES = "frames"


@dataclass(frozen=True)
class InvarianceOptions:
    """Settings of the invariance task (``--set key=value``)."""

    perturbations: tuple[str, ...] = DEFAULT_PERTURBATIONS
    seed: int = 0  # noise, babble talkers and room impulse responses
    babble_talkers: int = 4  # other utterances summed into babble

    def __post_init__(self) -> None:
        if not self.perturbations:
            raise ValueError("give at least one perturbation")
        names = [parse_perturbation(p).name for p in self.perturbations]
        if len(set(names)) != len(names):
            raise ValueError(f"perturbations lists one twice: {names}")
        if self.babble_talkers < 1:
            raise ValueError(f"babble_talkers must be at least 1, got {self.babble_talkers}")

    def parsed(self) -> list[Perturbation]:
        return [parse_perturbation(p) for p in self.perturbations]


def param_name(perturbation: Perturbation, codebook: int | str) -> str:
    """``"gain=+6dB/cb0"``; ``codebook`` = ``FRAMES`` for all codebooks together."""
    return f"{perturbation.name}/{codebook if codebook == FRAMES else f'cb{codebook}'}"


def streams(meta: TokenizerMeta) -> list[int | str]:
    """What is compared: each codebook, and whole frames when there are several codebooks."""
    return [*range(meta.n_codebooks), *([FRAMES] if meta.n_codebooks > 1 else [])]


def compare(original: np.ndarray, perturbed: np.ndarray, stream: int | str) -> Change:
    """Edit counts of one stream (a codebook index or ``FRAMES``) of two ``[Q, F]`` arrays."""
    if stream == FRAMES:
        a, b = frame_ids(original, perturbed)
        return change(a, b)
    return change(original[int(stream)], perturbed[int(stream)])


def change_metrics(c: Change, aligned: bool) -> dict[str, float | None]:
    out = {"ued": c.ued, "ued_dedup": c.ued_dedup}
    if aligned:
        out["code_change_rate"] = c.code_change_rate
    return out


class Invariance(Task):
    name = "invariance"
    version = "1"
    Options = InvarianceOptions
    # More perturbations extend the same run (records are per perturbation, so a rerun with a
    # longer list computes only the new ones).
    runtime_options = frozenset({"perturbations"})

    def protocol(self) -> dict[str, Any]:
        o = self.options
        # Which perturbations ran is not protocol: each figure's param names its perturbation.
        return {"invariance": {"seed": o.seed, "babble_talkers": o.babble_talkers,
                               "edit_distance": "rapidfuzz Levenshtein, unit costs",
                               "clip": "perturbed audio clipped to [-1, 1]"}}

    def prepare(self, ctx: RunContext) -> None:
        """Encode this rank's originals into the token cache."""
        encode_dataset(ctx.model, ctx.dataset, ctx.utterances, ctx.cache,
                       batch_size=ctx.batch_size, device=ctx.device, progress=ctx.progress)

    def _params(self, meta: TokenizerMeta) -> list[str]:
        return [param_name(p, s) for p in self.options.parsed() for s in streams(meta)]

    def run(self, ctx: RunContext) -> Iterator[Output]:
        o = self.options
        meta = ctx.meta
        perturbations = o.parsed()
        hop = meta.sample_rate / meta.frame_rate
        yield Artefact(PERTURBATIONS_FILE, {
            "seed": o.seed, "babble_talkers": o.babble_talkers, "hop_samples": hop,
            "sample_rate": meta.sample_rate,
            "perturbations": {p.name: p.describe(hop, meta.sample_rate, o.babble_talkers)
                              for p in perturbations}})
        params = self._params(meta)
        todo = [u for u in ctx.utterances if not all(ctx.is_done(u.id, p) for p in params)]
        if not todo:
            return
        encoded = encode_dataset(ctx.model, ctx.dataset, todo, ctx.cache,
                                 batch_size=ctx.batch_size, device=ctx.device)
        talkers, load = self._babble(ctx)
        for utt in ctx.progress(todo, total=len(todo), desc=f"invariance {meta.name}"):
            original = encoded.codes.get(utt.id)
            if original is None:
                why = f"the original could not be encoded: {encoded.errors.get(utt.id, 'unknown')}"
                yield from self._failed(ctx, utt.id, perturbations, meta, why)
                continue
            yield from self._one(ctx, utt, original.numpy(), perturbations, hop, talkers(utt),
                                 load)

    def _babble(self, ctx: RunContext) -> tuple[Callable[[Utterance], list[str]],
                                                 Callable[[str], np.ndarray | None]]:
        """Who talks in an utterance's babble (ids), and a bounded cache of their audio."""
        o, meta, data = self.options, ctx.meta, ctx.dataset
        everyone = list(data.utterances)
        by_id = {u.id: u for u in everyone}

        @functools.lru_cache(maxsize=64)  # bounded: a large dataset is not held in memory
        def audio(uid: str) -> np.ndarray | None:
            item = load_item(data, by_id[uid], meta.sample_rate, scoring=False)
            return item.wav if item.ok else None

        def talkers(utt: Utterance) -> list[str]:
            others = [u for u in everyone if u.id != utt.id]
            if utt.speaker is not None and any(u.speaker != utt.speaker for u in others):
                others = [u for u in others if u.speaker != utt.speaker]
            # a seeded choice per utterance, independent of the dataset's file order
            chosen = stable_order([u.id for u in others], seed_for(o.seed, utt.id))
            return chosen[: o.babble_talkers]

        return talkers, audio

    def _failed(self, ctx: RunContext, uid: str, perturbations: list[Perturbation],
                meta: TokenizerMeta, why: str) -> Iterator[Output]:
        for p in perturbations:
            names = ("ued", "ued_dedup", *(("code_change_rate",) if p.aligned else ()))
            for s in streams(meta):
                param = param_name(p, s)
                if not ctx.is_done(uid, param):
                    yield make_record(uid, dict.fromkeys(names), dict.fromkeys(names, why),
                                      param=param, extra={"perturbation": p.name})

    def _one(self, ctx: RunContext, utt: Utterance, original: np.ndarray,
             perturbations: list[Perturbation], hop: float, talkers: list[str],
             load: Callable[[str], np.ndarray | None]) -> Iterator[Output]:
        """Perturb one utterance every way, encode the copies in batches, compare."""
        meta = ctx.meta
        item = load_item(ctx.dataset, utt, meta.sample_rate, scoring=False)
        if not item.ok:
            yield from self._failed(ctx, utt.id, perturbations, meta, f"audio: {item.error}")
            return
        wanted = [p for p in perturbations
                  if not all(ctx.is_done(utt.id, param_name(p, s)) for s in streams(meta))]

        def babble() -> list[np.ndarray]:
            wavs = [load(uid) for uid in talkers]
            return [w for w in wavs if w is not None and len(w)]

        copies: dict[str, tuple[np.ndarray, float]] = {}
        failures: dict[str, str] = {}
        for p in wanted:
            try:
                copies[p.name] = apply(p, item.wav, meta.sample_rate, hop, self.options.seed,
                                       utt.id, babble)
            except ValueError as exc:
                failures[p.name] = f"{p.name} could not be applied: {exc}"
        tokens = self._encode(ctx, {name: wav for name, (wav, _) in copies.items()}, failures)
        for p in wanted:
            if p.name in failures:
                yield from self._failed(ctx, utt.id, [p], meta, failures[p.name])
                continue
            perturbed = tokens[p.name]
            for s in streams(meta):
                param = param_name(p, s)
                if ctx.is_done(utt.id, param):
                    continue
                c = compare(original, perturbed, s)
                yield make_record(utt.id, change_metrics(c, p.aligned), param=param, extra={
                    "perturbation": p.name, "stream": s, "distance": c.distance,
                    "length": c.length, "distance_dedup": c.distance_dedup,
                    "length_dedup": c.length_dedup, "changed_frames": c.changed,
                    "perturbed_length": c.perturbed_length,
                    "clipped_fraction": round(copies[p.name][1], 6),
                    **({"babble_talkers": talkers} if p.kind == "noise-babble" else {})})

    def _encode(self, ctx: RunContext, wavs: dict[str, np.ndarray],
                failures: dict[str, str]) -> dict[str, np.ndarray]:
        """Codes ``[Q, F]`` of each named signal through the adapter's encode; a batch that fails
        is retried one signal at a time, and a signal that still fails is named in ``failures``."""
        out: dict[str, np.ndarray] = {}
        names = sorted(wavs, key=lambda n: -len(wavs[n]))
        for start in range(0, len(names), ctx.batch_size):
            chunk = names[start:start + ctx.batch_size]
            try:
                out.update(self._encode_batch(ctx, {n: wavs[n] for n in chunk}))
            except Exception:  # noqa: BLE001 - retried per signal, which names the failure
                for n in chunk:
                    try:
                        out.update(self._encode_batch(ctx, {n: wavs[n]}))
                    except Exception as exc:  # noqa: BLE001 - recorded as the metric's reason
                        failures[n] = f"encode failed: {type(exc).__name__}: {exc}"
        return out

    @staticmethod
    def _encode_batch(ctx: RunContext, wavs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        audio = Audio.from_list([torch.from_numpy(w) for w in wavs.values()],
                                ctx.meta.sample_rate).to(ctx.device)
        with torch.inference_mode():
            tokens = ctx.model.encode(audio.wav, audio.lengths)
        return {n: tokens.item(k).cpu().numpy().astype(np.int64) for k, n in enumerate(wavs)}

