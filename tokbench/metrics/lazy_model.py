"""A metric's model, loaded on first use in the process that scores, or unavailable with a reason.

Model-based metrics (``tokbench.run.model_metrics``) ask ``available`` before scoring and put
``reason`` in the null they record otherwise; a failed load is tried once per object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class LazyModel:
    """Subclasses set ``label`` (for the reason), ``unavailable`` (the load errors that mean "no
    weights here", not a bug) and implement :meth:`_fetch`."""

    label = "model"
    unavailable: tuple[type[BaseException], ...] = ()

    def __init__(self, device: str = "cpu", checkpoint: str | Path | None = None):
        self.device = device
        self.checkpoint = checkpoint
        self._loaded: Any = None
        self._reason = ""
        self._tried = False

    def _fetch(self) -> Any:
        """The loaded model (any object); raises one of ``unavailable`` without weights."""
        raise NotImplementedError

    def _load(self) -> None:
        if not self._tried:
            self._tried = True
            try:
                self._loaded = self._fetch()
            except self.unavailable as exc:
                self._reason = f"{self.label} unavailable: {exc}"

    @property
    def available(self) -> bool:
        self._load()
        return self._loaded is not None

    @property
    def reason(self) -> str:
        self._load()
        return self._reason

    @property
    def loaded(self) -> Any:
        """What :meth:`_fetch` returned (call after checking ``available``)."""
        self._load()
        assert self._loaded is not None, "check .available first"
        return self._loaded


class CheckpointModel(LazyModel):
    """A model loaded from one checkpoint file as ``(model, provenance)``, the provenance holding
    the file's ``sha256``: the exact weights."""

    @property
    def provenance(self) -> dict[str, Any] | None:
        return self.loaded[1] if self.available else None

    @property
    def weights(self) -> str | None:
        """The SHA-256 of the loaded checkpoint: part of reference-feature cache keys."""
        info = self.provenance
        return None if info is None else str(info["sha256"])
