"""Resolving a tokenizer name (preset + ``--set`` overrides) into a class, options and metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from tokbench.options import OptionError, build_options, options_dict
from tokbench.registry import Entry, import_file_target, tokenizers
from tokbench.types import Tokenizer, TokenizerMeta


@dataclass(frozen=True)
class ResolvedTokenizer:
    """A preset resolved to explicit options, before any weights are loaded."""

    entry: Entry
    cls: Any  # an adapter class (TokenizerBase or any class with describe/Options)
    options: Any
    overrides: Mapping[str, Any]

    @cached_property
    def meta(self) -> TokenizerMeta:
        # described once per resolution (a sweep plans with it, the run then reuses it)
        return self.cls.describe(self.options)

    @property
    def variant(self) -> str:
        """The preset name as invoked, plus overrides: ``mimi+n_q=4``."""
        extra = "".join(f"+{k}={v}" for k, v in sorted(self.overrides.items()))
        return self.entry.name + extra

    def options_dict(self) -> dict[str, Any]:
        return options_dict(self.options)

    def load(self, device: str = "cpu", checkpoint: str | None = None) -> Tokenizer:
        return self.cls(self.options, device=device, checkpoint=checkpoint)


def register_adapter_file(spec: str) -> str:
    """Register ``path/to/file.py:Class`` as a tokenizer; returns the name it is registered under.

    The name is the class's ``name`` attribute if it has one, else the class name in lower case.
    """
    try:
        cls = import_file_target(spec)
    except (ValueError, FileNotFoundError, AttributeError, ImportError, SyntaxError) as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
        raise OptionError(f"--adapter {spec}: {type(exc).__name__}{where}: {exc}; the file must "
                          "define the class named after the colon (path/to/file.py:Class)") from None
    if not isinstance(cls, type):
        raise OptionError(f"--adapter {spec}: {cls!r} is not a class")
    name = getattr(cls, "name", None) or cls.__name__.lower()
    entry = Entry(name=name, target=spec, summary=(cls.__doc__ or "").strip().split("\n")[0],
                  origin=f"file {spec}")
    tokenizers.add(name, entry, replace=True)
    return name


def resolve_tokenizer(name: str, overrides: Mapping[str, Any] | None = None) -> ResolvedTokenizer:
    entry = tokenizers.get(name)
    cls = entry.load()
    overrides = dict(overrides or {})
    options = build_options(cls.Options, entry.options, overrides)
    return ResolvedTokenizer(entry, cls, options, overrides)


def load_tokenizer(
    name: str, overrides: Mapping[str, Any] | None = None, device: str = "cpu",
    checkpoint: str | None = None,
) -> Tokenizer:
    """Build a ready-to-use tokenizer from a preset name, e.g. ``load_tokenizer("mulaw")``."""
    return resolve_tokenizer(name, overrides).load(device=device, checkpoint=checkpoint)
