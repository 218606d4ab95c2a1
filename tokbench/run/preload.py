"""Imported by the fork server of a preloaded :class:`tokbench.run.pool.MetricPool`: imports the
modules named in ``$TOKBENCH_PRELOAD`` once, so that every worker forked from it has them.

Each import is guarded: one that fails (a missing optional package, a broken native library)
is skipped here and fails in the worker that needs it, with its own error, as without preload.
"""

from __future__ import annotations

import gc
import importlib
import os

from tokbench.run.pool import PRELOAD_VARIABLE

for _name in filter(None, os.environ.pop(PRELOAD_VARIABLE, "").split(",")):
    try:
        importlib.import_module(_name)
    except Exception:  # noqa: BLE001 - see the module docstring
        pass
# What is loaded now never changes: keep the collector from touching it (and so from copying
# its pages into every forked worker).
gc.freeze()
