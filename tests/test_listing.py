"""`tokbench list tokenizers`: whole preset names at any width, and whether each runs here."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from tokbench import registry
from tokbench.availability import availability, weights_cached
from tokbench.cli import app
from tokbench.listing import print_tokenizers
from tokbench.meta import ModelSource, TokenizerMeta
from tokbench.types import TokenizerBase

COMMIT = "a" * 40


def _first_words(text: str) -> set[str]:
    return {line.split()[0] for line in text.splitlines() if line.strip()}


@pytest.mark.parametrize("columns", ["40", "400"])
def test_piped_listing_prints_every_name_whole(columns):
    result = CliRunner().invoke(app, ["list", "tokenizers"], env={"COLUMNS": columns})
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    names = set(registry.tokenizers.names())
    assert names <= _first_words(result.output)  # each name whole, first on its own line
    assert "xcodec-hubert-librispeech-1.5kbps" in names  # the longest name is among them
    header = result.output.splitlines()[0].split()
    assert header[0] == "tokenizer" and "available" in header and "description" not in header


def test_details_add_the_wide_columns():
    result = CliRunner().invoke(app, ["list", "tokenizers", "--details"], env={"COLUMNS": "40"})
    assert result.exit_code == 0, result.output
    assert "description" in result.output.splitlines()[0]
    line = next(x for x in result.output.splitlines() if x.startswith("mulaw "))
    assert "16000" in line and "runs here" in line


@pytest.mark.parametrize("width", [40, 100, 250])
def test_terminal_listing_never_cuts_a_name(width):
    buf = io.StringIO()
    print_tokenizers(Console(file=buf, force_terminal=True, width=width, color_system=None))
    text = buf.getvalue()
    assert "…" not in text
    table = "┃" in text
    assert table == (width == 250)  # a table only where it fits; else plain columns
    for name in registry.tokenizers.names():
        # whole on one line: between the table's borders, or first on a plain line
        assert any(line.split("│")[1 if table else 0].split()[0:1] == [name]
                   for line in text.splitlines() if line.strip() and (not table or "│" in line)), name


def test_availability_counts_what_runs_here():
    result = CliRunner().invoke(app, ["list", "tokenizers"], env={"COLUMNS": "400"})
    rows = {line.split()[0]: line for line in result.output.splitlines()[1:] if line.strip()}
    assert "runs here" in rows["identity"] and "runs here" in rows["mulaw"]
    assert "needs weights (kyutai/mimi)" in rows["mimi"] or "weights cached" in rows["mimi"]
    ready = sum("runs here" in line for line in rows.values())
    assert f"presets, {ready} run here" in result.output.splitlines()[-1]


@dataclass(frozen=True)
class _Opts:
    pass


def _meta(repo: str | None, revision: str | None = None) -> TokenizerMeta:
    return TokenizerMeta(name="x", family="x", kind="acoustic", sample_rate=16000, frame_rate=50,
                         n_codebooks=1, codebook_sizes=(2,),
                         source=ModelSource(repo_id=repo, revision=revision))


def test_a_missing_package_is_named_with_its_extra():
    class NeedsPackage(TokenizerBase):
        Options = _Opts
        packages = {"surely_not_an_installed_module_4f2a": "fancy"}

    a = availability(NeedsPackage, _Opts(), _meta(None))
    assert a.status == "missing" and not a.ready
    assert "surely_not_an_installed_module_4f2a" in a.text and "tokbench[fancy]" in a.text

    class HasPackage(TokenizerBase):
        Options = _Opts
        packages = {"json": "core"}

    assert availability(HasPackage, _Opts(), _meta(None)).text == "runs here"


def test_opus_without_libopus_says_so(monkeypatch):
    import ctypes.util

    from tokbench.resolve import resolve_tokenizer

    r = resolve_tokenizer("opus-12kbps")
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    a = availability(r.cls, r.options, r.meta)
    assert a.status == "missing" and "libopus" in a.text


def _snapshot(cache: Path, repo: str, commit: str, ref: str | None = None) -> None:
    folder = cache / ("models--" + repo.replace("/", "--"))
    (folder / "snapshots" / commit).mkdir(parents=True)
    (folder / "snapshots" / commit / "config.json").write_text("{}")
    if ref:
        (folder / "refs").mkdir()
        (folder / "refs" / ref).write_text(commit)


def test_weights_are_looked_up_in_the_hub_cache(tmp_path):
    class Plain(TokenizerBase):
        Options = _Opts

    a = availability(Plain, _Opts(), _meta("org/model", COMMIT), cache_dir=tmp_path)
    assert a.status == "weights" and a.text == "needs weights (org/model)"
    _snapshot(tmp_path, "org/model", COMMIT)
    assert availability(Plain, _Opts(), _meta("org/model", COMMIT), cache_dir=tmp_path).ready
    # a branch is followed through the ref the cache recorded; an unknown one is not cached
    assert not weights_cached("org/model", "main", tmp_path)
    _snapshot(tmp_path, "org/branchy", COMMIT, ref="main")
    assert weights_cached("org/branchy", None, tmp_path)
    assert not weights_cached("org/model", "b" * 40, tmp_path)
