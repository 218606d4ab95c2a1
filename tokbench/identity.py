"""A run's identity: everything that can change its numbers, beyond names and options.

The runner adds these to the :class:`~tokbench.results.store.RunSpec` (whose hash names the run
folder), so a change to any of them is a new run, never a resume with the old figures:

- ``code``: the adapter's code version, the class's declared ``version`` (if any) plus a SHA-256
  of the source of every module its tokens pass through: the class's own module, the modules
  of its base classes, and (transitively) the adapter modules those import
  (``tokbench.adapters.*``, or the plug-in file's own package). Hashing source rather than
  trusting a declared version alone means an edit nobody remembered to version still re-runs;
  the declared version lets an author force a new identity for a change outside Python (e.g.
  a data file). Editing a comment also re-runs: the safe side.
- ``libraries``: versions of the installed libraries that compute tokens and metrics
  (:data:`IDENTITY_LIBRARIES` plus any the adapter class lists in ``packages``).
- ``selection``: the utterances scored (their number and a hash of their ids), so ``--limit 4``
  after a full run is its own run with its own n.

The dataset (full-content fingerprint, :mod:`tokbench.io.fingerprint`) and the protocol are
already part of the spec.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
import types
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from importlib import metadata
from typing import Any

# Libraries whose version can change a token or a metric value.
IDENTITY_LIBRARIES = ("torch", "numpy", "soundfile", "soxr", "scipy", "pesq", "pystoi", "pyworld",
                      "jiwer", "openai-whisper", "resemblyzer", "transformers", "tokenizers",
                      "webrtcvad", "pyloudnorm")


@cache
def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def library_versions(names: Iterable[str] = IDENTITY_LIBRARIES) -> dict[str, str | None]:
    """Installed versions (None: not installed) of ``names``."""
    return {name: _version(name) for name in names}


def _package_prefix(module_name: str) -> str:
    """Modules under this prefix belong to the adapter's code (its family's helpers)."""
    if module_name.startswith("tokbench.adapters"):
        return "tokbench.adapters"
    return module_name.split(".")[0]


def _modules_reached(cls: type) -> list[types.ModuleType]:
    """The class's module, its base classes' modules, and the adapter modules they import."""
    prefix = _package_prefix(cls.__module__)
    todo: list[types.ModuleType] = []
    for klass in cls.__mro__:
        mod = sys.modules.get(klass.__module__)
        if mod is not None and (klass.__module__.startswith(("tokbench", prefix))
                                or klass is cls):
            todo.append(mod)
    seen: dict[str, types.ModuleType] = {}
    while todo:
        mod = todo.pop()
        if mod.__name__ in seen:
            continue
        seen[mod.__name__] = mod
        for value in vars(mod).values():
            name = value.__name__ if isinstance(value, types.ModuleType) else \
                getattr(value, "__module__", None)
            if isinstance(name, str) and name.startswith(prefix) and name not in seen:
                target = sys.modules.get(name)
                if target is not None:
                    todo.append(target)
    return [seen[k] for k in sorted(seen)]


def adapter_code_version(cls: type) -> dict[str, Any]:
    """``{"declared": cls.version or None, "source_sha256": ..., "modules": [...]}``."""
    h = hashlib.sha256()
    names = []
    for mod in _modules_reached(cls):
        try:
            source = inspect.getsource(mod)
        except (OSError, TypeError):
            source = f"<no source: {mod.__name__}>"
        names.append(mod.__name__)
        h.update(f"{mod.__name__}\0".encode() + source.encode() + b"\0")
    declared = getattr(cls, "version", None)
    return {"declared": None if declared is None else str(declared),
            "source_sha256": h.hexdigest()[:16], "modules": names}


def code_token(code: Mapping[str, Any]) -> str:
    """The short text of a code version that goes into cache keys."""
    return f"{code.get('declared')}:{code.get('source_sha256')}"


def selection(utterance_ids: Sequence[str]) -> dict[str, Any]:
    """Which utterances a run covers: their number and a hash of their ids, in order."""
    digest = hashlib.sha256("\n".join(utterance_ids).encode()).hexdigest()[:16]
    return {"n_utterances": len(utterance_ids), "ids_sha256": digest}


def identity_fields(adapter_cls: type | None, utterance_ids: Sequence[str],
                    extra_packages: Iterable[str] = ()) -> dict[str, Any]:
    """The RunSpec fields this module adds: ``code``, ``libraries`` and ``selection``."""
    packages = list(IDENTITY_LIBRARIES)
    if adapter_cls is not None:
        packages += [p for p in getattr(adapter_cls, "packages", ()) if p not in packages]
    packages += [p for p in extra_packages if p not in packages]
    code = adapter_code_version(adapter_cls) if adapter_cls is not None else {}
    return {"code": code, "libraries": library_versions(packages),
            "selection": selection(list(utterance_ids))}
