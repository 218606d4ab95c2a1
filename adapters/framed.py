"""The base of every framed codec: whole frames of ``hop_length`` samples in, Q codes per frame
out (neural codecs served by transformers, a pip package or raw Hub files alike).

A family subclass declares its rates and codebooks as class constants, loads its model in
``_load`` and supplies three model calls (``_encode_frames``, ``_decode_frames``,
``_codebook_tables``, or ``_embed_codes`` where codes have no table). The base does the rest, the same way for every family
(docs/adapter-contract.md):

- ``encode`` zero-pads every item to whole frames (``ceil(len / hop)``; whatever the caller left
  past ``lengths`` is ignored) and returns ``Tokens`` with ``frame_lengths`` and the input
  ``sample_lengths``; codes on padding frames are 0.
- ``decode`` returns exactly the input length (``Tokens.sample_lengths`` or an explicit
  ``lengths``), else ``frame_lengths * hop`` samples; samples past an item's length are zero.
- Batching rules, so that batched equals one-at-a-time within ``batch_tolerance``:
  causal or mask-aware models need nothing (Mimi); models whose convolutions see what follows
  an item get ``context_frames`` zero frames after every item on both paths (DAC: 8), models
  whose left-edge padding reads ahead get ``min_frames`` (EnCodec reflects: 7); models whose
  attention or recurrence sees padding set ``per_item`` and are called one item at a time.
- ``embed``: the codebook vector of every token, ``[B, Q, F, D]``, zero on padding frames.

Multi-rate codecs (``codebook_strides``, e.g. SNAC) return codes in the time-aligned layout of
``TokenizerMeta.codebook_strides``: :func:`align_codebooks` and :func:`split_codebooks` convert.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from tokbench.meta import Kind, TokenizerSetupError
from tokbench.types import Audio, BatchTolerance, ModelSource, TokenizerBase, TokenizerMeta, Tokens


@dataclasses.dataclass(frozen=True)
class FirstCodebooks:
    """Options of a "first N codebooks" codec: the model encodes with its first ``n_codebooks``
    residual quantizers. A family subclasses it to set its maximum and default::

        @dataclass(frozen=True)
        class MimiOptions(FirstCodebooks):
            n_codebooks: int = 8
            maximum: ClassVar[int] = 32
    """

    n_codebooks: int
    #: the number of codebooks the family's checkpoint has
    maximum: ClassVar[int] = 0

    def __post_init__(self) -> None:
        if self.maximum < 1:
            raise TypeError(f"{type(self).__qualname__} must set the family's maximum")
        if isinstance(self.n_codebooks, bool) or not isinstance(self.n_codebooks, int):
            raise ValueError(f"n_codebooks must be an integer, got {self.n_codebooks!r}")
        if not 1 <= self.n_codebooks <= self.maximum:
            raise ValueError(f"n_codebooks must lie in [1, {self.maximum}] (this model has "
                             f"{self.maximum} codebooks), got {self.n_codebooks}")


def require(module: str, extra: str, *, needed_by: str) -> Any:
    """Import an optional package a family needs (call it in ``_load``, not at module top, so a
    missing package breaks only that family), or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise TokenizerSetupError(
            f"{needed_by} needs the Python package {module!r}, which cannot be imported ({exc}): "
            f"install it with pip install 'tokbench[{extra}]'") from exc


def align_codebooks(per_codebook: Sequence[torch.Tensor], strides: Sequence[int],
                    frames: int) -> torch.Tensor:
    """``[B, F_q]`` codes of each codebook at its own rate -> the aligned ``[B, Q, frames]``
    layout (each slow code repeated over its ``stride`` frames)."""
    out = [c.repeat_interleave(s, dim=-1)[:, :frames] for c, s in zip(per_codebook, strides,
                                                                         strict=True)]
    short = [tuple(c.shape) for c in out if c.shape[-1] != frames]
    if short:
        raise RuntimeError(f"codebooks do not cover {frames} frames at strides {list(strides)}: "
                           f"{short}")
    return torch.stack(out, dim=1)


def split_codebooks(codes: torch.Tensor, strides: Sequence[int]) -> list[torch.Tensor]:
    """The aligned ``[B, Q, F]`` layout -> ``[B, ceil(F / stride)]`` codes of each codebook."""
    return [codes[:, q, ::s] for q, s in enumerate(strides)]


