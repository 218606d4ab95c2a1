"""Helpers for testing tokbench and its plug-ins offline: tiny random models in the real
layouts (only widths and depths shrink), and checks of the adapter contract.

Nothing here is used by a benchmark run; it lives in the library so that third-party adapters
and the benchmarks can use the same checks as tokbench's own tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tokbench.meta import TokenizerMeta
from tokbench.metrics.conformance import (  # noqa: F401 - the metric checks, re-exported
    MetricCheck,
    MetricContractError,
    check_metric,
)
from tokbench.types import Audio, BatchTolerance, Tokens

if TYPE_CHECKING:
    import whisper


def tiny_random_whisper(n_mels: int = 80, seed: int = 0) -> whisper.Whisper:
    """A random Whisper for offline tests and benchmarks (its transcripts are noise).

    True to the real models where the plumbing depends on it: ``n_mels`` (80, or 128 as in
    large-v3, which also has one more token: 100 languages), 1500 audio frames per 30 s, the full
    vocabulary and text context; only widths and depths shrink. Cross-attention is sharpened and
    amplified so that different inputs give different transcripts (with the plain init every
    input decodes to the same text, which would hide a mix-up of utterances).
    """
    import whisper

    if n_mels not in (80, 128):
        raise ValueError(f"Whisper models have 80 or 128 mel bins, not {n_mels}")
    generator = torch.Generator().manual_seed(seed)
    dims = whisper.ModelDimensions(
        n_mels=n_mels, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=1,
        n_vocab=51866 if n_mels == 128 else 51865, n_text_ctx=448, n_text_state=64,
        n_text_head=2, n_text_layer=1)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = whisper.Whisper(dims)
    with torch.no_grad():
        # whisper leaves the decoder's positional embedding as torch.empty (the checkpoint fills it)
        model.decoder.positional_embedding.normal_(0.0, 0.02, generator=generator)
        model.encoder.conv1.weight.mul_(5)
        for block in model.decoder.blocks:
            block.cross_attn.query.weight.mul_(30)
            block.cross_attn.value.weight.mul_(10)
            block.cross_attn.out.weight.mul_(10)
    return model.eval()


def save_whisper_checkpoint(model: whisper.Whisper, path: str | Path) -> Path:
    """Save in the official checkpoint layout that ``whisper.load_model`` reads."""
    path = Path(path)
    torch.save({"dims": asdict(model.dims), "model_state_dict": model.state_dict()}, path)
    return path


# --- the adapter contract ------------------------------------------------------------------------


class ContractError(AssertionError):
    """A tokenizer breaks the adapter contract (docs/adapter-contract.md); the message says how."""


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check_tokenizer` measured (all checks passed)."""

    name: str
    lengths: tuple[int, ...]
    frame_lengths: tuple[int, ...]
    code_agreement: float  # batched vs one at a time, on valid frames
    snr_db: float | None  # worst item, batched vs one-at-a-time decode; None without decode
    embed_dim: int | None


def speechlike_items(lengths: Sequence[int], sample_rate: int, seed: int = 0) -> list[torch.Tensor]:
    """Seeded speech-like test items: a modulated 180 Hz tone plus noise, one per length."""
    rng = np.random.default_rng(seed)
    t = np.arange(max(lengths)) / sample_rate
    base = 0.3 * np.sin(2 * np.pi * 180 * t) * np.sin(2 * np.pi * 3 * t)
    return [torch.from_numpy((base[:n] + 0.05 * rng.standard_normal(n)).astype(np.float32))
            for n in lengths]


def default_lengths(meta: TokenizerMeta) -> list[int]:
    """Odd lengths: many frames plus a few samples, two frames plus one sample, one sample."""
    hop = meta.sample_rate / meta.frame_rate * max(meta.strides)
    return [max(int(round(9 * hop)) + 7, 64), int(round(2 * hop)) + 1, 1]


