"""tokbench: one harness that scores every discrete audio tokenizer the same way.

Notebook use::

    import tokbench
    df = tokbench.load_results("results")
    table = tokbench.summarize(df)
"""

from __future__ import annotations

import warnings as _warnings
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# pyworld (F0 metrics) and webrtcvad (via resemblyzer) import pkg_resources, which setuptools
# 80 deprecates with a warning at its first import in every process: every run and every metric
# worker printed it. Only that warning from those two modules is silenced (pyproject pins
# setuptools<81, which still ships pkg_resources).
def filter_known_warnings() -> None:
    """Silence the warnings tokbench knows to be noise (installed when tokbench is imported)."""
    _warnings.filterwarnings("ignore", message="pkg_resources is deprecated as an API",
                             category=UserWarning, module=r"(pyworld|webrtcvad)\b")


filter_known_warnings()

_LAZY = {
    "load_results": "tokbench.results",
    "summarize": "tokbench.results",
    "compare": "tokbench.results",
    "runs_table": "tokbench.results",
    "filter_results": "tokbench.results",
    "load_tokenizer": "tokbench.resolve",
    "open_dataset": "tokbench.data",
    "run": "tokbench.run.runner",
}

if TYPE_CHECKING:
    from tokbench.data import open_dataset
    from tokbench.resolve import load_tokenizer
    from tokbench.results import compare, filter_results, load_results, runs_table, summarize
    from tokbench.run.runner import run


def __getattr__(name: str) -> Any:
    # Lazy so that `import tokbench` (and the CLI's start-up) does not pull in pandas or torch.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tokbench' has no attribute {name!r}")


__all__ = ["__version__", "compare", "filter_results", "load_results", "load_tokenizer",
           "open_dataset", "run", "runs_table", "summarize"]