class FramedCodec(TokenizerBase):
    """Base of the framed-codec adapters. Subclasses set the class constants, ``Options``, and
    implement ``_load``, ``_encode_frames``, ``_decode_frames`` and (for ``embed``)
    ``_codebook_tables``; a "first N codebooks" family uses :class:`FirstCodebooks` options."""

    # --- static description (class constants) ---------------------------------------------
    name: ClassVar[str]  # model-level name, e.g. "encodec-24k"
    family: ClassVar[str]
    kind: ClassVar[Kind] = "acoustic"
    repo_id: ClassVar[str | None] = None
    revision: ClassVar[str | None] = None
    sample_rate: ClassVar[int]
    hop_length: ClassVar[int]  # input samples per frame (of the fastest codebook)
    #: decoders that return another rate than they take (NeuCodec: 16 kHz in, 24 kHz out)
    output_sample_rate: ClassVar[int | None] = None
    codebook_size: ClassVar[int]
    #: multi-rate codecs: frames per code of each codebook (see TokenizerMeta.codebook_strides)
    codebook_strides: ClassVar[tuple[int, ...]] = ()
    streamable: ClassVar[bool] = False
    capabilities: ClassVar[frozenset[str]] = frozenset({"decode", "embed"})
    license: ClassVar[str] = ""
    citation: ClassVar[str] = ""

    # --- batching rules (docs/adapter-contract.md) -----------------------------------------
    #: zero frames appended to every item, on both paths, and dropped from the output: the
    #: right-hand reach of a non-causal model (``tokbench.testing.measure_context`` measures it)
    context_frames: ClassVar[int] = 0
    #: every item is computed over at least this many frames (models whose left-edge padding
    #: reads ahead, e.g. by reflection)
    min_frames: ClassVar[int] = 1
    #: the frames the model is given are rounded up to a multiple of this (models that need
    #: whole windows or whole slow frames)
    frame_multiple: ClassVar[int] = 1
    #: call the model one item at a time (attention or recurrence that sees padding)
    per_item: ClassVar[bool] = False
    #: with the rules above, batched equals one at a time up to the float rounding of batched
    #: kernels (a rare code flips where a latent is near a boundary between two codes)
    batch_tolerance: ClassVar[BatchTolerance] = BatchTolerance(code_agreement=0.999, snr_db=60.0)

    # --- description -----------------------------------------------------------------------
    @classmethod
    def frame_rate(cls) -> float:
        return cls.sample_rate / cls.hop_length

    @classmethod
    def n_codebooks_for(cls, options: Any) -> int:
        """Codebooks these options use (``options.n_codebooks`` for :class:`FirstCodebooks`)."""
        if isinstance(options, FirstCodebooks):
            return options.n_codebooks
        raise NotImplementedError(f"{cls.__qualname__} must define n_codebooks_for")

    @classmethod
    def codebook_sizes_for(cls, options: Any) -> tuple[int, ...]:
        return (cls.codebook_size,) * cls.n_codebooks_for(options)

    @classmethod
    def call_kwargs(cls, options: Any) -> dict[str, Any]:
        """The explicit arguments the model's encode call receives for these options."""
        return {}

    @classmethod
    def describe(cls, options: Any) -> TokenizerMeta:
        n = cls.n_codebooks_for(options)
        return TokenizerMeta(
            name=cls.name, family=cls.family, kind=cls.kind, sample_rate=cls.sample_rate,
            frame_rate=cls.frame_rate(), n_codebooks=n, codebook_sizes=cls.codebook_sizes_for(options),
            codebook_strides=cls.codebook_strides[:n], output_sample_rate=cls.output_sample_rate,
            streamable=cls.streamable,
            capabilities=cls.capabilities,
            source=ModelSource(repo_id=cls.repo_id, revision=cls.revision),
            license=cls.license, citation=cls.citation, options=dataclasses.asdict(options))

    def encode_kwargs(self) -> dict[str, Any]:
        """The dict passed to the model's encode call (e.g. ``{"num_quantizers": 8}``)."""
        return self.call_kwargs(self.options)

    # --- loading ---------------------------------------------------------------------------
    def __init__(self, options: Any, *, device: str = "cpu", checkpoint: str | None = None):
        super().__init__(options, device=device, checkpoint=checkpoint)
        self.meta = dataclasses.replace(self.meta, source=self._load(checkpoint, device))

    def _load(self, checkpoint: str | None, device: str) -> ModelSource:
        """Load the weights (from ``checkpoint`` if given, else the pinned official source) onto
        ``device`` in eval mode, keep what the model calls need on ``self``, and return where
        they came from (with the resolved commit)."""
        raise NotImplementedError

    def _device(self) -> torch.device:
        return torch.device(self.device)

    # --- the contract ----------------------------------------------------------------------
    @classmethod
    def output_hop(cls) -> int:
        """Decoded samples per frame (``hop_length`` unless the output rate differs)."""
        if cls.output_sample_rate is None:
            return cls.hop_length
        hop = cls.hop_length * cls.output_sample_rate / cls.sample_rate
        if not float(hop).is_integer():
            raise TypeError(f"{cls.__qualname__}: hop {cls.hop_length} at {cls.sample_rate} Hz is "
                            f"not a whole number of samples at {cls.output_sample_rate} Hz")
        return int(hop)

    def frames_for(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames the codes of ``lengths`` samples have: ``ceil(len / hop)``."""
        return (lengths.to(torch.long) + self.hop_length - 1) // self.hop_length

    def padded_frames(self, frame_lengths: torch.Tensor) -> int:
        """Frames the model computes for a batch (or one item): every item gets
        ``context_frames`` more, at least ``min_frames``, rounded up to ``frame_multiple``."""
        if not len(frame_lengths) or int(frame_lengths.max()) == 0:
            return 0
        total = max(int(frame_lengths.max()) + self.context_frames, self.min_frames)
        return -(-total // self.frame_multiple) * self.frame_multiple

    def _groups(self, frame_lengths: torch.Tensor) -> list[slice]:
        """The items the model is called on together: all, or one at a time (``per_item``)."""
        batch = len(frame_lengths)
        return [slice(b, b + 1) for b in range(batch)] if self.per_item else [slice(0, batch)]

    @torch.inference_mode()
    def encode(self, wav: torch.Tensor, lengths: torch.Tensor) -> Tokens:
        self.check_input(wav, lengths)
        dev = self._device()
        lengths = lengths.to(torch.long).cpu()
        frames = self.frames_for(lengths)
        batch, n_q = wav.shape[0], self.meta.n_codebooks
        n_frames = int(frames.max()) if batch else 0
        codes = torch.zeros(batch, n_q, n_frames, dtype=torch.long, device=dev)
        for group in self._groups(frames):
            total = self.padded_frames(frames[group])
            if total == 0:
                continue
            items = range(group.start, group.stop)
            x = torch.zeros(len(items), 1, total * self.hop_length, dtype=torch.float32, device=dev)
            for i, b in enumerate(items):
                x[i, 0, : int(lengths[b])] = wav[b, : int(lengths[b])].to(dev, torch.float32)
            got = self._encode_frames(x)
            if tuple(got.shape) != (len(items), n_q, total):
                raise RuntimeError(f"{self.name}: model returned codes of shape "
                                   f"{tuple(got.shape)}, expected {(len(items), n_q, total)}")
            keep = min(total, n_frames)
            codes[group, :, :keep] = got[:, :, :keep].to(torch.long)
        return Tokens(self._zero_padding(codes, frames.to(dev)), frames.to(dev), lengths.to(dev))

    @torch.inference_mode()
    def decode(self, tokens: Tokens, prompt: Audio | None = None, *,
               lengths: torch.Tensor | None = None) -> Audio:
        """Audio for ``tokens`` at ``meta.decoded_rate``: the input length of each item
        (``lengths`` in input samples, else the ``sample_lengths`` that encode recorded; at the
        output rate when it differs), or whole frames when neither is known (tokens from a
        cache or a language model)."""
        if prompt is not None:
            raise ValueError(f"{self.name} takes no speaker prompt (capability 'speaker_prompt')")
        self._check_codes(tokens)
        dev = self._device()
        frame_lengths = tokens.frame_lengths.to(torch.long).cpu()
        natural = frame_lengths * self.output_hop()
        if lengths is None:
            lengths = tokens.sample_lengths
        if lengths is None:
            out_lengths = natural
        else:
            out_lengths = self._output_length(lengths)
        if out_lengths.shape != frame_lengths.shape:
            raise ValueError(f"lengths must have shape {tuple(frame_lengths.shape)}")
        covered = self._output_length(self.covered_lengths(frame_lengths))
        if len(out_lengths) and bool((out_lengths > covered).any()):
            raise ValueError(f"{self.name}: lengths {out_lengths.tolist()} exceed what the codes "
                             f"cover ({covered.tolist()} samples)")
        batch = tokens.batch_size
        out = torch.zeros(batch, int(out_lengths.max()) if batch else 0, dtype=torch.float32,
                          device=dev)
        # past ``natural`` (an input sample no frame holds: covered_lengths) the output is zero
        for group in self._groups(frame_lengths):
            total = self.padded_frames(frame_lengths[group])
            if total == 0:
                continue
            n_frames = min(int(frame_lengths[group].max()), tokens.codes.shape[-1])
            codes = torch.zeros(group.stop - group.start, tokens.n_codebooks, total,
                                dtype=torch.long, device=dev)
            codes[:, :, :n_frames] = self._zero_padding(
                tokens.codes[group, :, :n_frames].to(dev), frame_lengths[group].to(dev))
            wav = self._decode_frames(codes).to(torch.float32)
            for i, b in enumerate(range(group.start, group.stop)):
                keep = min(int(out_lengths[b]), int(natural[b]), wav.shape[-1])
                out[b, :keep] = wav[i, :keep]
        return Audio(out, out_lengths.to(dev), self.meta.decoded_rate)

    @torch.inference_mode()
    def embed(self, tokens: Tokens) -> torch.Tensor:
        """The codebook vector of every token, ``[B, Q, F, D]``; zero on padding frames."""
        self._check_codes(tokens)
        dev = self._device()
        codes = tokens.codes.to(dev)
        out = self._embed_codes(codes)
        valid = torch.arange(codes.shape[-1], device=dev)[None, :] < tokens.frame_lengths.to(dev)[:, None]
        return out * valid[:, None, :, None].to(out.dtype)

    # --- family hooks ----------------------------------------------------------------------
    def _encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, Q, F]`` of ``x`` ``[B, 1, F * hop]`` (whole frames, zero-padded)."""
        raise NotImplementedError

    def _decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        """Waveforms ``[B, T]`` of ``codes`` ``[B, Q, F]`` (code 0 on padding frames); ``T`` may
        fall a few samples short of ``F * hop`` (the output is zero-padded to the length)."""
        raise NotImplementedError

    def _codebook_tables(self) -> list[torch.Tensor]:
        """The codebook of each quantizer, in code order: ``[codebook_size, D]`` each (one
        ``D`` for all, as ``embed`` stacks them)."""
        raise NotImplementedError

    def _embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """The vectors ``[B, Q, F, D]`` of checked codes ``[B, Q, F]`` on the model's device
        (``embed`` zeroes the padding frames): a lookup in ``_codebook_tables``. A family whose
        codes have no table (FSQ: a vector computed from the code) overrides this instead."""
        tables = self._codebook_tables()[: codes.shape[1]]
        return torch.stack([torch.nn.functional.embedding(codes[:, q], table.to(codes.device))
                            for q, table in enumerate(tables)], dim=1)

    def covered_lengths(self, frame_lengths: torch.Tensor) -> torch.Tensor:
        """The longest input (samples at ``sample_rate``) whose codes have ``frame_lengths``
        frames: ``frames * hop`` for ``ceil`` framing. A family whose ``frames_for`` drops a
        partial last frame overrides both; ``decode`` refuses longer lengths and returns zeros
        past ``frames * output hop``."""
        return frame_lengths.to(torch.long) * self.hop_length

    def _output_length(self, lengths: torch.Tensor) -> torch.Tensor:
        """Input lengths at the output rate (rounded as ``TokenizerMeta.decoded_length``)."""
        if self.output_sample_rate is None:
            return lengths.to(torch.long).cpu()
        return torch.round(lengths.cpu().double() * self.output_sample_rate
                           / self.sample_rate).to(torch.long)

    # --- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _zero_padding(codes: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
        valid = torch.arange(codes.shape[-1], device=codes.device)[None, :] < frame_lengths[:, None]
        return codes.masked_fill(~valid[:, None, :], 0)

    def _check_codes(self, tokens: Tokens) -> None:
        if tokens.n_codebooks != self.meta.n_codebooks:
            raise ValueError(f"{self.name}: expected {self.meta.n_codebooks} codebooks "
                             f"(options {dict(self.meta.options)}), got {tokens.n_codebooks}")
        for q, size in enumerate(self.meta.codebook_sizes):
            c = tokens.codes[:, q]
            if c.numel() and (int(c.min()) < 0 or int(c.max()) >= size):
                raise ValueError(f"{self.name}: codes of codebook {q} must lie in [0, {size})")
