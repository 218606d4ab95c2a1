"""Lazy registries: tokenizers, tasks, datasets (name -> "module:Class"), CLI sub-commands.

Nothing heavy is imported until an entry is loaded, so ``tokbench list`` is fast and a broken
optional dependency only breaks the adapter that needs it. Built-in entries are registered by
importing a small table module (``tokbench.adapters``, ``tokbench.tasks``, ...) on first use;
third-party tokenizers plug in through the ``tokbench.adapters`` entry-point group or a file
path (``--adapter path/to/file.py:Class``).

Tokenizer presets are declared beside the adapter that serves them, as a ``presets`` class
attribute (``{"mimi": preset("summary", n_codebooks=8), ...}``); the registry finds them by
importing each module of the ``tokbench.adapters`` package once, on first use. Family modules
import their heavy dependencies (transformers, a codec package) only when a model loads, and a
module that fails to import is reported (``Registry.broken``) without hiding the others.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A registry lookup failed; the message carries a 'did you mean' suggestion."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def suggest(name: str, candidates: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest candidate, or '' if nothing is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.5)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(repr(m) for m in matches) + "?)"


def import_target(target: str) -> Any:
    """Import ``"package.module:Attr"`` (``Attr`` may be dotted)."""
    module_name, sep, attr = target.partition(":")
    if not sep:
        raise ValueError(f"target must look like 'module:Class', got {target!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def import_file_target_module(path_text: str) -> Any:
    """Import the Python file ``path_text`` as a module, e.g. a plug-in adapter or metric outside
    any package. Each call executes the file again (an edited plug-in is what runs)."""
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    module_name = f"tokbench_plugin_{path.stem}_{abs(hash(str(path))) & 0xFFFFFF:x}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def import_file_target(spec: str) -> Any:
    """Import ``"path/to/file.py:Class"``, e.g. a plug-in adapter outside any package."""
    path_text, sep, attr = spec.rpartition(":")
    if not sep or not path_text.endswith(".py"):
        raise ValueError(f"expected path/to/file.py:Class, got {spec!r}")
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"adapter file {path} does not exist")
    module = import_file_target_module(str(path))
    try:
        return getattr(module, attr)
    except AttributeError:
        names = [n for n in vars(module) if not n.startswith("_")]
        raise AttributeError(f"{path} has no {attr!r}{suggest(attr, names)}") from None


def package_module(target: str, name: str) -> str | None:
    """Module ``name`` beside a component registered under ``target`` (``module:Class``), in its
    own package: ``pkg.name`` for ``pkg.task:Class`` (or ``pkg:Class`` where ``pkg`` is a
    package); None for a single module or a file target. E.g. a task package's ``report`` or
    ``metrics`` module. Finds the module's name without importing it."""
    module = target.partition(":")[0]
    if module.endswith(".py"):
        return None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations is not None:  # the component's package itself
        return f"{module}.{name}"
    package, _, leaf = module.rpartition(".")
    return f"{package}.{name}" if package and leaf == "task" else None


@dataclass(frozen=True)
class Entry:
    """A registered component: where to import it from and the preset values it is built with."""

    name: str
    target: str
    summary: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    origin: str = "builtin"

    def load(self) -> Any:
        if self.target.partition(":")[0].endswith(".py"):
            return import_file_target(self.target)
        return import_target(self.target)


@dataclass(frozen=True)
class Preset:
    """A named variant declared beside its adapter class (``presets`` class attribute)."""

    summary: str
    options: Mapping[str, Any] = field(default_factory=dict)


def preset(summary: str, **options: Any) -> Preset:
    """``presets = {"mimi": preset("Kyutai Mimi, 8 codebooks: 1.1 kbps", n_codebooks=8)}``."""
    return Preset(summary, options)


