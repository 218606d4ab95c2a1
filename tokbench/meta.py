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
        object.__setattr__(self, "codebook_sizes", tuple(int(s) for s in self.codebook_sizes))
        object.__setattr__(self, "capabilities", frozenset(self.capabilities))
        object.__setattr__(self, "frame_rate", float(self.frame_rate))
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    @property
    def bitrate_nominal(self) -> float:
        """Bits per second if every code were equiprobable: frame_rate x sum(log2 |codebook|)."""
        return self.frame_rate * sum(math.log2(s) for s in self.codebook_sizes)

    @property
    def token_rate(self) -> float:
        """Tokens per second (all codebooks)."""
        return self.frame_rate * self.n_codebooks

    def can(self, capability: str) -> bool:
        return capability in self.capabilities

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "kind": self.kind,
            "sample_rate": self.sample_rate,
            "frame_rate": self.frame_rate,
            "n_codebooks": self.n_codebooks,
            "codebook_sizes": list(self.codebook_sizes),
            "streamable": self.streamable,
            "capabilities": sorted(self.capabilities),
            "source": self.source.to_dict(),
            "license": self.license,
            "citation": self.citation,
            "options": dict(self.options),
            "bitrate_nominal": self.bitrate_nominal,
            "token_rate": self.token_rate,
        }


class TokenizerSetupError(Exception):
    """A tokenizer cannot be built as asked: weights not cached while offline, an optional
    package not installed, centroids missing, a checkpoint that does not fit. The message names
    the cause and the fix; the CLI prints it as one line (exit 2), never as a traceback."""
