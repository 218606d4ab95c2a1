"""Optional dependencies: import a package that an optional extra installs, or say how to get it.

Adapters import their tokenizer's own package lazily (``tokbench list`` and the report must work
without it) through :func:`require`, so a missing package is one clear error that names the
extra to install instead of an ``ImportError`` traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from tokbench.meta import TokenizerSetupError


class MissingExtraError(TokenizerSetupError, ImportError):
    """A package that an optional extra provides is not installed (or cannot load)."""


def install_hint(extra: str) -> str:
    return f"pip install 'tokbench[{extra}]'"


def require(module: str, extra: str, *, needs: str = "", system: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``extra``.

    ``needs`` says what needs it (e.g. "the opus tokenizer"); ``system`` names a system library
    the package loads at import (e.g. "libopus: apt-get install libopus0"), since a binding that
    is installed but cannot find its library fails at import too.
    """
    try:
        return importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - bindings raise plain Exception when a library is missing
        who = f"{needs} needs" if needs else "this needs"
        installed = importlib.util.find_spec(module.split(".")[0]) is not None
        if installed and system:
            msg = (f"{who} the Python package {module!r}, which is installed but cannot load "
                   f"({exc}); install the system library {system}")
        else:
            msg = f"{who} the Python package {module!r}: {install_hint(extra)}"
            if system:
                msg += f" (and the system library {system})"
        raise MissingExtraError(msg) from exc