def declared_presets(module: Any) -> list[Entry]:
    """Entries for the ``presets`` declared by the classes a module (or package) defines; a
    class re-exported from elsewhere is left to its own module."""
    out, seen = [], set()
    own = (module.__name__, module.__name__ + ".")
    for obj in list(vars(module).values()):
        if not isinstance(obj, type) or "presets" not in vars(obj) or obj in seen:
            continue
        if not (obj.__module__ == own[0] or obj.__module__.startswith(own[1])):
            continue
        seen.add(obj)
        for name, p in vars(obj)["presets"].items():
            out.append(Entry(name=name, target=f"{obj.__module__}:{obj.__qualname__}",
                             summary=p.summary, options=dict(p.options)))
    return out


class Registry(Generic[T]):
    """A name -> item table, filled lazily from a built-in table module and an entry-point group.

    With ``discover``, every public module of the built-in package is imported on first use and
    the presets its classes declare are registered (see :func:`declared_presets`)."""

    def __init__(self, kind: str, builtins: str | tuple[str, ...] | None = None,
                 entry_point_group: str | None = None, *, discover: bool = False):
        self.kind = kind
        self._builtins = (builtins,) if isinstance(builtins, str) else tuple(builtins or ())
        self._group = entry_point_group
        self._discover = discover
        self._items: dict[str, T] = {}
        self._loaded = False
        #: module -> why it could not be imported (its presets are missing)
        self.broken: dict[str, str] = {}

    def _discover_presets(self, package: Any) -> None:
        # Sub-packages are walked too (adapters/ssl/units.py declares its presets like any
        # family module), so a family package need not import its adapters in __init__.
        def onerror(name: str) -> None:  # called inside the except clause of a failed import
            exc = sys.exc_info()[1]
            self.broken[name] = f"{type(exc).__name__}: {exc}"

        for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".", onerror=onerror):
            if any(part.startswith("_") for part in info.name.split(".")):
                continue
            try:
                module = importlib.import_module(info.name)
            except Exception as exc:  # one broken family must not hide the others
                self.broken[info.name] = f"{type(exc).__name__}: {exc}"
                continue
            for entry in declared_presets(module):
                known = self._items.get(entry.name)
                # a package that re-exports its adapters (classic) shows their presets twice
                if isinstance(known, Entry) and known.target == entry.target:
                    continue
                self.add(entry.name, entry)  # type: ignore[arg-type]

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self._builtins:
            package = importlib.import_module(module)
            if self._discover:
                self._discover_presets(package)
        if self._group:
            for ep in entry_points(group=self._group):
                if ep.name not in self._items:
                    self._items[ep.name] = self._from_entry_point(ep)  # type: ignore[assignment]

    def _from_entry_point(self, ep: Any) -> Any:
        return Entry(name=ep.name, target=ep.value, origin=f"entry point ({self._group})")

    def add(self, name: str, item: T, *, replace: bool = False) -> T:
        if name in self._items and not replace:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        self._ensure_loaded()
        try:
            return self._items[name]
        except KeyError:
            broken = "".join(f"; {module} failed to import ({why})"
                             for module, why in self.broken.items())
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{suggest(name, self._items)}; "
                f"run `tokbench list {self.kind}s` to see all {len(self._items)}{broken}"
            ) from None

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._items

    def names(self) -> list[str]:
        self._ensure_loaded()
        return list(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        self._ensure_loaded()
        return iter(list(self._items.items()))

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._items)


def register(registry: Registry[Entry], name: str, target: str, summary: str = "", **options: Any) -> Entry:
    """Register a lazily imported component under ``name`` with preset ``options``."""
    return registry.add(name, Entry(name=name, target=target, summary=summary, options=options))


tokenizers: Registry[Entry] = Registry("tokenizer", "tokbench.adapters", "tokbench.adapters",
                                       discover=True)
tasks: Registry[Entry] = Registry("task", "tokbench.tasks", "tokbench.tasks")
datasets: Registry[Entry] = Registry("dataset", "tokbench.data", "tokbench.datasets")
# Metrics have their own registry, of declarations: tokbench.metrics.kit.registry.
# Sub-commands that adapter families and tasks add to the CLI ("module:function", a typer
# command function); the CLI attaches them without importing any family or task itself.
commands: Registry[Entry] = Registry("command", ("tokbench.adapters", "tokbench.tasks"),
                                     "tokbench.commands")