def snr_db(ref: torch.Tensor, hyp: torch.Tensor) -> float:
    err = float(((ref.double() - hyp.double()) ** 2).sum())
    if err == 0:
        return math.inf
    return 10 * math.log10(max(float((ref.double() ** 2).sum()), 1e-30) / err)


def _fail(name: str, what: str) -> ContractError:
    return ContractError(f"{name}: {what} (docs/adapter-contract.md)")


def _check_tokens(tok: Any, tokens: Tokens, lengths: torch.Tensor, batch: int) -> None:
    meta, name = tok.meta, tok.meta.name
    if tokens.codes.dim() != 3 or tokens.codes.shape[:2] != (batch, meta.n_codebooks):
        raise _fail(name, f"codes must be [B={batch}, Q={meta.n_codebooks}, F], got "
                          f"{tuple(tokens.codes.shape)}")
    frames = tokens.frame_lengths.cpu().tolist()
    if hasattr(tok, "frames_for"):
        expected = tok.frames_for(lengths.cpu()).tolist()
        if frames != expected:
            raise _fail(name, f"frame_lengths {frames} != the adapter's frames_for(lengths) = {expected}")
    else:
        approx = [n * meta.frame_rate / meta.sample_rate for n in lengths.tolist()]
        if any(abs(f - a) > 1 for f, a in zip(frames, approx, strict=True)):
            raise _fail(name, f"frame_lengths {frames} are not within one frame of "
                              f"len x frame_rate / sample_rate = {approx}")
    if tokens.codes.shape[2] != max(frames, default=0):
        raise _fail(name, f"codes have {tokens.codes.shape[2]} frames, the longest item "
                          f"{max(frames, default=0)}")
    if tokens.sample_lengths is not None and tokens.sample_lengths.cpu().tolist() != lengths.tolist():
        raise _fail(name, f"sample_lengths {tokens.sample_lengths.tolist()} != input lengths "
                          f"{lengths.tolist()}")
    for b, f in enumerate(frames):
        item = tokens.codes[b, :, :f].cpu()
        for q, size in enumerate(meta.codebook_sizes):
            c = item[q]
            if c.numel() and (int(c.min()) < 0 or int(c.max()) >= size):
                raise _fail(name, f"item {b} codebook {q}: codes range over [{int(c.min())}, "
                                  f"{int(c.max())}], outside [0, {size}) of codebook_sizes")
            stride = meta.strides[q]
            if stride > 1 and c.numel():
                # aligned layout: a slow code stays in force over its `stride` frames
                held = meta.codebook_tokens(item, q).repeat_interleave(stride)[: c.numel()]
                if not torch.equal(held, c):
                    raise _fail(name, f"item {b} codebook {q} (stride {stride}): codes change "
                                      "within a slow frame; repeat each slow code over its frames")


