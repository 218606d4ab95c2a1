"""``tokbench score``: audio made elsewhere scored with the recon metrics, through the runner.

``command`` holds the library entry point (:func:`score_folders`) and the CLI command; ``task``
the ``score`` task, imported on first use (PEP 562): it imports torch, which the CLI, importing
this package for every command, must not.
"""

from __future__ import annotations

from typing import Any

from tokbench.tasks.score.command import ScoreResult, score_command, score_folders

__all__ = ["ScoreFiles", "ScoreResult", "score_command", "score_folders"]


def __getattr__(name: str) -> Any:
    if name == "ScoreFiles":
        from tokbench.tasks.score.task import ScoreFiles

        return ScoreFiles
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
