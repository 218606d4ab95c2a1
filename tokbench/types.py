"""Core types of the adapter contract (docs/adapter-contract.md).

Shapes are contract: ``Tokens.codes`` is ``LongTensor[B, Q, F]`` with ``frame_lengths[B]``;
``Audio.wav`` is ``Tensor[B, T]`` with ``lengths[B]`` at ``Audio.sample_rate``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch

from tokbench.meta import (
    CAPABILITIES,
    KINDS,
    Kind,
    ModelSource,
    TokenizerMeta,
    TokenizerSetupError,
)


def _check_lengths(lengths: torch.Tensor, batch: int, limit: int, what: str) -> torch.Tensor:
    if lengths.dim() != 1 or lengths.shape[0] != batch:
        raise ValueError(f"{what} lengths must have shape [{batch}], got {tuple(lengths.shape)}")
    lengths = lengths.to(torch.long)
    if batch and (int(lengths.min()) < 0 or int(lengths.max()) > limit):
        raise ValueError(f"{what} lengths must lie in [0, {limit}], got {lengths.tolist()}")
    return lengths


@dataclass
class Tokens:
    """A batch of discrete codes ``[B, Q, F]``; frames at or after ``frame_lengths[b]`` are padding."""

    codes: torch.Tensor
    frame_lengths: torch.Tensor
    # Input length in samples, when known (set by encode): lets decode return exactly the input
    # length although codes stand for whole frames. Tokens from elsewhere (a cache, BPE) may lack it.
    sample_lengths: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.codes.dim() != 3:
            raise ValueError(f"codes must be [B, Q, F], got shape {tuple(self.codes.shape)}")
        if self.codes.dtype != torch.long:
            self.codes = self.codes.to(torch.long)
        self.frame_lengths = _check_lengths(
            self.frame_lengths, self.codes.shape[0], self.codes.shape[2], "frame"
        )
        if self.sample_lengths is not None:
            if self.sample_lengths.shape != self.frame_lengths.shape:
                raise ValueError("sample_lengths must have one entry per item")
            self.sample_lengths = self.sample_lengths.to(torch.long)

    @property
    def batch_size(self) -> int:
        return int(self.codes.shape[0])

    @property
    def n_codebooks(self) -> int:
        return int(self.codes.shape[1])

    def item(self, i: int) -> torch.Tensor:
        """Codes of item ``i`` without padding: ``[Q, F_i]``."""
        return self.codes[i, :, : int(self.frame_lengths[i])]

    @classmethod
    def from_list(cls, items: Sequence[torch.Tensor], pad_value: int = 0) -> Tokens:
        """Pad a list of ``[Q, F_i]`` code tensors into one batch."""
        if not items:
            raise ValueError("cannot batch an empty list of token tensors")
        q = {int(t.shape[0]) for t in items}
        if len(q) != 1:
            raise ValueError(f"items have different numbers of codebooks: {sorted(q)}")
        frames = max(int(t.shape[1]) for t in items)
        codes = torch.full((len(items), q.pop(), frames), pad_value, dtype=torch.long)
        for i, t in enumerate(items):
            codes[i, :, : t.shape[1]] = t
        lengths = torch.tensor([int(t.shape[1]) for t in items], dtype=torch.long)
        return cls(codes, lengths)

    def to(self, device: torch.device | str) -> Tokens:
        samples = None if self.sample_lengths is None else self.sample_lengths.to(device)
        return Tokens(self.codes.to(device), self.frame_lengths.to(device), samples)


@dataclass
class Audio:
    """A batch of mono waveforms ``[B, T]`` at ``sample_rate``; samples past ``lengths[b]`` are padding."""

    wav: torch.Tensor
    lengths: torch.Tensor
    sample_rate: int

    def __post_init__(self) -> None:
        if self.wav.dim() != 2:
            raise ValueError(f"wav must be [B, T], got shape {tuple(self.wav.shape)}")
        self.lengths = _check_lengths(self.lengths, self.wav.shape[0], self.wav.shape[1], "sample")

    @property
    def batch_size(self) -> int:
        return int(self.wav.shape[0])

    def item(self, i: int) -> torch.Tensor:
        return self.wav[i, : int(self.lengths[i])]

    @classmethod
    def from_list(cls, items: Sequence[torch.Tensor], sample_rate: int) -> Audio:
        """Zero-pad a list of 1-D waveforms into one batch."""
        if not items:
            raise ValueError("cannot batch an empty list of waveforms")
        t = max(int(x.shape[-1]) for x in items)
        wav = torch.zeros(len(items), t, dtype=torch.float32)
        for i, x in enumerate(items):
            if x.dim() != 1:
                raise ValueError(f"waveform {i} must be 1-D (mono), got shape {tuple(x.shape)}")
            wav[i, : x.shape[0]] = x.to(torch.float32)
        lengths = torch.tensor([int(x.shape[0]) for x in items], dtype=torch.long)
        return cls(wav, lengths, sample_rate)

    def to(self, device: torch.device | str) -> Audio:
        return Audio(self.wav.to(device), self.lengths.to(device), self.sample_rate)


@dataclass(frozen=True)
class BatchTolerance:
    """How close an adapter's batched results are to its one-at-a-time results (declared on the
    adapter class, held by ``tokbench.testing.check_tokenizer``): ``code_agreement`` = share of
    equal codes on valid frames; ``snr_db`` = SNR of the batched decode of the same tokens
    against the one-at-a-time decode, on valid samples. The default is exact."""

    code_agreement: float = 1.0
    snr_db: float = math.inf

    def __post_init__(self) -> None:
        if not 0.0 <= self.code_agreement <= 1.0:
            raise ValueError(f"code_agreement must lie in [0, 1], got {self.code_agreement}")


@dataclass
class PromptAudio(Audio):
    """A batch of prompts: item ``b`` is the concatenation of whole utterances whose lengths are
    ``segments[b]``. It is an :class:`~tokbench.types.Audio` (one waveform per item), so any
    adapter can take it; prompt-aware vocoders split it back with :meth:`item_segments`."""

    segments: list[tuple[int, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.segments) != self.batch_size:
            raise ValueError(f"{self.batch_size} prompts but {len(self.segments)} segment lists")
        for b, seg in enumerate(self.segments):
            if sum(seg) != int(self.lengths[b]) or any(n < 0 for n in seg):
                raise ValueError(f"prompt {b}: segment lengths {list(seg)} do not add up to its "
                                 f"length {int(self.lengths[b])}")

    def item_segments(self, i: int) -> list[torch.Tensor]:
        """The utterances of prompt ``i``, in order."""
        return list(torch.split(self.item(i), list(self.segments[i])))

    @classmethod
    def from_segments(cls, items: Sequence[Sequence[torch.Tensor]], sample_rate: int) -> PromptAudio:
        """Batch prompts given as lists of 1-D waveforms (one list per item)."""
        if not items:
            raise ValueError("cannot batch an empty list of prompts")
        joined = [torch.cat([s.reshape(-1).to(torch.float32) for s in segs]) if segs
                  else torch.zeros(0) for segs in items]
        base = Audio.from_list(joined, sample_rate)
        return cls(base.wav, base.lengths, sample_rate,
                   [tuple(int(s.numel()) for s in segs) for segs in items])

    def to(self, device: torch.device | str) -> PromptAudio:
        return PromptAudio(self.wav.to(device), self.lengths.to(device), self.sample_rate,
                           list(self.segments))


@runtime_checkable
class Tokenizer(Protocol):
    """What every adapter provides. ``embed`` is optional (capability ``embed``)."""

    meta: TokenizerMeta

    def encode(self, wav: torch.Tensor, lengths: torch.Tensor) -> Tokens: ...

    def decode(self, tokens: Tokens, prompt: Audio | None = None) -> Audio: ...


class TokenizerBase:
    """Convenience base class for adapters.

    Subclasses set ``Options`` (a dataclass of the variant's settings, whose fields are what
    presets and ``--set`` may change) and implement ``describe`` (static metadata, no weights
    loaded, so ``tokbench list`` can show bitrates) plus ``encode``/``decode``.
    """

    Options: ClassVar[type]
    meta: TokenizerMeta
    #: batched vs one-at-a-time (docs/adapter-contract.md); exact unless an adapter declares less
    batch_tolerance: ClassVar[BatchTolerance] = BatchTolerance()
    #: optional Python packages the family imports when it loads: import name -> the extra that
    #: installs it (``pip install 'tokbench[extra]'``); ``tokbench list tokenizers`` checks them
    #: without importing them
    packages: ClassVar[Mapping[str, str]] = {}

    def __init__(self, options: Any, *, device: str = "cpu", checkpoint: str | None = None):
        self.options = options
        self.device = device
        self.checkpoint = checkpoint
        self.meta = self.describe(options)

    @classmethod
    def describe(cls, options: Any) -> TokenizerMeta:
        raise NotImplementedError

    @classmethod
    def missing(cls, options: Any) -> str | None:
        """What this variant lacks to run here, found without loading or importing anything
        heavy (None: nothing). Weights are not checked here: the engine reads them from
        ``describe(options).source``. Default: the first of ``packages`` not installed."""
        import importlib.util

        for module, extra in cls.packages.items():
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                return f"the package {module!r}: pip install 'tokbench[{extra}]'"
        return None

    def encode(self, wav: torch.Tensor, lengths: torch.Tensor) -> Tokens:
        raise NotImplementedError

    def decode(self, tokens: Tokens, prompt: Audio | None = None) -> Audio:
        raise NotImplementedError(f"{self.meta.name} cannot decode")

    def embed(self, tokens: Tokens) -> torch.Tensor:
        raise NotImplementedError(f"{self.meta.name} has no embeddings")

    @classmethod
    def build_tiny_checkpoint(cls, folder: Path) -> Path | None:
        """Tests: build a tiny random checkpoint of this model in the empty ``folder`` and return
        what ``--checkpoint`` takes (None: the tokenizer has no weights). Keeps the real sample
        rate, hop, frame rate, number and size of codebooks; only widths and depths shrink; VQ
        codebooks hold seeded random values (docs/adding-a-tokenizer.md). Built once per class
        and test session, so it may serve every preset of the class."""
        raise NotImplementedError(f"{cls.__qualname__} declares no tiny checkpoint "
                                  "(build_tiny_checkpoint; docs/adding-a-tokenizer.md)")

    @classmethod
    def tiny_overrides(cls, folder: Path, options: Any) -> dict[str, Any]:
        """Tests: option overrides a preset needs to run on the tiny checkpoint built in
        ``folder`` (e.g. a centroid file); none by default."""
        return {}

    def check_input(self, wav: torch.Tensor, lengths: torch.Tensor) -> None:
        """Validate an encode() call: mono float batch ``[B, T]`` with matching lengths."""
        if wav.dim() != 2:
            raise ValueError(f"{self.meta.name}.encode expects wav [B, T], got {tuple(wav.shape)}")
        if not wav.is_floating_point():
            raise TypeError(f"{self.meta.name}.encode expects float audio, got {wav.dtype}")
        _check_lengths(lengths, wav.shape[0], wav.shape[1], "sample")


__all__ = ["CAPABILITIES", "KINDS", "Audio", "BatchTolerance", "Kind", "ModelSource", "PromptAudio",
           "Tokenizer", "TokenizerBase", "TokenizerMeta", "TokenizerSetupError", "Tokens"]
