"""The suite file schema: which keys a suite YAML may hold, their types, and the checks.

A suite file is validated key by key; every problem is reported with the file and the key path
(``dates.yaml: tokenizers[2].set: expected a mapping, got a list``), all problems at once.
Names of presets, tasks and datasets are *not* checked here: a preset that this install does not
register is valid in a suite and reported as not available when the suite runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokbench.registry import suggest


class SuiteError(ValueError):
    """A suite file is malformed or cannot be found; the message names the file, key and fix."""


@dataclass(frozen=True)
class Key:
    """One key of a mapping: its check, whether the merged suite must have it, and its help."""

    check: Callable[[Any, str, list[str]], None]
    required: bool = False
    help: str = ""


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "true/false",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def string(value: Any, where: str, errors: list[str]) -> None:
    if not isinstance(value, str) or not value.strip():
        errors.append(f"{where}: expected a non-empty string, got {_type_name(value)}")


def optional_string(value: Any, where: str, errors: list[str]) -> None:
    if value is not None:
        string(value, where, errors)


def positive_int_or_null(value: Any, where: str, errors: list[str]) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        errors.append(f"{where}: expected a positive integer or null, got {value!r}")


def scalar_mapping(value: Any, where: str, errors: list[str]) -> None:
    """Option values: ``{name: scalar or list of scalars}`` (what ``--set`` could say)."""
    if value is None:
        return
    if not isinstance(value, dict):
        errors.append(f"{where}: expected a mapping of option: value, got {_type_name(value)}")
        return
    for k, v in value.items():
        if not isinstance(k, str):
            errors.append(f"{where}: option names are strings, got {k!r}")
        elif isinstance(v, dict):
            errors.append(f"{where}.{k}: an option value is a scalar or a list, not a mapping")
        elif isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v):
            errors.append(f"{where}.{k}: a list option holds scalars only")


def string_list(value: Any, where: str, errors: list[str]) -> None:
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
        errors.append(f"{where}: expected a list of strings, got {_type_name(value)}")


def string_or_list(value: Any, where: str, errors: list[str]) -> None:
    if isinstance(value, str):
        return
    string_list(value, where, errors)


def mapping_of(keys: Mapping[str, Key], *, open_keys: bool = False) -> Callable[[Any, str, list[str]], None]:
    """A check for a mapping with the given keys (unknown keys are errors unless ``open_keys``)."""

    def check(value: Any, where: str, errors: list[str]) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            errors.append(f"{where}: expected a mapping, got {_type_name(value)}")
            return
        check_keys(value, keys, where, errors, open_keys=open_keys)

    return check


def check_keys(value: Mapping[str, Any], keys: Mapping[str, Key], where: str, errors: list[str],
               *, open_keys: bool = False, required: bool = False) -> None:
    prefix = f"{where}." if where else ""
    for name, item in value.items():
        if name not in keys:
            if not open_keys:
                errors.append(f"{prefix}{name}: unknown key{suggest(str(name), keys)}; "
                              f"allowed: {', '.join(keys)}")
            continue
        keys[name].check(item, f"{prefix}{name}", errors)
    if required:
        for name, item in keys.items():
            if item.required and value.get(name) in (None, "", [], {}):
                errors.append(f"{prefix}{name}: required ({item.help})")


def tasks_check(value: Any, where: str, errors: list[str]) -> None:
    """``tasks: {recon: {options}, bpe: null}`` or ``tasks: [recon, bpe]``."""
    if isinstance(value, list):
        string_list(value, where, errors)
        return
    if not isinstance(value, dict):
        errors.append(f"{where}: expected a mapping task: options (or a list of task names), "
                      f"got {_type_name(value)}")
        return
    for name, options in value.items():
        scalar_mapping(options, f"{where}.{name}", errors)


ENTRY_KEYS: dict[str, Key] = {
    "preset": Key(string, True, "a registered preset name, see `tokbench list tokenizers`"),
    "label": Key(optional_string, help="the row's name in the summary (default: the variant)"),
    "set": Key(scalar_mapping, help="tokenizer option overrides, as --set key=value"),
    "checkpoint": Key(optional_string, help="local model folder instead of the Hub"),
    "row": Key(mapping_of({}, open_keys=True), help="the reference row reproduced: its label columns"),
    "note": Key(optional_string, help="why this entry is here or how it differs from the source"),
}

SELECTOR_KEYS: dict[str, Key] = {
    "registered": Key(string, True, "'defaults': the first preset registered for each adapter"),
    "capability": Key(optional_string, help="keep only presets whose tokenizer has it, e.g. decode"),
    "exclude": Key(string_list, help="presets to leave out"),
}


def tokenizers_check(value: Any, where: str, errors: list[str]) -> None:
    if isinstance(value, dict):
        check_keys(value, SELECTOR_KEYS, where, errors, required=True)
        if value.get("registered") not in (None, "defaults"):
            errors.append(f"{where}.registered: only 'defaults' is supported, got {value['registered']!r}")
        return
    if not isinstance(value, list):
        errors.append(f"{where}: expected a list of entries (or a registered: selector), got "
                      f"{_type_name(value)}")
        return
    for i, entry in enumerate(value):
        here = f"{where}[{i}]"
        if isinstance(entry, str):
            continue  # a bare preset name
        if not isinstance(entry, dict):
            errors.append(f"{here}: expected a preset name or a mapping, got {_type_name(entry)}")
            continue
        check_keys(entry, ENTRY_KEYS, here, errors, required=True)


SUITE_KEYS: dict[str, Key] = {
    "name": Key(string, help="the suite's name"),
    "description": Key(optional_string),
    "include": Key(string_or_list, help="other suite files merged under this one"),
    "reproduces": Key(mapping_of({
        "reference": Key(string, True, "stem of a results/reference/<stem>.json sidecar"),
        "table": Key(optional_string),
        "note": Key(optional_string),
    }), help="the published table the suite reproduces"),
    "dataset": Key(optional_string, help="a registered dataset (or pass --dataset)"),
    "limit": Key(positive_int_or_null, help="only the first N utterances"),
    "tasks": Key(tasks_check, True, "a mapping of task name to its options"),
    "metrics": Key(string_list, help="the metrics the report compares, in order"),
    "protocol": Key(mapping_of({
        "expect": Key(scalar_mapping, help="dotted protocol keys and the values the source used"),
        "differences": Key(string_list, help="known differences from the source's protocol"),
    }), help="the source's protocol, checked against what the runs record"),
    "tokenizers": Key(tokenizers_check, True, "a list of preset entries"),
}


def validate(data: Any, source: Path | str, *, merged: bool) -> None:
    """Raise :class:`SuiteError` listing every problem of one suite document.

    ``merged``: the document after its includes are merged (required keys are checked then;
    an included fragment may lack them).
    """
    if not isinstance(data, dict):
        raise SuiteError(f"{source}: a suite file holds a mapping of keys, got {_type_name(data)}")
    errors: list[str] = []
    check_keys(data, SUITE_KEYS, "", errors, required=merged)
    if errors:
        raise SuiteError(f"{source}: " + f"\n{source}: ".join(errors))
