"""``tokbench prefetch``: every file a run or suite needs, fetched (online) or verified (offline).

What a run needs is read from the contract, not from a list of families: a tokenizer's weights
from its ``meta.source`` (Hub repo and pinned revision, or URL), the ASR model from the task's
recorded protocol (``asr.model``, an openai-whisper checkpoint whose URL carries its SHA-256),
and a registered dataset's archive from :mod:`tokbench.data.local_copies` (official URL,
published MD5 and size). Verification is real: Hub blobs are checked against the hash they are
named by (SHA-256 for LFS files, the git blob SHA-1 for small ones), Whisper files against the
SHA-256 in their URL, archives against the published MD5 and size.

Sizes are exact where they are known offline (cached files, published archive sizes); a Hub
repo that is not cached has no size until it is looked up online, and the listing says so.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokbench.io.files import file_digest

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")

CACHED, MISSING, CORRUPT, FETCHED, NOTHING, UNAVAILABLE = (
    "cached", "missing", "corrupt", "fetched", "nothing to fetch", "not available")


@dataclass
class Asset:
    kind: str  # weights | asr model | dataset | checkpoint
    needed_by: str
    source: str  # URL or hub repo@revision
    location: Path | None = None
    size: int | None = None  # bytes, when known
    checksum: str = ""  # what it is verified against
    state: str = MISSING
    detail: str = ""
    verify: Callable[[Asset], None] | None = field(default=None, repr=False)
    fetch: Callable[[Asset, Callable[[str], None]], None] | None = field(default=None, repr=False)


def _git_blob_sha1(path: Path) -> str:
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------- Hub weights
def _hub_snapshot(repo_id: str, revision: str | None) -> Path | None:
    from tokbench.io.hub import hub_cache_dir

    repo = hub_cache_dir() / ("models--" + repo_id.replace("/", "--"))
    rev = revision or "main"
    commit = rev if _SHA1.match(rev) else None
    if commit is None and (repo / "refs" / rev).is_file():
        commit = (repo / "refs" / rev).read_text().strip()
    snap = repo / "snapshots" / commit if commit else None
    return snap if snap is not None and snap.is_dir() else None


def _verify_hub(asset: Asset) -> None:
    repo_id, _, revision = asset.source.removeprefix("https://huggingface.co/").partition("@")
    snap = _hub_snapshot(repo_id, revision or None)
    if snap is None:
        asset.state, asset.location = MISSING, None
        asset.detail = ("not in the Hub cache; its size is listed by `tokbench prefetch` on a "
                        "machine with network (or pass --checkpoint DIR to the run)")
        return
    asset.location = snap
    total, bad, files = 0, [], 0
    for link in sorted(p for p in snap.rglob("*") if p.is_file()):
        blob = link.resolve()
        files += 1
        total += blob.stat().st_size
        name = blob.name
        if _SHA256.match(name) and file_digest(blob, "sha256") != name:
            bad.append(link.name)
        elif _SHA1.match(name) and _git_blob_sha1(blob) != name:
            bad.append(link.name)
    asset.size = total
    if bad:
        asset.state = CORRUPT
        asset.detail = f"{len(bad)} of {files} files do not match their hash: {', '.join(bad[:3])}"
    elif files == 0:
        asset.state, asset.detail = MISSING, "the snapshot folder is empty"
    else:
        asset.state = CACHED
        asset.detail = f"{files} files, each matching the hash it is stored under"


def _fetch_hub(asset: Asset, log: Callable[[str], None]) -> None:
    from huggingface_hub import HfApi, snapshot_download

    from tokbench.io.hub import hub_cache_dir

    repo_id, _, revision = asset.source.removeprefix("https://huggingface.co/").partition("@")
    info = HfApi().model_info(repo_id, revision=revision or None, files_metadata=True)
    size = sum(int(s.size or 0) for s in info.siblings or [])
    log(f"fetching {repo_id}@{revision}: {len(info.siblings or [])} files, {size:,} bytes")
    snapshot_download(repo_id, revision=revision or None, cache_dir=str(hub_cache_dir()))


def _tokenizer_assets(entry: Any, overrides: Mapping[str, Any]) -> list[Asset]:
    from tokbench.options import option_fields
    from tokbench.registry import tokenizers
    from tokbench.resolve import resolve_tokenizer
    from tokbench.suites.matrix import NOT_AVAILABLE_TEXT

    if entry.preset not in tokenizers:
        return [Asset("weights", entry.label, "", state=UNAVAILABLE,
                      detail=f"{NOT_AVAILABLE_TEXT}: no preset {entry.preset!r} is registered")]
    try:
        cls = tokenizers.get(entry.preset).load()
        known = option_fields(cls.Options)
        meta = resolve_tokenizer(entry.preset, {**{k: v for k, v in overrides.items() if k in known},
                                                **entry.overrides}).meta
    except ImportError as exc:
        return [Asset("weights", entry.label, "", state=UNAVAILABLE, detail=f"{NOT_AVAILABLE_TEXT}: {exc}")]
    if entry.checkpoint:
        folder = Path(entry.checkpoint).expanduser()
        ok = (folder / "config.json").is_file()
        return [Asset("checkpoint", entry.label, str(folder), folder if ok else None,
                      state=CACHED if ok else MISSING,
                      detail="local model folder" if ok else "no config.json in the --checkpoint folder")]
    src = meta.source
    if src.repo_id:
        return [hub_asset("weights", entry.label, src.repo_id, src.revision)]
    if src.url:
        return [Asset("weights", entry.label, src.url, state=MISSING,
                      detail="fetched by the adapter on first use (no checksum published here)")]
    return [Asset("weights", entry.label, "", state=NOTHING, detail="no weights (signal processing only)")]


# ---------------------------------------------------------------------------- ASR model
def _asr_assets(task: str, protocol: Mapping[str, Any]) -> list[Asset]:
    asr = protocol.get("asr") or {}
    name = asr.get("model")
    if not name or not isinstance(name, str) or name.startswith("checkpoint-sha256:"):
        return []
    backend = asr.get("backend")
    if isinstance(backend, str) and not backend.startswith("whisper"):
        # a Hub back-end (hubert-ctc, nemo-fastconformer): model is repo@revision, or the
        # local-sha256 fingerprint of a --set asr_checkpoint (nothing to fetch)
        if "@" not in name or name.startswith("local-sha256:"):
            return []
        return [Asset("asr model", f"{task} (WER/CER, {backend})", f"https://huggingface.co/{name}",
                      checksum="Hub blob hashes", verify=_verify_hub, fetch=_fetch_hub)]
    import whisper

    from tokbench.metrics.whisper_model import whisper_cache_dir

    url = whisper._MODELS.get(name)  # the official name -> URL table (the URL carries the SHA256)
    if url is None:
        return []
    sha = url.split("/")[-2]
    return [Asset("asr model", f"{task} (WER/CER)", url, whisper_cache_dir() / Path(url).name,
                  checksum=f"sha256 {sha[:12]}... (from the URL)", verify=_verify_sha256_file,
                  fetch=_fetch_whisper)]


def _verify_sha256_file(asset: Asset) -> None:
    path = asset.location
    if path is None or not path.is_file():
        asset.state, asset.detail = MISSING, "not downloaded yet (size not recorded offline)"
        return
    asset.size = path.stat().st_size
    want = asset.source.split("/")[-2]
    if file_digest(path, "sha256") != want:
        asset.state, asset.detail = CORRUPT, "its SHA-256 does not match the URL's: delete it and fetch again"
    else:
        asset.state, asset.detail = CACHED, "SHA-256 matches"


def _fetch_whisper(asset: Asset, log: Callable[[str], None]) -> None:
    import whisper

    assert asset.location is not None
    log(f"fetching {asset.source}")
    whisper._download(asset.source, str(asset.location.parent), in_memory=False)


# ---------------------------------------------------------------------------- metric models
def hub_asset(kind: str, needed_by: str, repo_id: str, revision: str | None) -> Asset:
    """A Hub repository pinned to ``revision``, verified against its blob hashes."""
    return Asset(kind, needed_by, f"https://huggingface.co/{repo_id}@{revision or 'main'}",
                 checksum="Hub blob hashes", verify=_verify_hub, fetch=_fetch_hub)


def checkpoint_asset(needed_by: str, source: str, path: Path, *, label: str,
                     load: Callable[[Path], Any], sha256: str | None, missing: str,
                     fetch: Callable[[Asset, Callable[[str], None]], None] | None = None) -> Asset:
    """A metric model's checkpoint file: verified by its SHA-256 (where one is recorded) and by
    loading it (``load`` raises ValueError on a wrong file); ``missing`` says what to do when
    it is not there."""
    def verify(asset: Asset) -> None:
        if asset.location is None or not asset.location.is_file():
            asset.state, asset.detail = MISSING, missing
            return
        asset.size = asset.location.stat().st_size
        digest = file_digest(asset.location, "sha256")
        if sha256 and digest != sha256:
            asset.state = CORRUPT
            asset.detail = "its SHA-256 is not the release's: delete it and fetch again"
            return
        try:
            load(asset.location)
        except ValueError as exc:
            asset.state, asset.detail = CORRUPT, f"not loadable: {exc}"
            return
        asset.state, asset.detail = CACHED, f"loads as {label} (SHA-256 {digest[:12]}...)"

    checksum = (f"sha256 {sha256[:12]}..." if sha256
                else "none published (SHA-256 printed when loaded)")
    return Asset("metric model", needed_by, source, path, checksum=checksum, verify=verify,
                 fetch=fetch)


def _metric_assets(selection: str | None, needed_by: str) -> list[Asset]:
    """The weights of the metrics a ``--metrics`` selection names, as their declarations list
    them (``declare(..., weights=...)``)."""
    from tokbench.metrics.kit import declarations
    from tokbench.metrics.selection import resolve_metrics

    if not selection:
        return []
    chosen = set(resolve_metrics(selection))
    out: list[Asset] = []
    for metric in declarations():
        if metric.weights is not None and chosen & set(metric.names):
            out += metric.weights(needed_by)
    return out


# ---------------------------------------------------------------------------- datasets
def _dataset_assets(name: str, data_dir: Path | None) -> list[Asset]:
    import os

    from tokbench.data import DatasetError
    from tokbench.data.local_copies import (
        DATA_DIR_ENV,
        LOCAL_COPIES,
        dataset_archive,
        locate,
        recognise,
    )

    archive = dataset_archive(name)
    if archive is None:
        return [Asset("dataset", name, "", state=NOTHING, detail="bundled, or a local folder/manifest")]
    folder = data_dir or (Path(os.environ[DATA_DIR_ENV]) if os.environ.get(DATA_DIR_ENV) else None)
    copy = LOCAL_COPIES[name]
    if folder is not None and (data_dir is not None or locate(folder, copy.corpus, copy.split)):
        flag = "--data-dir" if data_dir is not None else f"${DATA_DIR_ENV}"
        try:
            rec = recognise(name, folder, flag)
            return [Asset("dataset", name, archive.url, rec.folder, archive.size, f"md5 {archive.md5}",
                          CACHED, "local copy recognised: " + "; ".join(rec.checks))]
        except DatasetError as exc:
            return [Asset("dataset", name, archive.url, Path(folder), archive.size,
                          f"md5 {archive.md5}", CORRUPT, str(exc))]
    asset = Asset("dataset", name, archive.url, archive.path, archive.size,
                  f"md5 {archive.md5}" if archive.md5 else "", verify=None, fetch=None)

    def verify(a: Asset) -> None:
        if archive.extracted.is_dir():
            a.location, a.state = archive.extracted, CACHED
            a.detail = "extracted in the tokbench cache (checked by the loader when opened)"
        elif archive.path.is_file():
            got, size = file_digest(archive.path, "md5"), archive.path.stat().st_size
            ok = (archive.md5 is None or got == archive.md5) and (archive.size in (None, size))
            a.state = CACHED if ok else CORRUPT
            a.detail = "archive matches the published MD5" if ok else f"archive MD5 {got}, size {size:,}"
        else:
            a.state = MISSING
            a.detail = "not downloaded" + ("" if archive.size else " (archive size not published here)")

    def fetch(a: Asset, log: Callable[[str], None]) -> None:
        from tokbench.data import open_dataset

        log(f"fetching {archive.url}")
        open_dataset(name)  # downloads, checks the MD5 (and size), extracts safely, validates

    asset.verify, asset.fetch = verify, fetch
    return [asset]


# ---------------------------------------------------------------------------- what and how
def needed_assets(suite_ref: str | None, tokenizer_csv: str | None, task_csv: str | None,
                  dataset: str | None, overrides: Mapping[str, Any],
                  data_dir: Path | None = None, metrics: str | None = None) -> list[Asset]:
    """The assets of a suite and/or of ``--tokenizer a,b --task t --dataset d`` (deduplicated);
    ``metrics`` (or a task's ``metrics`` option) adds the weights of model-based metrics."""
    from tokbench.options import build_options, option_fields
    from tokbench.protocol import protocol_settings
    from tokbench.registry import tasks
    from tokbench.suites.loading import Selector, TokenizerEntry, load_suite
    from tokbench.suites.matrix import default_presets

    entries: list[TokenizerEntry] = []
    task_options: dict[str, dict[str, Any]] = {}
    datasets: list[str] = []
    if suite_ref:
        suite = load_suite(suite_ref)
        entries += (default_presets(suite.tokenizers) if isinstance(suite.tokenizers, Selector)
                    else list(suite.tokenizers))
        task_options.update(suite.tasks)
        if suite.dataset and not dataset:
            datasets.append(suite.dataset)
    entries += [TokenizerEntry(t, t) for t in (tokenizer_csv or "").split(",") if t]
    for t in (task_csv or "").split(","):
        if t:
            task_options.setdefault(t, {})
    if dataset:
        datasets.append(dataset)
    out: list[Asset] = []
    for e in entries:
        out += _tokenizer_assets(e, overrides)
    for name, options in task_options.items():
        entry = tasks.get(name)
        cls = entry.load()
        known = option_fields(cls.Options)
        task_obj = cls(build_options(cls.Options, entry.options,
                                     {**{k: v for k, v in overrides.items() if k in known}, **options}))
        out += _asr_assets(name, protocol_settings(**task_obj.protocol()))
        selection = options.get("metrics") or overrides.get("metrics")
        out += _metric_assets(str(selection) if selection else None, name)
    out += _metric_assets(metrics, "--metrics")
    for name in datasets:
        out += _dataset_assets(name, data_dir)
    unique: dict[tuple[str, str], Asset] = {}
    for a in out:
        key = (a.kind, a.source or a.needed_by)
        if key in unique and a.source:
            if a.needed_by not in unique[key].needed_by.split(", "):
                unique[key].needed_by += f", {a.needed_by}"
        else:
            unique[key] = a
    return list(unique.values())


def prefetch(assets: list[Asset], *, download: bool | None = None,
             log: Callable[[str], None] = print) -> list[Asset]:
    """Verify every asset; fetch the missing ones when ``download`` (default: unless offline)."""
    from tokbench.io.hub import hub_offline

    if download is None:
        download = not hub_offline()
    for a in assets:
        if a.verify is not None:
            a.verify(a)
        if download and a.fetch is not None and a.state in (MISSING, CORRUPT):
            try:
                a.fetch(a, log)
            except Exception as exc:  # noqa: BLE001 - reported per asset
                a.detail = f"fetching failed: {type(exc).__name__}: {exc}"
                continue
            if a.verify is not None:
                a.verify(a)
            if a.state == CACHED:
                a.state = FETCHED
    return assets


def render_assets(assets: list[Asset], console: Any) -> int:
    """Print the assets; returns how many are missing or corrupt."""
    from rich.table import Table
    from rich.text import Text

    table = Table("kind", "needed by", "source", "size (bytes)", "state", "where / why")
    for column in table.columns:
        column.overflow = "fold"
    style = {CACHED: "green", FETCHED: "green", NOTHING: "", MISSING: "bold red",
             CORRUPT: "bold red", UNAVAILABLE: "yellow"}
    for a in assets:
        size = "" if a.size is None else f"{a.size:,}"
        where = f"{a.location}: {a.detail}" if a.location is not None else a.detail
        table.add_row(a.kind, a.needed_by, a.source, size, Text(a.state, style=style.get(a.state, "")),
                      Text(where))
    console.print(table)
    bad = [a for a in assets if a.state in (MISSING, CORRUPT)]
    known = sum(a.size or 0 for a in bad)
    unknown = sum(1 for a in bad if a.size is None)
    if bad:
        console.print(f"{len(bad)} missing or corrupt: {known:,} bytes known"
                      + (f", {unknown} of unknown size (offline)" if unknown else ""), highlight=False)
    else:
        console.print("everything needed is cached and verified", highlight=False)
    return len(bad)
