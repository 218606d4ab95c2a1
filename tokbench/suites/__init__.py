"""Suites: many runs at once (a tokenizer x task x dataset matrix), described by YAML files.

- :mod:`~tokbench.suites.schema`: what a suite file may hold, validated with file and key.
- :mod:`~tokbench.suites.loading`: built-in names or paths, ``include:``, :class:`Suite`.
- :mod:`~tokbench.suites.matrix`: the sweep, through :func:`tokbench.run.runner.run_resolved`.
- :mod:`~tokbench.suites.launchers`: in-process, or one job per tokenizer through submitit.
- :mod:`~tokbench.suites.assets`: what a sweep needs on disk (``tokbench prefetch``).
- :mod:`~tokbench.suites.compare`: reported vs reproduced (``tokbench suite report``).

The engine never names a tokenizer family or a task: the built-in YAML files do.
"""

from tokbench.suites.loading import Suite, TokenizerEntry, builtin_names, load_suite
from tokbench.suites.schema import SuiteError

__all__ = ["Suite", "SuiteError", "TokenizerEntry", "builtin_names", "load_suite"]
