"""Options: presets and ``--set key=value`` overrides resolved into explicit, typed settings.

Tokenizers and tasks declare their settings as a dataclass (``Options``). A preset is a dict of
field values; ``--set`` strings are coerced to the field's declared type. The resolved dataclass
is what the component receives and what the results record, so no setting is ever implicit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from tokbench.registry import suggest


class OptionError(ValueError):
    """An override names an unknown option or has a value of the wrong type."""


def parse_overrides(pairs: Iterable[str]) -> dict[str, str]:
    """Parse ``["k=v", ...]`` (as given to ``--set``) into a dict; later keys win."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OptionError(f"--set expects key=value, got {pair!r}")
        out[key] = value.strip()
    return out


def _coerce(value: Any, annotation: Any, name: str) -> Any:
    """Coerce ``value`` (often a string from the command line) to ``annotation``."""
    if isinstance(annotation, str):  # postponed annotations are resolved by the caller
        raise TypeError(f"unresolved annotation for {name}: {annotation}")
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, name)
            except (OptionError, ValueError, TypeError) as exc:
                errors.append(str(exc))
        raise OptionError(f"option {name}={value!r}: " + "; ".join(errors))
    if origin is typing.Literal:
        for choice in args:
            try:
                if _coerce(value, type(choice), name) == choice:
                    return choice
            except (OptionError, ValueError):
                continue
        raise OptionError(f"option {name}={value!r} must be one of {list(args)}")
    if origin in (tuple, list):
        items = value
        if isinstance(value, str):
            items = [v for v in value.replace(";", ",").split(",") if v.strip()]
        inner = args[0] if args else str
        coerced = [_coerce(v, inner, name) for v in items]
        return tuple(coerced) if origin is tuple else coerced
    if annotation is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise OptionError(f"option {name}={value!r} must be true or false")
    if annotation is int:
        if isinstance(value, bool):
            raise OptionError(f"option {name}={value!r} must be an integer")
        if isinstance(value, float) and not value.is_integer():
            raise OptionError(f"option {name}={value!r} must be an integer")
        try:
            return int(value)
        except ValueError:
            raise OptionError(f"option {name}={value!r} must be an integer") from None
    if annotation is float:
        try:
            return float(value)
        except ValueError:
            raise OptionError(f"option {name}={value!r} must be a number") from None
    if annotation is str:
        return str(value)
    if annotation is Any:
        return value
    return value


def option_fields(options_type: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(options_type)}


def build_options(
    options_type: type, preset: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None
) -> Any:
    """Instantiate ``options_type`` from preset values updated by overrides, type-checked."""
    hints = typing.get_type_hints(options_type)
    known = option_fields(options_type)
    values: dict[str, Any] = {}
    for source in (preset or {}, overrides or {}):
        for key, value in source.items():
            if key not in known:
                raise OptionError(
                    f"unknown option {key!r} for {options_type.__qualname__}"
                    f"{suggest(key, known)}; known options: {', '.join(sorted(known)) or 'none'}"
                )
            values[key] = _coerce(value, hints[key], key)
    try:
        return options_type(**values)
    except (TypeError, ValueError) as exc:
        raise OptionError(f"{options_type.__qualname__}: {exc}") from None


def split_overrides(
    overrides: Mapping[str, Any], *option_types: type,
    names: tuple[str, ...] = ("tokenizer", "task"),
) -> list[dict[str, Any]]:
    """Route each override to the options type that declares it.

    ``tokbench run --set k=v`` applies to both the tokenizer and the task; every key must be
    declared by exactly one of them. A key both declare (e.g. ``seed``) is ambiguous: it is an
    error that suggests the prefixed forms ``tokenizer.KEY=`` / ``task.KEY=`` (``names[i]`` is
    the prefix of ``option_types[i]``), which always route to the one named.
    """
    routed: list[dict[str, Any]] = [{} for _ in option_types]
    all_known: set[str] = set()
    for t in option_types:
        all_known |= set(option_fields(t))
    prefixes = dict(zip(names, range(len(option_types)), strict=False))
    for key, value in overrides.items():
        prefix, dot, bare = key.partition(".")
        if dot and prefix in prefixes:
            i = prefixes[prefix]
            known = option_fields(option_types[i])
            if bare not in known:
                raise OptionError(
                    f"unknown --set option {key!r}: the {prefix} has no option {bare!r}"
                    f"{suggest(bare, known)}; it accepts: {', '.join(sorted(known)) or 'nothing'}")
            routed[i][bare] = value
            continue
        owners = [i for i, t in enumerate(option_types) if key in option_fields(t)]
        if len(owners) > 1:
            forms = " or ".join(f"--set {names[i]}.{key}={value}" for i in owners if i < len(names))
            raise OptionError(f"--set {key}={value} is ambiguous: both the "
                              + " and the ".join(names[i] for i in owners if i < len(names))
                              + f" have an option {key!r}; say which: {forms}")
        if not owners:
            raise OptionError(
                f"unknown --set option {key!r}{suggest(key, all_known)}; "
                f"this tokenizer and task accept: {', '.join(sorted(all_known)) or 'nothing'}"
            )
        routed[owners[0]][key] = value
    return routed


def options_dict(options: Any) -> dict[str, Any]:
    """JSON-ready dict of a resolved options dataclass."""
    out = {}
    for key, value in dataclasses.asdict(options).items():
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def stable_hash(obj: Any, length: int = 12) -> str:
    """Short, stable hash of a JSON-serialisable object (sorted keys)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
