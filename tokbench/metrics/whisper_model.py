"""Loading Whisper checkpoints for the WER/CER metrics, once per process, with a clear offline error.

Named models (``large-v3``, ``small``, ...) come from OpenAI's official URLs through
``whisper.load_model``, which checks the file's SHA256 and caches it under ``download_root``
(default ``$XDG_CACHE_HOME/whisper``, else ``~/.cache/whisper``). A local checkpoint file in the
official layout (``{"dims": ..., "model_state_dict": ...}``) can be given instead. Whisper loads
both with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import difflib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from tokbench.io.files import file_digest

if TYPE_CHECKING:
    import whisper

# whisper (torch, numba) is imported by the functions that use it, not with this module.

DEFAULT_MODEL = "large-v3"
# Bound on the reachability check made before a download: whisper's own urlopen has no timeout,
# and on a network that drops packets a connect can hang for minutes.
PROBE_TIMEOUT_S = 10.0
FIX = (
    "run once online to cache it, or pass --set asr_checkpoint=PATH "
    "(tokbench score: --asr-checkpoint PATH)")


class AsrUnavailable(RuntimeError):
    """The Whisper checkpoint is neither cached nor downloadable (WER/CER become null with this)."""


def whisper_cache_dir() -> Path:
    """Where ``whisper.load_model`` caches checkpoints by default (honours ``XDG_CACHE_HOME``)."""
    default = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.getenv("XDG_CACHE_HOME", default)) / "whisper"


def _model_url(name: str) -> str:
    import whisper

    urls = whisper._MODELS  # the official name -> URL table (the URL carries the SHA256)
    if name not in urls:
        close = difflib.get_close_matches(name, list(urls), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown Whisper model {name!r}{hint} Available: "
                         f"{', '.join(whisper.available_models())}; or pass a checkpoint file path")
    return urls[name]


def canonical_name(name: str) -> str:
    """The official file a name resolves to, without ``.pt``: ``large`` -> ``large-v3``."""
    return Path(urlparse(_model_url(name)).path).stem


_ID_CACHE: dict[tuple[str, int, int], str] = {}


def model_id(name: str = DEFAULT_MODEL, checkpoint: str | Path | None = None) -> str:
    """What identifies the ASR model in protocols and cache keys.

    A named model is its official file name (``large`` and ``large-v3`` are one id); a local
    checkpoint is ``checkpoint-sha256:<16 hex>`` of its bytes, so renaming it changes nothing and
    different weights never share cached transcripts.
    """
    if checkpoint is None:
        return canonical_name(name)
    path = Path(checkpoint).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"Whisper checkpoint {path} does not exist (asr_checkpoint)")
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _ID_CACHE:
        _ID_CACHE[key] = f"checkpoint-sha256:{file_digest(path)[:16]}"
    return _ID_CACHE[key]


def _probe(url: str) -> None:
    """One bounded HEAD request; raises what urllib raises when the server is unreachable."""
    request = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_S):
        pass


def _load_named(name: str, device: str, root: Path) -> whisper.Whisper:
    import whisper

    url = _model_url(name)
    target = root / os.path.basename(urlparse(url).path)
    cached = target.is_file()

    def unavailable(exc: BaseException, what: str) -> AsrUnavailable:
        return AsrUnavailable(
            f"Whisper model {name!r} is not available: {what} ({type(exc).__name__}: {exc}). "
            f"Looked for {target}. To fix: {FIX}.")

    if not cached:
        try:
            _probe(url)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # the host, not the whole URL: this reason is printed and stored with every value
            raise unavailable(exc, f"not cached and {urlparse(url).netloc} is unreachable") from exc
    try:
        return whisper.load_model(name, device=device, download_root=str(root))
    except (OSError, http.client.HTTPException) as exc:
        what = "the cached file failed its SHA256 check and re-downloading failed" if cached \
            else "downloading failed"
        raise unavailable(exc, what) from exc
    except RuntimeError as exc:
        if "SHA256" not in str(exc):  # anything but whisper's checksum error is a real bug
            raise
        raise unavailable(exc, "the downloaded file failed its SHA256 check") from exc


_MODELS: dict[tuple[str, ...], whisper.Whisper] = {}


def load_asr_model(
    name: str = DEFAULT_MODEL, device: str = "cpu", checkpoint: str | Path | None = None,
    download_root: str | Path | None = None,
) -> whisper.Whisper:
    """The Whisper model, loaded once per process per (model, device).

    ``checkpoint`` (a local file in the official layout) overrides ``name``. Raises
    :class:`AsrUnavailable` when a named model is neither cached nor downloadable, ``ValueError``
    for an unknown name and ``FileNotFoundError`` for a checkpoint path that does not exist.
    """
    import whisper

    root = Path(download_root).expanduser() if download_root else whisper_cache_dir()
    if checkpoint is not None:
        path = Path(checkpoint).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"Whisper checkpoint {path} does not exist (asr_checkpoint)")
        key: tuple[str, ...] = ("file", str(path), str(device))
    else:
        _model_url(name)  # unknown names fail here, before any cache or network work
        key = ("name", name, str(device), str(root.resolve()))
    if key not in _MODELS:
        if checkpoint is not None:
            try:
                model = whisper.load_model(str(path), device=device)
            except Exception as exc:  # torch's unpickling text suggests weights_only=False: never
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise AsrUnavailable(
                    f"{path} is not a readable Whisper checkpoint ({type(exc).__name__}: "
                    f"{first[:200]}); pass a file in the official layout "
                    "({'dims': ..., 'model_state_dict': ...}) with --set asr_checkpoint=PATH") from None
        else:
            model = _load_named(name, str(device), root)
        _MODELS[key] = model.eval()
    return _MODELS[key]