def check_tokenizer(tok: Any, *, lengths: Sequence[int] | None = None, seed: int = 0,
                    tolerance: BatchTolerance | None = None, min_distinct: int = 2) -> CheckReport:
    """Check ``tok`` against the adapter contract on seeded test audio of odd ``lengths``
    (default :func:`default_lengths`): code shapes, frame lengths (exactly ``tok.frames_for``
    where the adapter has it, as framed codecs do: ``ceil(len / hop)``; else within one frame
    of ``len x frame_rate / sample_rate``), code ranges vs ``codebook_sizes`` (and the aligned
    layout of multi-rate codebooks), ``sample_lengths``, decoded rate and length (the input
    length, at ``meta.decoded_rate``), determinism,
    batched vs one at a time within the adapter's declared ``batch_tolerance`` (garbage past
    the lengths must not matter), and ``embed`` shape ``[B, Q, F, D]`` with batched = alone.
    Raises :class:`ContractError` naming what broke; returns what it measured."""
    meta, name = tok.meta, tok.meta.name
    declared = getattr(type(tok), "batch_tolerance", None)
    tol = tolerance or (declared if isinstance(declared, BatchTolerance) else BatchTolerance())
    items = speechlike_items(lengths or default_lengths(meta), meta.sample_rate, seed)
    batch = Audio.from_list(items, meta.sample_rate)
    noisy = batch.wav.clone()
    for b, n in enumerate(batch.lengths.tolist()):
        noisy[b, n:] = 0.5  # padding never leaks: what lies past the lengths must not matter
    tokens = tok.encode(noisy, batch.lengths)
    _check_tokens(tok, tokens, batch.lengths, len(items))
    again = tok.encode(noisy, batch.lengths)
    if not torch.equal(again.codes, tokens.codes):
        raise _fail(name, "encode is not deterministic (two calls gave different codes)")
    distinct = len(torch.unique(tokens.item(0)))
    if distinct < min_distinct:
        raise _fail(name, f"the longest item encodes to {distinct} distinct code(s): the "
                          "codebooks look unfilled (tiny checkpoints need random VQ buffers)")
    singles = [tok.encode(x[None], torch.tensor([len(x)])) for x in items]
    equal = total = 0
    for b, s in enumerate(singles):
        if s.frame_lengths.tolist() != [int(tokens.frame_lengths[b])]:
            raise _fail(name, f"item {b} has {s.frame_lengths.tolist()} frames alone, "
                              f"{int(tokens.frame_lengths[b])} in a batch")
        equal += int((tokens.item(b).cpu() == s.item(0).cpu()).sum())
        total += s.item(0).numel()
    agreement = equal / total if total else 1.0
    if agreement < tol.code_agreement:
        raise _fail(name, f"batched codes agree with one-at-a-time codes on {agreement:.4%} of "
                          f"valid frames, the adapter declares >= {tol.code_agreement:.4%}")
    worst = None
    if meta.can("decode"):
        worst = _check_decode(tok, tokens, singles, batch, tol)
    dim = _check_embed(tok, tokens, singles) if meta.can("embed") else None
    return CheckReport(name, tuple(batch.lengths.tolist()), tuple(tokens.frame_lengths.tolist()),
                       agreement, worst, dim)


def _prompt(tok: Any, batch: Audio) -> Audio | None:
    return Audio.from_list([batch.item(0)], batch.sample_rate) if tok.meta.can("speaker_prompt") else None


def _check_decode(tok: Any, tokens: Tokens, singles: list[Tokens], batch: Audio,
                  tol: BatchTolerance) -> float:
    name, prompt = tok.meta.name, _prompt(tok, batch)
    out = tok.decode(tokens, prompt)
    if out.sample_rate != tok.meta.decoded_rate:
        raise _fail(name, f"decode gives {out.sample_rate} Hz, meta says {tok.meta.decoded_rate}")
    expected = [tok.meta.decoded_length(n) for n in batch.lengths.tolist()]
    if out.lengths.cpu().tolist() != expected:
        raise _fail(name, f"decoded lengths {out.lengths.tolist()} != input lengths "
                          f"{expected} at {out.sample_rate} Hz (trim to Tokens.sample_lengths)")
    for b in range(out.batch_size):
        if not torch.isfinite(out.item(b)).all():
            raise _fail(name, f"decoded item {b} has non-finite samples")
    if not torch.equal(tok.decode(tokens, prompt).wav, out.wav):
        raise _fail(name, "decode is not deterministic (two calls gave different audio)")
    # the same tokens decoded together and one at a time
    together = tok.decode(Tokens(Tokens.from_list([s.item(0).cpu() for s in singles]).codes,
                                 torch.tensor([int(s.frame_lengths[0]) for s in singles]),
                                 batch.lengths.clone()), prompt)
    worst = math.inf
    for b, s in enumerate(singles):
        alone = tok.decode(s, prompt).item(0).cpu()
        snr = snr_db(alone, together.item(b).cpu())
        if alone.shape != together.item(b).shape or snr < tol.snr_db:
            raise _fail(name, f"item {b}: batched decode vs one at a time: {snr:.1f} dB SNR, "
                              f"the adapter declares >= {tol.snr_db} dB")
        worst = min(worst, snr)
    return worst


