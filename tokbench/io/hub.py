"""Loading Hugging Face models: pinned Hub revision or a local ``--checkpoint`` folder.

One place for every adapter that loads a ``transformers`` model (codecs, HuBERT/WavLM, ...):

    model, source = load_hf_model(MimiModel, "kyutai/mimi", MIMI_REVISION, checkpoint, "cpu")

``source`` (a :class:`~tokbench.types.ModelSource`) records the repo id, the requested revision
and the commit actually loaded, which ends up in ``meta.source`` and in every run's cache keys.
The Hub cache location and offline mode are read from the environment at call time
(``HF_HUB_CACHE``, ``HF_HOME``, ``HF_HUB_OFFLINE``), so they can change within one process.
``trust_remote_code`` is never passed.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from tokbench.io.files import file_digest
from tokbench.meta import ModelSource, TokenizerSetupError

_SHA = re.compile(r"^[0-9a-f]{40}$")
_TRUE = {"1", "on", "yes", "true"}


class ModelNotAvailableError(TokenizerSetupError, FileNotFoundError):
    """Weights cannot be found: not cached while offline, or a bad ``--checkpoint`` folder."""


def hub_cache_dir() -> Path:
    """The Hugging Face Hub cache folder, resolved from the environment now (not at import)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hub_offline() -> bool:
    """True if ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set in the environment now."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        value = os.environ.get(var)
        if value is not None:
            return value.strip().lower() in _TRUE
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def cached_commit(repo_id: str, revision: str, cache_dir: str | Path | None = None) -> str | None:
    """The commit of ``repo_id@revision`` in the local Hub cache (from its ``snapshots/<sha>``
    folder), or None if that revision's config is not cached."""
    from huggingface_hub import try_to_load_from_cache

    path = try_to_load_from_cache(repo_id, "config.json", cache_dir=str(cache_dir or hub_cache_dir()),
                                  revision=revision)
    if not isinstance(path, str):
        return None
    commit = Path(path).parent.name
    return commit if _SHA.match(commit) else None


def checkpoint_fingerprint(folder: str | Path) -> str:
    """A stable id for the weights in a local folder, used where a Hub commit would be.

    A folder inside the Hub cache (``.../snapshots/<sha>``) is that commit; any other folder is
    ``local-sha256:<hash>`` over its config and weight files (names and bytes), so two different
    local checkpoints never share cached tokens or results.
    """
    folder = Path(folder).resolve()
    if _SHA.match(folder.name) and folder.parent.name == "snapshots":
        return folder.name
    digest = hashlib.sha256()
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix in (".json", ".safetensors", ".bin", ".pt", ".pth"))
    for path in files:
        digest.update(path.name.encode() + b"\0")
        file_digest(path, into=digest)
    return "local-sha256:" + digest.hexdigest()[:16]


def load_hf_model(
    model_cls: Any,
    repo_id: str,
    revision: str,
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    **kwargs: Any,
) -> tuple[Any, ModelSource]:
    """Load ``model_cls`` (a ``transformers`` model class) in eval mode on ``device``.

    From ``checkpoint`` (a folder written by ``save_pretrained``) if given, else from the Hub
    cache at the pinned ``revision`` (downloading it when online). ``kwargs`` go to
    ``from_pretrained``. Raises :class:`ModelNotAvailableError` naming the repo and both fixes
    when the weights are not cached and the Hub cannot be reached.
    """
    if checkpoint is not None:
        folder = Path(checkpoint).expanduser()
        if not (folder / "config.json").is_file():
            raise ModelNotAvailableError(
                f"--checkpoint {folder} is not a model folder (no config.json): pass a folder "
                f"written by save_pretrained, e.g. a local copy of {repo_id}")
        model = model_cls.from_pretrained(str(folder), local_files_only=True, **kwargs)
        source = ModelSource(repo_id=repo_id, revision=None,
                             resolved=checkpoint_fingerprint(folder), local_path=str(folder.resolve()))
    else:
        cache_dir = hub_cache_dir()
        offline = hub_offline()
        try:
            model = model_cls.from_pretrained(repo_id, revision=revision, cache_dir=str(cache_dir),
                                              local_files_only=offline, **kwargs)
        except OSError as exc:
            if cached_commit(repo_id, revision, cache_dir) is None:
                why = ("the Hub is unreachable (HF_HUB_OFFLINE is set)" if offline
                       else f"fetching it from the Hub failed ({type(exc).__name__}: {exc})")
                raise ModelNotAvailableError(
                    f"{repo_id} is not cached and {why}: run once online or pass --checkpoint DIR "
                    f"(a local copy saved with save_pretrained). Looked for revision {revision} "
                    f"in {cache_dir}.") from exc
            raise
        source = ModelSource(repo_id=repo_id, revision=revision,
                             resolved=cached_commit(repo_id, revision, cache_dir))
    model.to(device)
    model.eval()
    return model, source
