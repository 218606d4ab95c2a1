"""Issue 13: the README quickstart order (make demo -> results/demo, then tokbench run ->
results/, then tokbench report) gives n = 32 of 32, with nothing pooled or listed twice."""

import shutil

import pytest
from typer.testing import CliRunner

from tokbench.cli import app
from tokbench.report import report_tables
from tokbench.run.runner import run


@pytest.mark.slow
def test_readme_quickstart_order_reports_32_of_32(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    common = dict(overrides=["asr=false"], workers=0, cache_dir=tmp_path / "cache", device="cpu",
                  log=lambda m: None)
    # make demo (its identity run is left out to save test time: a run of its own identity, it
    # can pool with nothing; the mulaw runs are the ones that were pooled to n = 40)
    run("mulaw", "recon", "sample", out="results/demo",
        **{**common, "overrides": ["asr=false", "keep_audio=2"]})
    # the README's commands, into results/: --limit 8, and the demo's own mulaw run again (its
    # folder copied: what rerunning the same command into results/ writes, at less test time)
    run("mulaw", "recon", "sample", limit=8, out="results", **common)
    demo_mulaw = next(p.parent for p in (tmp_path / "results" / "demo").rglob("run.json")
                      if "/mulaw/" in str(p))
    shutil.copytree(demo_mulaw, tmp_path / "results" / demo_mulaw.relative_to(tmp_path / "results" / "demo"))
    tables = [t for t in report_tables("results", task="recon") if not t.part]  # main tables
    assert len(tables) == 1
    rows = {(r.variant, r.cells["pesq_wb"].n, r.cells["pesq_wb"].n_total): r for r in tables[0].rows}
    # mulaw once at 32 of 32 (the two copies of the full run are one run), the --limit 8 run
    # apart, flagged, and never starred
    assert sorted(rows) == [("mulaw", 8, 32), ("mulaw", 32, 32)]
    limited = rows[("mulaw", 8, 32)]
    assert limited.partial and not limited.cells["pesq_wb"].best
    result = CliRunner().invoke(app, ["report", "--task", "recon", "--format", "md"])
    assert result.exit_code == 0, result.output
    assert "n=32/32" in result.output and "n=40" not in result.output
    assert "8 of the dataset's 32 utterances" in result.output
