"""End to end: task bpe through the runner on the bundled sample set, and its report."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import tokbench
from tokbench.cli import app
from tokbench.metrics.tokens import stat_records, token_stats
from tokbench.results.store import RunSpec, RunStore
from tokbench.run.runner import run
from tokbench.run.token_cache import EncodedSet
from tokbench.tasks.bpe.report import (
    reduction_chart,
    reduction_table,
    stats_table,
    write_bpe_report,
)
from tokbench.tasks.bpe.task import BPEOptions, study
from tokbench.types import TokenizerMeta

PLUGIN = str(Path(__file__).parent / "plugins" / "random_semantic.py") + ":RandomSemantic"


def corpus(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "corpus.jsonl").read_text().splitlines()]


def by_metric(records: list[dict]) -> dict[tuple[str, object], float | None]:
    return {(m, r["param"]): v for r in records for m, v in r["metrics"].items()}


def quiet(_: str) -> None:
    pass


def test_mulaw_on_the_sample_set(tmp_path, monkeypatch):
    opts = {"multipliers": "1,2,4"}
    res = run("mulaw", "bpe", "sample", limit=5, out=tmp_path, overrides=opts, log=quiet)
    assert res.status == "complete"
    records = corpus(res.path)
    m = by_metric(records)
    # The sweep starts at the base vocabulary, where BPE changes nothing.
    assert m[("bpe_reduction", 256)] == 1.0 and m[("bpe_vocab_size", 256)] == 256
    assert 1.0 < m[("bpe_reduction", 512)] < m[("bpe_reduction", 1024)]
    assert all(m[("bpe_lossless", v)] == 1.0 for v in (256, 512, 1024))
    assert m[("bpe_tokens_per_s", 256)] == pytest.approx(16000, rel=1e-3)
    assert m[("bpe_tokens_per_s", 1024)] == pytest.approx(16000 / m[("bpe_reduction", 1024)], rel=1e-3)
    assert m[("dedup_reduction", None)] > 1.0  # the silence at both ends repeats
    assert 0 < m[("token_cond_entropy", 0)] < m[("token_entropy", 0)] <= 8.0
    assert m[("token_perplexity", 0)] == pytest.approx(2 ** m[("token_entropy", 0)])
    assert m[("bitrate_entropy", None)] == pytest.approx(16000 * m[("token_entropy", 0)])
    # The split is recorded: deterministic, 80/20 of the 5 utterances.
    dedup = next(r for r in records if "dedup_reduction" in r["metrics"])
    split = dedup["extra"]["split"]
    assert (split["n_train"], split["n_heldout"]) == (4, 1) and len(dedup["extra"]["heldout_ids"]) == 1
    bpe = next(r for r in records if r["param"] == 1024)
    assert bpe["extra"]["chunk_length"] == 256 and bpe["extra"]["longest_token"] <= 32
    assert bpe["extra"]["split"] == split
    info = json.loads((res.path / "run.json").read_text())
    assert info["task"]["options"]["train_fraction"] == 0.8 and info["status"] == "complete"

    # Running the same configuration again resumes: nothing duplicated, the same numbers, and
    # the tokens come from the token cache (encoding would fail now).
    from tokbench.adapters.pcm import MuLawTokenizer

    def no_encoding(*args, **kwargs):
        raise AssertionError("tokens should come from the cache")

    monkeypatch.setattr(MuLawTokenizer, "encode", no_encoding)
    again = run("mulaw", "bpe", "sample", limit=5, out=tmp_path, overrides=opts, log=quiet)
    assert again.path == res.path and again.status == "complete"  # answered from its folder
    assert json.loads((res.path / "run.json").read_text())["attempts"] == 1
    # resumed the usual way (--rerun-failed, nothing failed to forget)
    again = run("mulaw", "bpe", "sample", limit=5, out=tmp_path, overrides=opts, log=quiet,
                rerun_failed=True)
    assert again.path == res.path
    assert by_metric(corpus(again.path)) == m and len(corpus(again.path)) == len(records)
    assert json.loads((res.path / "run.json").read_text())["attempts"] == 2
    # Another configuration reuses the cached tokens too.
    other = run("mulaw", "bpe", "sample", limit=5, out=tmp_path, log=quiet,
                overrides={"vocab_sizes": "300", "max_token_length": "4"})
    assert other.path != res.path
    m2 = by_metric(corpus(other.path))
    assert m2[("bpe_vocab_size", 300)] == 300 and m2[("bpe_lossless", 300)] == 1.0
    assert ("bpe_reduction", 256) not in m2


def test_semantic_tokenizer_plugs_in_unchanged(tmp_path):
    res = run("", "bpe", "sample", adapter=PLUGIN, out=tmp_path, log=quiet,
              overrides={"units": "50", "multipliers": "1,2,4"})
    info = json.loads((res.path / "run.json").read_text())
    assert info["kind"] == "semantic" and info["tokenizer_meta"]["frame_rate"] == 50.0
    m = by_metric(corpus(res.path))
    assert m[("bpe_reduction", 50)] == 1.0 and m[("bpe_reduction", 100)] > 1.2
    assert m[("bpe_lossless", 200)] == 1.0 and m[("bpe_vocab_size", 200)] <= 200
    assert m[("dedup_reduction", None)] > 1.1  # units repeat across neighbouring frames
    assert m[("token_entropy", 0)] <= math.log2(50) and 0 < m[("codebook_utilisation", 0)] <= 1
    assert m[("bpe_tokens_per_s", 50)] == pytest.approx(50, rel=0.02)


def test_all_codebooks_interleaved(tmp_path):
    res = run("", "bpe", "sample", adapter=PLUGIN, out=tmp_path, log=quiet, limit=8,
              overrides={"units": "20", "n_codebooks": "2", "codebooks": "all", "multipliers": "1,2"})
    records = corpus(res.path)
    m = by_metric(records)
    assert m[("bpe_reduction", 40)] == 1.0 and m[("bpe_lossless", 80)] == 1.0
    assert ("token_entropy", 0) in m and ("token_entropy", 1) in m
    assert m[("bpe_tokens_per_s", 40)] == pytest.approx(100, rel=0.02)  # 2 codebooks x 50 Hz
    assert next(r for r in records if r["param"] == 80)["extra"]["base_vocab"] == 40


def test_a_bad_codebook_index_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["run", "--tokenizer", "mulaw", "--task", "bpe", "--limit", "2",
                                      "--out", str(tmp_path), "--set", "codebooks=1", "--no-progress"])
    assert result.exit_code == 2
    assert "codebooks 0..0" in " ".join(result.output.split())


def _stats_only_run(root: Path) -> None:
    """A run of another task that recorded token statistics only (as recon does)."""
    spec = RunSpec(dataset="sample", dataset_revision="r", task="recon", task_version="1",
                   task_options={}, tokenizer="other", variant="other-codec", tokenizer_options={},
                   tokenizer_revision=None, protocol={"v": 1}, kind="acoustic")
    store = RunStore(root, spec).open({})
    codes = [np.array([[0, 1, 2, 3, 3], [1, 1, 0, 0, 1]])]
    store.write_corpus(stat_records(token_stats(codes, (4, 2)), frame_rate=75.0))
    store.finish({})


def test_report_with_some_tokenizers_lacking_bpe(tmp_path):
    results = tmp_path / "results"
    run("", "bpe", "sample", adapter=PLUGIN, out=results, log=quiet, limit=12,
        overrides={"units": "40", "multipliers": "1,2,4"})
    _stats_only_run(results)
    df = tokbench.load_results(results)

    table = reduction_table(df)
    assert set(table["variant"]) == {"random-semantic+units=40"}
    assert table["vocab size"].tolist() == [40, 80, 160] and table["base vocab"].tolist() == [40] * 3
    assert table["x base"].tolist() == [1.0, 2.0, 4.0] and (table["lossless"] == 1.0).all()

    stats = stats_table(df)
    assert sorted(set(stats["variant"])) == ["other-codec", "random-semantic+units=40"]
    other = stats[stats["variant"] == "other-codec"]
    assert other["codebook"].tolist() == [0, 1] and other["entropy (bit)"].tolist()[1] == pytest.approx(
        -(0.6 * math.log2(0.6) + 0.4 * math.log2(0.4)))

    fig = reduction_chart(df)
    ax = fig.axes[0]
    labelled = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert [line.get_label() for line in labelled] == ["random-semantic+units=40"]
    assert ax.get_xscale() == "log" and list(labelled[0].get_xdata())[0] == 40

    written = write_bpe_report(df, tmp_path / "report")
    names = sorted(p.name for p in written)
    assert names == ["bpe_reduction.md", "bpe_reduction.png", "bpe_reduction.svg", "token_stats.md"]
    assert all(p.stat().st_size > 0 for p in written)
    assert "other-codec" in (tmp_path / "report" / "token_stats.md").read_text()
    csv = write_bpe_report(df, tmp_path / "csv", fmt="csv")
    assert any(p.suffix == ".csv" for p in csv)


def test_report_without_any_bpe_results(tmp_path):
    _stats_only_run(tmp_path)
    df = tokbench.load_results(tmp_path)
    assert reduction_table(df).empty and len(stats_table(df)) == 2
    assert len(write_bpe_report(df, tmp_path / "report")) == 4


def test_study_records_failures_and_too_small_corpora():
    meta = TokenizerMeta(name="t", family="t", kind="semantic", sample_rate=16000, frame_rate=50.0,
                         n_codebooks=1, codebook_sizes=(4,))
    one = EncodedSet({"a": torch.tensor([[0, 1, 1, 2]])}, {"b": "cannot read b.flac"}, {"a": 0.08})
    records = study(one, meta, BPEOptions(multipliers=(1, 2)))
    bpe = [r for r in records if r["param"] in (4, 8)]
    assert len(bpe) == 2 and all(v is None for r in bpe for v in r["metrics"].values())
    assert "held-out part has no tokens" in bpe[0]["reasons"]["bpe_reduction"]
    dedup = next(r for r in records if "dedup_reduction" in r["metrics"])
    assert dedup["metrics"]["dedup_reduction"] is None and dedup["reasons"]["dedup_reduction"]
    stats = next(r for r in records if r["param"] == 0)
    assert stats["metrics"]["token_entropy"] == pytest.approx(1.5)  # 0, 1, 1, 2
    assert stats["extra"]["n_failed"] == 1 and stats["extra"]["failed"] == {"b": "cannot read b.flac"}
    json.dumps(records)
