"""What a new user meets first: a missing dataset folder, suites naming presets not registered
yet, the documentation index."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from tokbench.cli import app
from tokbench.data import DatasetError, open_dataset

ROOT = Path(__file__).resolve().parent.parent


def test_a_missing_dataset_folder_is_called_a_missing_folder(tmp_path):
    missing = tmp_path / "nope"
    r = CliRunner().invoke(app, ["run", "--tokenizer", "mulaw", "--task", "recon",
                                 "--dataset", str(missing)])
    assert r.exit_code == 2
    text = " ".join(r.output.split())
    assert f"the folder {missing} does not exist" in text and "unknown dataset" not in text
    with pytest.raises(DatasetError, match="the manifest nope.jsonl does not exist"):
        open_dataset("./nope.jsonl")
    with pytest.raises(DatasetError, match="unknown dataset 'librispeec'"):  # a name
        open_dataset("librispeec")


def test_a_suite_says_once_which_presets_are_not_registered(monkeypatch):
    import tokbench.suites.cli as suites_cli
    from tokbench.suites.loading import load_suite

    suite = load_suite("dates-speech-recon")
    absent = suites_cli.unregistered(suite.tokenizers)
    assert absent and all(p.startswith("speechtokenizer") for p in absent)
    buf = io.StringIO()
    monkeypatch.setattr(suites_cli, "err", Console(file=buf, width=300, color_system=None))
    suites_cli.say_unregistered(suite, suite.tokenizers)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 1 and f"{len(absent)} of its presets are not registered" in lines[0]
    assert all(p in lines[0] for p in absent)
    buf.truncate(0)
    suites_cli.say_unregistered(load_suite("offline-smoke"), load_suite("offline-smoke").tokenizers)
    assert buf.getvalue() == ""
    r = CliRunner().invoke(app, ["suite", "list"], env={"COLUMNS": "300"})
    assert f"({len(absent)} not registered)" in r.output


def test_every_document_is_in_the_index():
    index = (ROOT / "docs" / "README.md").read_text()
    linked = set(re.findall(r"\]\(([\w.-]+\.md)\)", index))
    docs = {p.name for p in (ROOT / "docs").glob("*.md")} - {"README.md"}
    assert docs <= linked, sorted(docs - linked)


def test_the_demo_runs_offline_and_shows_every_classic_family():
    from tokbench.availability import availability
    from tokbench.resolve import resolve_tokenizer

    line = next(x for x in (ROOT / "Makefile").read_text().splitlines()
                if x.startswith("DEMO_TOKENIZERS"))
    presets = line.split("=", 1)[1].strip().split(",")
    metas = {p: resolve_tokenizer(p).meta for p in presets}
    assert {m.family for m in metas.values() if m.kind == "classic"} == {"opus", "codec2", "amrnb"}
    assert "identity" in presets
    for p, meta in metas.items():
        assert meta.source.repo_id is None, p  # no weights: the demo works offline
        r = resolve_tokenizer(p)
        assert availability(r.cls, r.options, meta).status != "weights", p
