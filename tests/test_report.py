"""The reporter: tables, formats, charts, published figures, leaderboard data and the CLI."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.report_fixtures import PROTOCOL_A, XSS_NAME, make_meta, make_results, write_run
from tokbench.cli import app
from tokbench.protocol import protocol_id
from tokbench.report import (
    ChartUnavailable,
    build_site,
    build_tables,
    radar_figure,
    render,
    report_tables,
    save_figure,
    write_charts,
)
from tokbench.report import charts as charts_mod
from tokbench.report.leaderboard import script_json
from tokbench.report.published import ReferenceError, load_references, read_reference
from tokbench.results import filter_results, load_results, runs_table

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "results" / "reference"


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    return make_results(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def tables(results):
    return report_tables(results, task="recon")


def main_table(tables):
    (table,) = [t for t in tables if t.protocol_id == protocol_id(PROTOCOL_A) and not t.part]
    return table


def row(table, label):
    (found,) = [r for r in table.rows if r.label == label]
    return found


# ----------------------------------------------------------------------------- tables

def test_runs_table_lists_provenance_and_unsupported_runs(results):
    runs = runs_table(results).set_index("variant")
    assert len(runs) == 6
    assert runs.loc["mulaw", "bitrate_nominal"] == 128000 and runs.loc["mulaw", "status"] == "complete"
    assert runs.loc["nodec", "status"] == "unsupported"
    assert "lacks the capability decode" in runs.loc["nodec", "status_reason"]
    assert math.isnan(runs.loc["nodec", "bitrate_nominal"])  # never loaded: no meta, no rate
    assert runs.loc["hubert-km500", "model_resolved"] == "0123abcd"
    assert runs.loc["mulaw", "created"].startswith("2025-01-02")
    assert runs.loc["mulaw", "protocol"]["asr"]["model"] == "large-v3"


def test_protocols_are_never_mixed(tables):
    # protocol A: main table, then mulaw's per-codebook statistics; then protocol B
    assert [(t.protocol_id == protocol_id(PROTOCOL_A), t.part) for t in tables] == [
        (True, ""), (True, "token_entropy, codebook_utilisation"), (False, "")]
    other = tables[2]
    assert [r.label for r in other.rows] == ["mulaw-4bit"]
    assert all(r.label != "mulaw-4bit" for r in main_table(tables).rows)


def test_rows_grouped_by_kind_with_ground_truth_first(tables):
    t = main_table(tables)
    assert [(r.kind, r.label) for r in t.rows] == [
        ("reference", "identity"), ("acoustic", XSS_NAME), ("acoustic", "mulaw"),
        ("semantic", "hubert-km500"), ("semantic", "nodec")]
    assert row(t, "mulaw").kbps == 128 and row(t, "mulaw").token_rate == 16000
    assert row(t, XSS_NAME).kbps == pytest.approx(6.0) and row(t, XSS_NAME).token_rate == 600


def test_cells_mean_ci_n_and_gaps(tables):
    t = main_table(tables)
    mulaw = row(t, "mulaw")
    pesq = mulaw.cells["pesq_wb"]
    assert pesq.mean == pytest.approx(4.0) and pesq.n == 6
    assert 3.8 <= pesq.ci_low < 4.0 < pesq.ci_high <= 4.2
    assert mulaw.cells["wer"].mean == pytest.approx(100 * 2 / 60)  # corpus ratio, not a mean
    assert "secs" not in row(t, XSS_NAME).cells  # a gap, never an average over what exists
    silent = row(t, "hubert-km500").cells["pesq_wb"]
    assert silent.n == 0 and silent.n_total == 6 and not silent.scored
    assert silent.reason == "decoded audio is silent"
    nodec = row(t, "nodec")
    assert nodec.status == "unsupported" and not nodec.cells
    assert [c.metric for c in t.columns] == ["wer", "pesq_wb", "stoi", "secs", "mel_l1"]
    assert [c.arrow for c in t.columns] == ["↓", "↑", "↑", "↑", "↓"]


def test_best_marks_follow_declared_direction_and_skip_ground_truth(results, tables):
    t = main_table(tables)
    best = {c.metric: [r.label for r in t.rows if c.metric in r.cells and r.cells[c.metric].best]
            for c in t.columns}
    # identity is better everywhere but is the ground truth; lower wer and mel_l1 are better
    assert best == {"wer": ["mulaw"], "pesq_wb": ["mulaw"], "stoi": ["mulaw"], "secs": ["mulaw"],
                    "mel_l1": ["mulaw"]}
    low = main_table(report_tables(results, task="recon", tokenizers=[XSS_NAME, "hubert-km500"]))
    marked = {c.metric: [r.label for r in low.rows if c.metric in r.cells and r.cells[c.metric].best]
              for c in low.columns}
    assert marked["wer"] == [XSS_NAME]  # 20% beats 30%: the minimum, as wer is declared "lower"
    assert marked["stoi"] == [XSS_NAME]  # 0.85 beats 0.70: the maximum
    assert marked["secs"] == []  # only one row scored it: nothing to mark


def test_filters(results):
    df, runs = load_results(results), runs_table(results)
    only = filter_results(df, tokenizers=["mulaw"], metrics=["stoi"])
    assert set(only["variant"]) == {"mulaw", "mulaw-4bit"}  # model name matches every preset
    assert set(only["metric"]) == {"stoi"}
    assert filter_results(runs, dataset="nope").empty
    t = report_tables(results, metrics=["stoi", "wer"], tokenizers=["mulaw"])
    assert [c.metric for c in main_table(t).columns] == ["stoi", "wer"]
    assert report_tables(results, task="vc") == []
    # a metric requested but absent from a table is simply not a column there
    assert [c.metric for c in build_tables(df, runs, metrics=["secs"])[0].columns] == ["secs"]


def test_unfinished_run_is_flagged_not_hidden(tmp_path):
    from tests.report_fixtures import run_spec
    from tokbench.records import make_record
    from tokbench.results.store import RunStore

    store = RunStore(tmp_path, run_spec(make_meta("mulaw", "acoustic", 16000.0, (256,)), "mulaw",
                                     PROTOCOL_A)).open({})
    store.append(make_record("utt0", {"pesq_wb": 3.0}))  # crashed after one utterance
    (table,) = report_tables(tmp_path)
    assert table.rows[0].cells["pesq_wb"].n == 1
    # no live process holds the run: it reads as interrupted, not as running forever
    assert "run status is 'interrupted'" in render([table], "md")


def test_metrics_recorded_per_param_get_tables_of_their_own(tmp_path):
    from tests.report_fixtures import run_spec
    from tokbench.records import make_record
    from tokbench.results.store import RunStore

    store = RunStore(tmp_path, run_spec(make_meta("mulaw", "acoustic", 16000.0, (256,)), "mulaw",
                                        PROTOCOL_A)).open({})
    store.append(make_record("utt0", {"pesq_wb": 3.0}))
    store.write_corpus(
        [make_record(None, {"bitrate_entropy": 1000.0})]
        + [make_record(None, {"token_entropy": 7.0 + q, "codebook_utilisation": 0.5}, param=q)
           for q in (0, 1)]
        + [make_record(None, {"bpe_reduction": r, "bpe_lossless": 1.0}, param=v)
           for v, r in ((1024, 1.5), (256, 1.0))])
    main, bpe, stats = report_tables(tmp_path)
    assert main.part == "" and [c.metric for c in main.columns] == ["pesq_wb", "bitrate_entropy"]
    assert [r.param for r in main.rows] == [None]  # one row per run
    assert bpe.part == "bpe_reduction, bpe_lossless" and bpe.title.endswith("by param")
    assert [r.param for r in bpe.rows] == [256, 1024]  # numeric order, not text order
    assert [r.cells["bpe_reduction"].mean for r in bpe.rows] == [1.0, 1.5]
    assert stats.part == "token_entropy, codebook_utilisation"
    assert [(r.param, r.cells["token_entropy"].mean) for r in stats.rows] == [(0, 7.0), (1, 8.0)]
    md = render([bpe], "md")
    assert "| acoustic | mulaw | 256 |" in md and "| acoustic | mulaw | 1024 |" in md
    assert [o.chart for o in write_charts([bpe, stats], tmp_path / "c")] == []  # no radar of codebooks
    # one run: each param has one row, so nothing is marked best (seeds or sizes never compete)
    assert not any(c.best for r in bpe.rows for c in r.cells.values())


def test_codebook_statistics_are_never_starred_but_bpe_sizes_are(tmp_path):
    """A codebook index names different things in two tokenizers (an Opus byte position, a
    Codec2 one): per-codebook statistics get no best; BPE figures at one size still do."""
    from tests.report_fixtures import run_spec
    from tokbench.records import make_record
    from tokbench.report.render import legend
    from tokbench.results.store import RunStore

    for name, util in (("codec-a", 0.5), ("codec-b", 0.9)):
        store = RunStore(tmp_path, run_spec(make_meta(name, "classic", 50.0, (256, 256)), name,
                                            PROTOCOL_A)).open({})
        store.append(make_record("utt0", {"pesq_wb": 3.0}))
        store.write_corpus(
            [make_record(None, {"token_entropy": 7.0, "codebook_utilisation": util}, param=q)
             for q in (0, 1)]
            + [make_record(None, {"bpe_reduction": util * 2, "bpe_lossless": 1.0}, param=256)])
    _, bpe, stats = report_tables(tmp_path)
    assert stats.part == "token_entropy, codebook_utilisation" and len(stats.rows) == 4
    assert not any(c.best for r in stats.rows for c in r.cells.values())
    assert "no best marked" in legend(stats) and "no best marked" not in legend(bpe)
    starred = [r.label for r in bpe.rows if r.cells["bpe_reduction"].best]
    assert starred == ["codec-b"]  # two runs at one vocabulary size still compete


# ----------------------------------------------------------------------------- formats

def test_markdown(tables):
    md = render(tables, "md")
    assert "| ground truth | identity |" in md
    assert "**4.00** [" in md and "n=6" in md
    assert "\\<script\\>alert(1)\\</script\\>" in md and "<script>" not in md
    xss_line = next(line for line in md.splitlines() if "alert" in line)
    assert xss_line.split(" | ")[7].strip() == "–"  # secs column: a gap
    assert "n/a n=0/6" in md
    assert "not supported" in md and "lacks the capability decode" in md
    assert md.index("protocol " + protocol_id(PROTOCOL_A)) < md.index("mulaw-4bit")


def test_csv(tables):
    rows = list(csv.DictReader(io.StringIO(render(tables, "csv"))))
    assert len(rows) == 7
    (stats,) = [r for r in rows if r["param"] == "0"]
    assert stats["label"] == "mulaw" and float(stats["token_entropy_mean"]) == 7.6
    rows = [r for r in rows if r["param"] == ""]
    by = {r["label"]: r for r in rows}
    assert float(by["mulaw"]["pesq_wb_mean"]) == pytest.approx(4.0)
    assert by["mulaw"]["pesq_wb_best"] == "1" and by["identity"]["pesq_wb_best"] == "0"
    assert by[XSS_NAME]["secs_mean"] == "" and by[XSS_NAME]["secs_n"] == ""
    assert by["hubert-km500"]["pesq_wb_n"] == "0" and by["hubert-km500"]["pesq_wb_mean"] == ""
    assert by["nodec"]["status"] == "unsupported"
    assert by["mulaw-4bit"]["protocol_id"] != by["mulaw"]["protocol_id"]


def test_latex(tables):
    tex = render(tables, "latex")
    assert tex.count(r"\begin{tabular}") == 3 and r"\toprule" in tex
    assert r"\textbf{4.00}" in tex and r"pesq\_wb $\uparrow$" in tex and r"wer $\downarrow$" in tex
    assert r"\textless{}script\textgreater{}alert(1)" in tex and "<script>" not in tex
    xss_line = next(line for line in tex.splitlines() if "alert" in line)
    assert xss_line.split(" & ")[6] == "--"


def test_terminal_table_never_crops_numbers(tables):
    text = render(tables, "table")
    assert "ground truth" in text and "4.00 *" in text and "not supported" in text
    assert "…" not in text
    from rich.console import Console

    from tokbench.report.render import print_tables

    narrow = Console(file=io.StringIO(), width=80)
    print_tables(tables, narrow)
    out = narrow.file.getvalue()
    assert "…" not in out and "[1/" in out  # split into several tables, none cropped
    assert max(len(line) for line in out.splitlines()) <= 80


# ----------------------------------------------------------------------------- charts

def test_charts_written_or_explained(tables, tmp_path):
    outcomes = write_charts(tables, tmp_path)
    by = {(o.table, o.chart): o for o in outcomes}
    main = main_table(tables).title
    for chart in ("radar", "bitrate", "pareto-pesq_wb", "pareto-wer", "pareto-stoi", "pareto-secs"):
        files = by[(main, chart)].files
        assert files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert files["pdf"].read_bytes()[:5] == b"%PDF-"
        svg = files["svg"].read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
        assert "<script" not in svg  # names are drawn as paths, comments are escaped
    other = [t for t in tables if t.title != main and not t.part][0].title
    radar = by[(other, "radar")]
    assert not radar.ok and "at least 3" in radar.message and "pesq_wb, stoi" in radar.message
    assert by[(other, "bitrate")].ok
    again = save_figure(radar_figure(main_table(tables)), tmp_path / "again")
    assert again["svg"].read_bytes() == by[(main, "radar")].files["svg"].read_bytes()  # reproducible
    assert not list(tmp_path.glob(".*.tmp"))  # written through temporary files, none left


def test_kind_order_matches_the_types_module():
    from tokbench.report.tables import KINDS
    from tokbench.types import KINDS as TYPES_KINDS

    assert KINDS == TYPES_KINDS


def test_radar_scales_by_declared_range_outward_is_better(tables):
    fig = radar_figure(main_table(tables))
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    mulaw = lines["mulaw"].get_ydata()
    # axes: wer, pesq_wb, stoi, secs, mel_l1 (closed polygon repeats the first point)
    assert mulaw[0] == pytest.approx(1 - (100 * 2 / 60) / 100)  # lower wer -> further out
    assert mulaw[1] == pytest.approx((4.0 - 1.0) / (4.644 - 1.0))
    assert mulaw[4] == pytest.approx(1 - 0.2 / 3.0)
    xss = lines[f"{XSS_NAME} (missing: secs)"].get_ydata()
    assert math.isnan(xss[3])  # a gap in the polygon, not a zero


def test_chart_failures_never_break_the_report(tables, tmp_path, monkeypatch):
    empty = build_tables(load_results(tmp_path), runs_table(tmp_path))
    assert empty == [] and write_charts(empty, tmp_path) == []
    bare = main_table(tables)
    no_metrics = type(bare)(bare.task, bare.dataset, bare.protocol_id, [], bare.rows)
    with pytest.raises(ChartUnavailable, match="has 0"):
        radar_figure(no_metrics)

    def broken(table, colours=None):
        raise RuntimeError("boom")

    monkeypatch.setitem(charts_mod.CHARTS, "radar", ("radar", broken))
    outcomes = write_charts([bare], tmp_path, formats=("svg",))
    assert outcomes[0].message == "could not draw the radar chart: RuntimeError: boom"
    assert outcomes[1].ok


# ----------------------------------------------------------------------------- published figures

def test_shipped_reference_matches_the_shared_table_and_is_described():
    refs = {r.source.name: r for r in load_references(REFERENCE)}
    ref = refs["dates2025_speech_recon.csv"]
    assert ref.task == "recon" and ref.dataset == "librispeech-test-clean"
    assert "2506.10274" in ref.citation
    assert len(ref.rows) == 16 and ref.rows[0]["tokenizer"] == "ground-truth"
    mimi = [r for r in ref.rows if r["variant"] == "4.4kbps"][0]
    assert mimi["pesq"] == 3.38 and mimi["wer"] == 2.96 and mimi["n_codebooks"] == 32.0
    cols = {c.name: c for c in ref.columns}
    assert cols["pesq"].metric == "pesq_wb" and cols["pesq"].comparable == "caveats"
    assert cols["wer"].comparable == "no" and cols["spk_sim"].metric == "spk_sim_wavlm"
    assert cols["spk_sim"].comparable == "caveats" and cols["utmos"].comparable == "caveats"
    assert set(ref.comparable_columns()) == {"pesq_wb", "stoi", "spk_sim_wavlm", "utmos"}
    assert all(ref.kind(r["tokenizer"]) for r in ref.rows)
    shared = Path("/work/shared/reference/dates2025_speech_recon.csv")
    if shared.is_file():  # the shipped copy must be the published table, unedited
        assert (REFERENCE / shared.name).read_bytes() == shared.read_bytes()


def test_reference_errors_name_the_file(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"csv": "x.csv"}))
    with pytest.raises(ReferenceError, match="x.json: missing key 'citation'"):
        read_reference(tmp_path / "x.json")
    with pytest.raises(ReferenceError, match="does not exist"):
        load_references(tmp_path / "nope")


# ----------------------------------------------------------------------------- leaderboard

def test_script_json_cannot_break_out_of_its_block():
    text = script_json({"name": "</script><script>alert(1)</script><!--", "x": float("nan")})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"name": "</script><script>alert(1)</script><!--", "x": None}


def test_site_is_self_contained_and_escaped(results, tmp_path):
    out = tmp_path / "site"
    index = build_site(results, out, reference=REFERENCE)
    page = index.read_text()
    assert "alert(1)" not in page.replace("alert(1)\\u003c", "")  # only inside escaped JSON
    assert "<script>alert" not in page and "<b>repo</b>" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no CDN, no remote fonts
    assert "@import" not in page and "fetch(" not in page
    data = json.loads(re.search(r'id="tokbench-data">(.*?)</script>', page, re.S).group(1))
    names = [r["label"] for t in data["tables"] for r in t["rows"]]
    assert XSS_NAME in names and len(data["runs"]) == 6
    # charts and audio examples are copied beside the page and referenced relatively
    for t in data["tables"]:
        for chart in t["charts"]:
            for rel in chart["files"].values():
                assert (out / rel).is_file() and not rel.startswith("/")
    assert [ex["utterance_id"] for ex in data["examples"]] == ["utt0", "utt1"]
    for ex in data["examples"]:
        assert set(ex["files"]) == {"original", "reconstruction"}
        assert all((out / f["src"]).is_file() for f in ex["files"].values())
    # the sample set is not the published table's dataset: no reported rows inline
    assert not any(r["reported"] is not None for t in data["tables"] for r in t["rows"])
    assert data["references"][0]["rows"][0]["values"]["stoi"] == "1.00"  # as printed


def test_site_refuses_foreign_folder_and_rebuilds_its_own(results, tmp_path):
    from tokbench.report import SiteError

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(SiteError, match="not empty"):
        build_site(results, foreign)
    out = tmp_path / "site"
    build_site(results, out, reference=REFERENCE, charts=False)
    stale = out / "charts" / "stale.svg"
    stale.parent.mkdir()
    stale.write_text("<svg/>")
    build_site(results, out, reference=REFERENCE, charts=False)
    assert not stale.exists() and (out / "index.html").is_file()


def test_reported_rows_join_tables_of_the_same_dataset(tmp_path):
    write_run(tmp_path, make_meta("mulaw", "acoustic", 16000.0, (256,)), "mulaw",
              {"pesq_wb": [3.0, 3.2], "stoi": [0.9, 0.92], "secs": [0.8, 0.8], "utmos": [3.1, 3.3]},
              wer=[(1, 10), (0, 10)], dataset="librispeech-test-clean")
    index = build_site(tmp_path, tmp_path / "site", reference=REFERENCE, charts=False)
    data = json.loads(re.search(r'id="tokbench-data">(.*?)</script>', index.read_text(), re.S).group(1))
    (table,) = data["tables"]
    reported = [r for r in table["rows"] if r["reported"] is not None]
    assert len(reported) == 16 + 2  # DATES Table 4, and the X-Codec2 README's two rows
    xcodec2 = [r for r in reported if r["label"] == "xcodec2 0.8kbps"][0]
    # the table's columns; its wer is HuBERT ASR
    assert set(xcodec2["cells"]) == {"pesq_wb", "stoi", "utmos"}
    assert xcodec2["cells"]["pesq_wb"]["text"] == "2.44" and xcodec2["cells"]["utmos"]["text"] == "4.13"
    mimi = [r for r in reported if r["label"] == "mimi 4.4kbps"][0]
    # wer is not comparable (beam 5 vs greedy); spk_sim is, but this table has no spk_sim_wavlm
    assert set(mimi["cells"]) == {"pesq_wb", "stoi", "utmos"} and mimi["cells"]["utmos"]["text"] == "3.92"
    assert mimi["cells"]["pesq_wb"]["text"] == "3.38" and mimi["kbps"] == pytest.approx(4.4)
    assert "reported pesq" in mimi["cells"]["pesq_wb"]["note"] and mimi["kind"] == "hybrid"
    ours = [r for r in table["rows"] if r["reported"] is None]
    assert [r["label"] for r in ours] == ["mulaw"]


# ----------------------------------------------------------------------------- CLI

def test_cli_report_formats_filters_and_errors(results, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["report", "--results", str(results), "--format", "md", "--task",
                              "recon", "--metric", "pesq_wb", "--metric", "wer"])
    assert res.exit_code == 0, res.output
    assert "pesq\\_wb ↑" in res.output and "stoi" not in res.output
    res = runner.invoke(app, ["report", "--results", str(results), "--format", "csv",
                              "--tokenizer", "hubert-km500", "--charts", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert "hubert-km500" in res.output and "mulaw" not in res.output.split("chart")[0]
    assert (tmp_path / "c").is_dir()
    out = tmp_path / "t.tex"
    res = runner.invoke(app, ["report", "-r", str(results), "-f", "latex", "-o", str(out)])
    assert res.exit_code == 0 and out.read_text().startswith("% recon on sample")
    res = runner.invoke(app, ["report", "--results", str(results), "--task", "vc"])
    assert res.exit_code == 2 and "tasks: recon" in flat(res.output)
    res = runner.invoke(app, ["report", "--results", str(results), "--metric", "pesq"])
    assert res.exit_code == 2 and "recorded: " in flat(res.output) and "pesq_wb" in res.output
    res = runner.invoke(app, ["report", "--results", str(tmp_path / "none")])
    assert res.exit_code == 2 and "does not exist" in flat(res.output)


def flat(text: str) -> str:
    """Rich wraps long messages at the console width: compare with the line breaks removed."""
    return " ".join(text.split())


def test_cli_leaderboard(results, tmp_path):
    runner = CliRunner()
    out = tmp_path / "lb"
    res = runner.invoke(app, ["leaderboard", "--results", str(results), "--out", str(out),
                              "--no-charts"])
    assert res.exit_code == 0, res.output
    assert (out / "index.html").is_file() and not (out / "charts").exists()
    assert "index.html" in res.output
    (out / "index.html").unlink()
    (out / "notes.txt").write_text("not ours")
    shutil.rmtree(out / "audio")
    (out / ".tokbench-site").unlink()
    res = runner.invoke(app, ["leaderboard", "--results", str(results), "--out", str(out)])
    assert res.exit_code == 2 and "not empty" in flat(res.output)
