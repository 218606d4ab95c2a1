"""Loading Hugging Face models: pinned Hub revision or a local ``--checkpoint`` folder.

One place for every adapter that loads a ``transformers`` model (codecs, HuBERT/WavLM, ...):

    model, source = load_hf_model(MimiModel, "kyutai/mimi", MIMI_REVISION, checkpoint, "cpu")

``source`` (a :class:`~tokbench.types.ModelSource`) records the repo id, the requested revision
and the commit actually loaded, which ends up in ``meta.source`` and in every run's cache keys.
The Hub cache location and offline mode are read from the environment at call time
(``HF_HUB_CACHE``, ``HF_HOME``, ``HF_HUB_OFFLINE``), so they can change within one process.
``trust_remote_code`` is never passed.

Codecs that are not ``transformers`` models (a pip package's own classes, raw Hub files) fetch
their pinned files with :func:`hub_files`, which records the resolved commit the same way:

    files, source = hub_files("hubertsiuzdak/snac_24khz", REVISION,
                              ["config.json", "pytorch_model.bin"], checkpoint)
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


def checkpoint_fingerprint(folder: str | Path, filenames: list[str] | None = None) -> str:
    """A stable id for the weights in a local folder, used where a Hub commit would be.

    A folder inside the Hub cache (``.../snapshots/<sha>``) is that commit; any other folder is
    ``local-sha256:<hash>`` over its config and weight files (names and bytes; only
    ``filenames`` when given), so two different local checkpoints never share cached tokens or
    results.
    """
    folder = Path(folder).resolve()
    if _SHA.match(folder.name) and folder.parent.name == "snapshots":
        return folder.name
    digest = hashlib.sha256()
    if filenames is not None:
        files = sorted(folder / name for name in filenames)
    else:
        files = sorted(p for p in folder.iterdir()
                       if p.is_file() and p.suffix in (".json", ".safetensors", ".bin", ".pt", ".pth"))
    for path in files:
        digest.update(path.name.encode() + b"\0")
        file_digest(path, into=digest)
    return "local-sha256:" + digest.hexdigest()[:16]


def not_cached_error(repo_id: str, revision: str, cache_dir: Path, offline: bool,
                     exc: BaseException | None, local_copy: str) -> ModelNotAvailableError:
    """The one message for pinned weights that are neither cached nor downloadable."""
    why = ("the Hub is unreachable (HF_HUB_OFFLINE is set)" if offline
           else f"fetching it from the Hub failed ({type(exc).__name__}: {exc})")
    return ModelNotAvailableError(
        f"{repo_id} is not cached and {why}: run `tokbench prefetch` (or this run once) online, "
        f"or pass --checkpoint DIR ({local_copy}). Looked for revision {revision} in {cache_dir}.")


def hub_files(
    repo_id: str, revision: str, filenames: list[str], checkpoint: str | Path | None = None,
) -> tuple[dict[str, Path], ModelSource]:
    """Local paths of ``filenames`` of ``repo_id`` at the pinned ``revision``, and their source.

    From ``checkpoint`` (a folder holding those files) if given, else from the Hub cache
    (downloaded when online, with ``hf_hub_download``). ``source.resolved`` is the commit the
    files came from (or the folder's fingerprint over exactly these files). Raises
    :class:`ModelNotAvailableError` naming the repo and both fixes when a file is missing.
    """
    if checkpoint is not None:
        folder = Path(checkpoint).expanduser()
        missing = [name for name in filenames if not (folder / name).is_file()]
        if missing:
            raise ModelNotAvailableError(
                f"--checkpoint {folder} lacks {', '.join(missing)}: pass a folder holding "
                f"{', '.join(filenames)} (a local copy of {repo_id})")
        paths = {name: (folder / name).resolve() for name in filenames}
        return paths, ModelSource(repo_id=repo_id, revision=None,
                                  resolved=checkpoint_fingerprint(folder, filenames),
                                  local_path=str(folder.resolve()))
    from huggingface_hub import hf_hub_download

    cache_dir, offline = hub_cache_dir(), hub_offline()
    paths = {}
    for name in filenames:
        try:
            path = hf_hub_download(repo_id, name, revision=revision, cache_dir=str(cache_dir),
                                   local_files_only=offline)
        except Exception as exc:  # hub errors have no common base below Exception
            if isinstance(exc, OSError | ValueError) or type(exc).__module__.startswith(
                    ("huggingface_hub", "requests", "httpx")):
                raise not_cached_error(repo_id, revision, cache_dir, offline, exc,
                                       f"a folder holding {', '.join(filenames)}") from exc
            raise
        paths[name] = Path(path)
    commits = {_snapshot_commit(p) for p in paths.values()}
    resolved = commits.pop() if len(commits) == 1 else None
    return paths, ModelSource(repo_id=repo_id, revision=revision, resolved=resolved)


def _snapshot_commit(path: Path) -> str | None:
    """The commit of a file inside a Hub cache snapshot (``.../snapshots/<sha>/...``)."""
    for parent in path.parents:
        if parent.parent.name == "snapshots" and _SHA.match(parent.name):
            return parent.name
    return None


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
        try:
            model = model_cls.from_pretrained(str(folder), local_files_only=True, **kwargs)
        except Exception as exc:  # a damaged or foreign checkpoint: one line, not a traceback
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise ModelNotAvailableError(
                f"--checkpoint {folder} cannot be loaded as {model_cls.__name__} "
                f"({type(exc).__name__}: {first}): pass a folder written by save_pretrained for "
                f"{repo_id}") from None
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
                raise not_cached_error(repo_id, revision, cache_dir, offline, exc,
                                       "a local copy saved with save_pretrained") from exc
            raise
        source = ModelSource(repo_id=repo_id, revision=revision,
                             resolved=cached_commit(repo_id, revision, cache_dir))
    model.to(device)
    model.eval()
    return model, source


def load_hf_processor(processor_cls: Any, repo_id: str, revision: str | None,
                      checkpoint: str | Path | None = None, what: str = "the processor") -> Any:
    """A transformers processor / feature extractor from ``checkpoint`` (a local folder) or from
    ``repo_id`` at the pinned ``revision`` through the shared Hub cache (offline: the cache only);
    :class:`ModelNotAvailableError` naming the source when it cannot be had."""
    where = str(checkpoint) if checkpoint is not None else repo_id
    try:
        if checkpoint is not None:
            return processor_cls.from_pretrained(str(checkpoint), local_files_only=True)
        return processor_cls.from_pretrained(repo_id, revision=revision,
                                             cache_dir=str(hub_cache_dir()),
                                             local_files_only=hub_offline())
    except OSError as exc:
        raise ModelNotAvailableError(f"{what} of {repo_id} is not available from {where} "
                                     f"({exc})") from exc
