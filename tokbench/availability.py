"""Whether a tokenizer preset can run on this machine, found without loading any model.

``tokbench list tokenizers`` shows it per preset. Three answers, checked in this order:

- the adapter lacks something it cannot run without (``missing(options)``: an optional package
  or a system library; checked with ``importlib.util.find_spec`` and the like, never imported);
- it needs weights (``meta.source.repo_id``) that are not in the local Hugging Face cache;
- it runs here: no weights, or weights cached.

"Weights cached" means the Hub cache holds a snapshot of the pinned revision (or of the branch the
preset follows); loading still checks every file, so a partial download is caught then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tokbench.meta import TokenizerMeta

Status = Literal["ready", "weights", "missing"]
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Availability:
    status: Status
    text: str  # one short phrase for the listing

    @property
    def ready(self) -> bool:
        return self.status == "ready"


def weights_cached(repo_id: str, revision: str | None, cache_dir: Path | None = None) -> bool:
    """True if the Hub cache holds a snapshot of ``repo_id`` at ``revision`` (a commit, or a
    branch or tag whose ref the cache recorded; None = ``main``). Reads folder names only."""
    from tokbench.io.hub import hub_cache_dir

    folder = (cache_dir or hub_cache_dir()) / ("models--" + repo_id.replace("/", "--"))
    revision = revision or "main"
    if not _COMMIT.match(revision):
        ref = folder / "refs" / revision
        if not ref.is_file():
            return False
        revision = ref.read_text(encoding="utf-8").strip()
    snapshot = folder / "snapshots" / revision
    return snapshot.is_dir() and any(snapshot.iterdir())


def availability(cls: type, options: object, meta: TokenizerMeta,
                 cache_dir: Path | None = None) -> Availability:
    """Whether the variant ``options`` of the adapter class ``cls`` (described by ``meta``) can
    run here, and if not, what it needs, in a few words."""
    missing = getattr(cls, "missing", None)
    lack = missing(options) if callable(missing) else None
    if lack:
        return Availability("missing", f"needs {lack}")
    repo = meta.source.repo_id
    if repo:
        if weights_cached(repo, meta.source.revision, cache_dir):
            return Availability("ready", "runs here (weights cached)")
        return Availability("weights", f"needs weights ({repo})")
    return Availability("ready", "runs here")
