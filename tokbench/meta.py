"""Static tokenizer metadata (contract: docs/adapter-contract.md), without torch.

``TokenizerMeta`` describes a tokenizer variant before any weights load, so ``tokbench list``,
the results store and the reporter can read it without importing torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal

Kind = Literal["acoustic", "semantic", "hybrid", "reference"]
KINDS: tuple[str, ...] = ("reference", "acoustic", "semantic", "hybrid")
CAPABILITIES: frozenset[str] = frozenset({"decode", "speaker_prompt", "embed"})


@dataclass(frozen=True)
class ModelSource:
    """Where the weights came from: repo id (or URL), the requested and the resolved revision."""

    repo_id: str | None = None
    revision: str | None = None
    resolved: str | None = None
    url: str | None = None
    local_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class TokenizerMeta:
    """Static description of a tokenizer variant. Frozen: an adapter never mutates it."""

    name: str
    family: str
    kind: Kind
    sample_rate: int
    frame_rate: float
    n_codebooks: int
    codebook_sizes: tuple[int, ...]
    streamable: bool = False
    capabilities: frozenset[str] = frozenset({"decode"})
    source: ModelSource = field(default_factory=ModelSource)
    license: str = ""
    citation: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    #: Multi-rate tokenizers (SNAC): codebook q has one code every ``codebook_strides[q]`` frames
    #: of ``frame_rate`` (the rate of the fastest codebook). Empty = every codebook at
    #: ``frame_rate``. Layout (docs/adapter-contract.md): ``codes[b, q, f]`` is the code of
    #: codebook q in force at frame f, so a slow code is repeated over its ``stride`` frames and
    #: all codebooks stay time-aligned; the tokens of codebook q are ``codes[b, q, ::stride]``.
    codebook_strides: tuple[int, ...] = ()
    #: the rate ``decode`` returns audio at, when it is not ``sample_rate`` (NeuCodec: 16 kHz
    #: in, 24 kHz out); decoded lengths are the input lengths at that rate
    output_sample_rate: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        unknown = set(self.capabilities) - CAPABILITIES
        if unknown:
            raise ValueError(f"unknown capabilities {sorted(unknown)}; known: {sorted(CAPABILITIES)}")
        if len(self.codebook_sizes) != self.n_codebooks:
            raise ValueError(
                f"{self.name}: {self.n_codebooks} codebooks but {len(self.codebook_sizes)} sizes"
            )
        if self.sample_rate <= 0 or self.frame_rate <= 0:
            raise ValueError(f"{self.name}: sample_rate and frame_rate must be positive")
        if self.output_sample_rate is not None and int(self.output_sample_rate) <= 0:
            raise ValueError(f"{self.name}: output_sample_rate must be positive")
        if self.output_sample_rate == self.sample_rate:  # one spelling per meaning
            object.__setattr__(self, "output_sample_rate", None)
        object.__setattr__(self, "codebook_sizes", tuple(int(s) for s in self.codebook_sizes))
        strides = tuple(int(s) for s in self.codebook_strides)
        if strides and (len(strides) != self.n_codebooks or min(strides) < 1):
            raise ValueError(f"{self.name}: codebook_strides must hold one positive stride per "
                             f"codebook ({self.n_codebooks}), got {list(strides)}")
        if strides and min(strides) != 1:
            raise ValueError(f"{self.name}: frame_rate is the rate of the fastest codebook, so the "
                             f"smallest codebook stride must be 1, got {list(strides)}")
        # all-ones is the single-rate default: one spelling per meaning
        object.__setattr__(self, "codebook_strides", () if set(strides) <= {1} else strides)
        object.__setattr__(self, "capabilities", frozenset(self.capabilities))
        object.__setattr__(self, "frame_rate", float(self.frame_rate))
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    @property
    def decoded_rate(self) -> int:
        """The sample rate of decoded audio."""
        return int(self.output_sample_rate or self.sample_rate)

    def decoded_length(self, input_length: int) -> int:
        """Samples ``decode`` returns for an input of ``input_length`` samples."""
        if self.output_sample_rate is None:
            return int(input_length)
        return int(round(input_length * self.output_sample_rate / self.sample_rate))

    @property
    def strides(self) -> tuple[int, ...]:
        """The stride of every codebook in frames (all 1 for a single-rate tokenizer)."""
        return self.codebook_strides or (1,) * self.n_codebooks

    @property
    def multi_rate(self) -> bool:
        return bool(self.codebook_strides)

    @property
    def codebook_rates(self) -> tuple[float, ...]:
        """Codes per second of each codebook: ``frame_rate / stride``."""
        return tuple(self.frame_rate / s for s in self.strides)

    @property
    def bitrate_nominal(self) -> float:
        """Bits per second if every code were equiprobable: sum over codebooks of
        rate x log2 |codebook| (= frame_rate x sum(log2 |codebook|) for a single rate)."""
        return sum(r * math.log2(s) for r, s in zip(self.codebook_rates, self.codebook_sizes,
                                                     strict=True))

    @property
    def token_rate(self) -> float:
        """Tokens per second (all codebooks, each at its own rate)."""
        return sum(self.codebook_rates)

    def tokens_in(self, n_frames: int) -> int:
        """How many tokens ``n_frames`` valid frames hold: sum over codebooks of
        ``ceil(n_frames / stride)`` (a partial slow frame at the end is one token)."""
        return sum(-(-int(n_frames) // s) for s in self.strides)

    def codebook_tokens(self, codes: Any, q: int) -> Any:
        """The tokens of codebook ``q`` in one item's valid codes ``[Q, F]`` (numpy or torch):
        every ``stride``-th frame, i.e. each slow code once."""
        return codes[q, :: self.strides[q]]

    def can(self, capability: str) -> bool:
        return capability in self.capabilities

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "kind": self.kind,
            "sample_rate": self.sample_rate,
            "output_sample_rate": self.decoded_rate,
            "frame_rate": self.frame_rate,
            "n_codebooks": self.n_codebooks,
            "codebook_sizes": list(self.codebook_sizes),
            "streamable": self.streamable,
            "capabilities": sorted(self.capabilities),
            "source": self.source.to_dict(),
            "license": self.license,
            "citation": self.citation,
            "options": dict(self.options),
            **({"codebook_strides": list(self.codebook_strides),
                "codebook_rates": list(self.codebook_rates)} if self.multi_rate else {}),
            "bitrate_nominal": self.bitrate_nominal,
            "token_rate": self.token_rate,
        }


class TokenizerSetupError(Exception):
    """A tokenizer cannot be built as asked: weights not cached while offline, an optional
    package not installed, centroids missing, a checkpoint that does not fit. The message names
    the cause and the fix; the CLI prints it as one line (exit 2), never as a traceback."""
