"""Reading suite files: built-in names or paths, ``include:`` merging, the :class:`Suite` object.

``include:`` works like lm-eval's task configs: the included files (a path relative to the
including file, or the name of a built-in suite) are read first, in order, and the including
file's keys are laid over them; mappings merge key by key, any other value replaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tokbench.registry import suggest
from tokbench.suites.schema import SuiteError, validate

BUILTIN_PACKAGE = "tokbench.suites"
BUILTIN_FOLDER = "builtin"
MAX_INCLUDE_DEPTH = 16


def builtin_dir() -> Path:
    return Path(str(resources.files(BUILTIN_PACKAGE).joinpath(BUILTIN_FOLDER)))


def builtin_names() -> list[str]:
    """Built-in suites (files starting with ``_`` are fragments for ``include:``, not suites)."""
    return sorted(p.stem for p in builtin_dir().glob("*.yaml") if not p.name.startswith("_"))


@dataclass(frozen=True)
class TokenizerEntry:
    """One tokenizer of a suite: a preset, its overrides, and the reference row it reproduces."""

    preset: str
    label: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    row: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Selector:
    """``tokenizers: {registered: defaults, capability: decode}``: chosen from the registry."""

    capability: str | None = None
    exclude: tuple[str, ...] = ()


@dataclass
class Suite:
    name: str
    source: Path
    description: str
    dataset: str | None
    limit: int | None
    tasks: dict[str, dict[str, Any]]
    tokenizers: list[TokenizerEntry] | Selector
    metrics: list[str]
    protocol_expect: dict[str, Any]
    protocol_differences: list[str]
    reference: str | None
    reference_note: str
    files: list[Path]  # the suite file and every file it includes, in reading order

    @property
    def is_builtin(self) -> bool:
        return self.source.parent == builtin_dir()


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML ({exc})") from None
    except OSError as exc:
        raise SuiteError(f"{path}: cannot be read ({exc})") from None


def find_suite_file(ref: str, relative_to: Path | None = None) -> Path:
    """A suite reference: a path (``.yaml``/``.yml``), or a built-in suite's name."""
    candidates = []
    path = Path(ref).expanduser()
    if relative_to is not None and not path.is_absolute():
        candidates.append(relative_to / path)
    candidates.append(path)
    for c in candidates:
        if c.is_file():
            return c.resolve()
    if path.suffix in (".yaml", ".yml"):
        where = f" (relative to {relative_to})" if relative_to is not None else ""
        raise SuiteError(f"suite file {ref} does not exist{where}")
    builtin = builtin_dir() / f"{ref}.yaml"
    if builtin.is_file():
        return builtin
    names = builtin_names()
    raise SuiteError(f"unknown suite {ref!r}{suggest(ref, names)}; built-in suites: "
                     f"{', '.join(names)} (see `tokbench suite list`), or pass a .yaml file")


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _load_merged(path: Path, chain: tuple[Path, ...], files: list[Path]) -> dict[str, Any]:
    if path in chain:
        cycle = " -> ".join(p.name for p in (*chain, path))
        raise SuiteError(f"{chain[-1]}: include: cycle {cycle}")
    if len(chain) >= MAX_INCLUDE_DEPTH:
        raise SuiteError(f"{path}: include: nested more than {MAX_INCLUDE_DEPTH} deep")
    data = _read_yaml(path)
    if data is None:
        data = {}
    validate(data, path, merged=False)
    files.append(path)
    includes = data.pop("include", None) or []
    if isinstance(includes, str):
        includes = [includes]
    merged: dict[str, Any] = {}
    for ref in includes:
        try:
            inc = find_suite_file(ref, relative_to=path.parent)
        except SuiteError as exc:
            raise SuiteError(f"{path}: include: {exc}") from None
        merged = _merge(merged, _load_merged(inc, (*chain, path), files))
    return _merge(merged, data)


def _entries(raw: Any) -> list[TokenizerEntry] | Selector:
    if isinstance(raw, dict):
        return Selector(capability=raw.get("capability"), exclude=tuple(raw.get("exclude") or ()))
    entries = []
    for item in raw:
        item = {"preset": item} if isinstance(item, str) else item
        overrides = dict(item.get("set") or {})
        label = item.get("label") or item["preset"] + "".join(
            f"+{k}={v}" for k, v in sorted(overrides.items()))
        entries.append(TokenizerEntry(
            preset=item["preset"], label=label, overrides=overrides,
            checkpoint=item.get("checkpoint"), row=dict(item.get("row") or {}),
            note=item.get("note") or ""))
    return entries


def load_suite(ref: str | Path) -> Suite:
    """Read, merge and validate a suite (a built-in name or a YAML file)."""
    path = find_suite_file(str(ref))
    files: list[Path] = []
    data = _load_merged(path, (), files)
    validate(data, path, merged=True)
    raw_tasks = data["tasks"]
    tasks = ({name: {} for name in raw_tasks} if isinstance(raw_tasks, list)
             else {name: dict(opts or {}) for name, opts in raw_tasks.items()})
    entries = _entries(data["tokenizers"])
    if isinstance(entries, list):
        labels = [e.label for e in entries]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise SuiteError(f"{path}: tokenizers: the labels {', '.join(dupes)} appear more than "
                             "once; give each entry its own label:")
    protocol = data.get("protocol") or {}
    reproduces = data.get("reproduces") or {}
    return Suite(
        name=data.get("name") or path.stem, source=path,
        description=data.get("description") or "", dataset=data.get("dataset"),
        limit=data.get("limit"), tasks=tasks, tokenizers=entries,
        metrics=list(data.get("metrics") or []),
        protocol_expect=dict(protocol.get("expect") or {}),
        protocol_differences=list(protocol.get("differences") or []),
        reference=reproduces.get("reference"), reference_note=reproduces.get("note") or "",
        files=files,
    )


def list_suites(extra: Iterable[Path] = ()) -> list[Suite | SuiteError]:
    """Every built-in suite (and any extra files), loaded; a broken one is returned as its error."""
    out: list[Suite | SuiteError] = []
    for ref in [*builtin_names(), *map(str, extra)]:
        try:
            out.append(load_suite(ref))
        except SuiteError as exc:
            out.append(exc)
    return out