def _check_embed(tok: Any, tokens: Tokens, singles: list[Tokens]) -> int:
    name = tok.meta.name
    emb = tok.embed(tokens)
    b, q, f = tokens.codes.shape
    if emb.dim() != 4 or tuple(emb.shape[:3]) != (b, q, f):
        raise _fail(name, f"embed must be [B={b}, Q={q}, F={f}, D], got {tuple(emb.shape)}")
    if not torch.isfinite(emb).all():
        raise _fail(name, "embed has non-finite values")
    for i, s in enumerate(singles):
        n = int(s.frame_lengths[0])
        alone = tok.embed(s)[0, :, :n].cpu()
        if not torch.allclose(alone, emb[i, :, :n].cpu(), atol=1e-5, rtol=1e-4):
            raise _fail(name, f"item {i}: embed of the batch differs from embed alone")
    return int(emb.shape[3])


# --- context: how far a non-causal model looks ahead ---------------------------------------------


@dataclass(frozen=True)
class ContextReach:
    """How many frames before a change its effect reaches: in the codes (``encode``) and in the
    decoded samples (``decode``). A model needs ``max(encode, decode)`` context frames."""

    encode: int
    decode: int

    @property
    def frames(self) -> int:
        return max(self.encode, self.decode)


def measure_reach(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, at: int,
                  in_hop: int, out_hop: int, *, atol: float = 0.0) -> int:
    """Frames before frame ``at`` that a change of ``x`` at that frame reaches in ``fn(x)``.

    ``x`` is ``[..., T]`` with ``in_hop`` input steps per frame (1 for latents); ``fn(x)`` is
    ``[..., T']`` with ``out_hop`` steps per frame. Frame ``at`` of ``x`` is replaced by seeded
    noise; returns ``at`` minus the earliest output frame that changed (0: causal)."""
    with torch.inference_mode():
        base = fn(x)
        changed = x.clone()
        gen = torch.Generator().manual_seed(1)
        region = changed[..., at * in_hop:(at + 1) * in_hop]
        region.copy_(torch.randn(region.shape, generator=gen) + region)
        diff = (fn(changed).to(torch.float64) - base.to(torch.float64)).abs()
    steps = diff.reshape(-1, diff.shape[-1]).amax(0) > atol
    hits = torch.nonzero(steps).flatten()
    if not len(hits):
        raise ValueError("the change did not reach the output at all; pick a later frame")
    return max(0, at - int(hits.min()) // out_hop)


def measure_context(tok: Any, frames: int = 32, at: int | None = None, seed: int = 0) -> ContextReach:
    """The context frames a tokenizer's model needs, measured through the adapter itself on one
    item of ``frames`` frames (with the adapter's own padding: set ``context_frames = 0`` on
    it first to measure the bare model). Encode: a burst of noise at frame ``at`` (default
    ``frames - 8``), the earliest frame whose codes change (a lower bound: quantisation can
    hide small changes). Decode: the codes of frame ``at`` shifted by one, the earliest sample
    that changes."""
    meta = tok.meta
    hop = int(round(meta.sample_rate / meta.frame_rate))
    at = frames - 8 if at is None else at
    x = speechlike_items([frames * hop], meta.sample_rate, seed)[0][None]
    n = torch.tensor([frames * hop])

    def codes(wav: torch.Tensor) -> torch.Tensor:
        return tok.encode(wav, n).codes.to(torch.float64)

    enc = measure_reach(codes, x, at, hop, 1, atol=0.5)
    dec = 0
    if meta.can("decode"):
        tokens = tok.encode(x, n)
        sizes = torch.tensor(meta.codebook_sizes)[None, :, None]

        def audio(c: torch.Tensor) -> torch.Tensor:
            whole = torch.remainder(c.round().to(torch.long), sizes)
            return tok.decode(Tokens(whole, tokens.frame_lengths, tokens.sample_lengths)).wav

        dec = measure_reach(audio, tokens.codes.to(torch.float64), at, 1, hop)
    return ContextReach(enc, dec)
