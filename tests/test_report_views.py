"""The reporter's views: readable labels, family colours, radar choice, Pareto frontier,
coverage marks, published figures beside ours, audio examples by utterance id, default table,
compact columns, and atomic chart and site builds."""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.report_fixtures import PROTOCOL_A, make_meta, make_results, run_spec, write_run
from tokbench.records import make_record
from tokbench.report import build_site, report_tables, write_charts
from tokbench.report import leaderboard as lb
from tokbench.report.charts import (
    REFERENCE_COLOUR,
    ChartUnavailable,
    bitrate_figure,
    family_colours,
    pareto_figure,
    pareto_front,
    radar_figure,
    radar_rows,
    save_figure,
)
from tokbench.report.coverage import row_coverage
from tokbench.results import load_results
from tokbench.results.store import RunSpec, RunStore
from tokbench.types import ModelSource, TokenizerMeta

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "results" / "reference"
N = 4


def meta(name: str, family: str, kind: str, frame_rate: float, sizes: tuple[int, ...]) -> TokenizerMeta:
    m = TokenizerMeta(name=name, family=family, kind="acoustic", sample_rate=16000,
                      frame_rate=frame_rate, n_codebooks=len(sizes), codebook_sizes=sizes,
                      source=ModelSource(repo_id=None, revision=None, resolved=None))
    # Any kind, also one the types module does not know yet (e.g. "classic" codecs): the
    # reporter must handle it generically.
    object.__setattr__(m, "kind", kind)
    return m


def page_data(index: Path) -> dict:
    return json.loads(re.search(r'id="tokbench-data">(.*?)</script>', index.read_text(), re.S).group(1))


def table_of(tables, task="recon"):
    return [t for t in tables if t.task == task and not t.part][0]


@pytest.fixture(scope="module")
def families(tmp_path_factory) -> Path:
    """Ground truth and six families (one with two models, one with three presets), one partial
    run (pesq_wb scored on 3 of 4 utterances)."""
    root = tmp_path_factory.mktemp("families")
    full = {"pesq_wb": [4.64] * N, "stoi": [1.0] * N, "secs": [1.0] * N}
    write_run(root, meta("identity", "pcm", "reference", 16000.0, (65536,)), "identity", full,
              wer=[(0, 10)] * N)
    rows = [  # name, family, kind, frame rate, codebooks, pesq
        ("enc", "encodec", "acoustic", 75.0, (1024,) * 2, 1.6),
        ("enc", "encodec", "acoustic", 75.0, (1024,) * 8, 2.8),
        ("enc", "encodec", "acoustic", 75.0, (1024,) * 32, 3.7),
        ("dac-a", "dac", "acoustic", 75.0, (1024,) * 8, 3.4),
        ("dac-b", "dac", "acoustic", 50.0, (1024,) * 12, 3.9),
        ("opus", "opus", "classic", 50.0, (256,) * 15, 3.0),
        ("units", "hubert", "semantic", 50.0, (500,), 1.2),
        ("mix", "mimi", "hybrid", 12.5, (2048,) * 8, 2.2),
        ("late", "zzz", "acoustic", 25.0, (1024,), 1.5),
    ]
    for name, family, kind, fr, sizes, pesq in rows:
        m = meta(name, family, kind, fr, sizes)
        values = {"pesq_wb": [pesq] * N, "stoi": [0.8 + pesq / 40] * N, "secs": [0.5 + pesq / 10] * N}
        if name == "dac-a":
            values["pesq_wb"] = [pesq, pesq, pesq, None]  # partial: 3 of 4
        write_run(root, m, f"{name}-{len(sizes)}q", values, wer=[(2, 10)] * N)
    return root


# ----------------------------------------------------------------------------- labels

def test_runs_of_one_preset_are_labelled_by_the_option_that_differs(tmp_path):
    for bits in (8, 4):
        m = replace(make_meta("mulaw", "acoustic", 16000.0, (2 ** bits,)),
                    options={"bits": bits, "mu": 255})
        write_run(tmp_path, m, "mulaw", {"pesq_wb": [3.0, 3.1]})
    (table,) = report_tables(tmp_path)
    assert sorted(r.label for r in table.rows) == ["mulaw (bits=4)", "mulaw (bits=8)"]


# ----------------------------------------------------------------------------- colours and radar

def test_family_colours_are_shared_and_generic(families):
    table = table_of(report_tables(families))
    colours = family_colours([table])
    assert set(colours) == {"encodec", "dac", "opus", "hubert", "mimi", "zzz"}  # any kind works
    assert len(set(colours.values())) == len(colours)  # distinct
    # kind order (classic codecs right after the ground truth), then name: stable
    assert list(colours)[:3] == ["opus", "dac", "encodec"]
    fig = bitrate_figure(table, colours=colours)
    legend = {t.get_text(): h.get_color() for h, t in zip(fig.legends[0].legend_handles,
                                                        fig.legends[0].get_texts(), strict=True)}
    assert legend["encodec: enc"] == colours["encodec"] and legend["opus"] == colours["opus"]
    radar = radar_figure(table, colours=colours)
    by_label = {line.get_label(): line.get_color() for line in radar.axes[0].get_lines()}
    assert by_label["identity"] == REFERENCE_COLOUR
    assert by_label["dac-b-12q"] == colours["dac"]


def test_radar_draws_ground_truth_and_best_per_family(families):
    table = table_of(report_tables(families))
    rows, note = radar_rows(table)
    # best of dac is dac-b, of encodec its 32-codebook preset; four families fit beside the truth
    assert [r.label for r in rows] == ["identity", "dac-b-12q", "enc-32q", "opus-15q", "mix-8q"]
    assert "2 more families not drawn" in note  # zzz and hubert score lower
    fig = radar_figure(table)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 5
    assert len({line.get_linestyle() for line in lines}) == 4  # '-', '--', ':', '-.' and ...
    assert len({(line.get_linestyle(), line.get_marker()) for line in lines}) == 5  # a 5th
    chosen, _ = radar_rows(table, rows=["dac-a-8q", "units-1q"])
    assert [r.label for r in chosen] == ["dac-a-8q", "units-1q"]
    labels = [line.get_label() for line in radar_figure(table, rows=["dac-a-8q"]).axes[0].get_lines()]
    assert labels == ["dac-a-8q (partial: 3 of 4)"]  # partial rows are said so
    with pytest.raises(ChartUnavailable, match="no row 'nope'"):
        radar_rows(table, rows=["nope"])


def test_legend_never_over_the_title(families):
    table = table_of(report_tables(families))
    for fig in (radar_figure(table), bitrate_figure(table), pareto_figure(table, "pesq_wb")):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        title = fig._suptitle.get_window_extent(renderer)
        for legend in fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]:
            assert not legend.get_window_extent(renderer).overlaps(title)


def test_pareto_front():
    points = [(1.0, 2.0), (2.0, 1.5), (3.0, 3.0), (3.0, 2.5), (6.0, 3.0), (12.0, 4.0)]
    assert pareto_front(points, higher_is_better=True) == [0, 2, 5]
    assert pareto_front([(1.0, 10.0), (2.0, 5.0), (4.0, 7.0)], higher_is_better=False) == [0, 1]


def test_pareto_chart_joins_each_models_presets_and_draws_the_frontier(families):
    table = table_of(report_tables(families))
    fig = pareto_figure(table, "pesq_wb")
    ax = fig.axes[0]
    enc = [line for line in ax.get_lines() if len(line.get_xdata()) == 3 and line.get_linestyle() == "-"]
    assert any(list(line.get_ydata()) == [1.6, 2.8, 3.7] for line in enc)  # one line, by kbps
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any(label.startswith("Pareto frontier (") for label in labels)
    assert "ground truth (identity)" in labels
    with pytest.raises(ChartUnavailable, match="none of mel_l1"):
        pareto_figure(table, "mel_l1")


# ----------------------------------------------------------------------------- coverage

def test_partial_rows_are_marked_in_the_table_data(families, tmp_path):
    table = table_of(report_tables(families))
    (dac,) = [r for r in table.rows if r.label == "dac-a-8q"]
    cov = row_coverage(dac)
    assert cov is not None and cov.partial and cov.text == "3 of 4"
    data = lb.site_data(load_results(families), lb.runs_table(families), site=tmp_path, charts=False)
    (t,) = [t for t in data["tables"] if not t["part"]]
    (row,) = [r for r in t["rows"] if r["label"] == "dac-a-8q"]
    assert row["coverage"] == {"n": 3, "n_total": 4, "partial": True, "text": "3 of 4"}
    assert row["cells"]["pesq_wb"]["partial"] and row["cells"]["pesq_wb"]["n_scored"] == 3
    assert not row["cells"]["stoi"]["partial"]


# ----------------------------------------------------------------------------- columns and default

def test_columns_nobody_computed_go_last_and_compact_ones_are_flagged(tmp_path):
    write_run(tmp_path, make_meta("mulaw", "acoustic", 16000.0, (256,)), "mulaw",
              {"wer": [None, None], "cer": [None, None], "pesq_wb": [3.0, 3.2], "mel_l1": [0.3, 0.2]},
              reasons={"wer": "ASR disabled", "cer": "ASR disabled"})
    data = lb.site_data(load_results(tmp_path), lb.runs_table(tmp_path), site=tmp_path / "s",
                        charts=False)
    cols = data["tables"][0]["columns"]
    assert [(c["metric"], c["computed"]) for c in cols] == [
        ("pesq_wb", True), ("mel_l1", True), ("wer", False), ("cer", False)]
    assert {c["metric"]: c["compact"] for c in cols} == {
        "pesq_wb": True, "mel_l1": False, "wer": True, "cer": False}


def test_default_table_is_recon_on_the_dataset_with_most_runs():
    def t(task, dataset, n, part=""):
        return {"id": f"{task}-{dataset}-{part}", "task": task, "dataset": dataset, "part": part,
                "n_runs": n}

    tables = [t("bpe", "sample", 9), t("recon", "aaa", 1), t("recon", "sample", 2),
              t("recon", "sample", 5, part="x"), t("vc", "zzz", 7)]
    assert lb.default_table(tables) == "recon-sample-"
    assert lb.default_table([t("bpe", "a", 1), t("vc", "b", 3)]) == "vc-b-"
    assert lb.default_table([]) is None


# ----------------------------------------------------------------------------- published figures

def test_published_figures_sit_beside_ours_with_difference_and_ci(tmp_path):
    ds = "librispeech-test-clean"
    write_run(tmp_path, meta("identity", "pcm", "reference", 16000.0, (65536,)), "identity",
              {"pesq_wb": [4.64] * N, "stoi": [1.0] * N}, dataset=ds)
    # 75 Hz x 8 codebooks x 10 bits = 6 kbps: the published encodec-24k 6kbps row (pesq 2.77)
    write_run(tmp_path, meta("encodec-24k", "encodec", "acoustic", 75.0, (1024,) * 8),
              "encodec-24k-6kbps", {"pesq_wb": [2.6, 2.9, 2.7, 2.8], "stoi": [0.5] * N}, dataset=ds)
    # 1.5 kbps is also published, 3 kbps is not: no figure beside it
    write_run(tmp_path, meta("encodec-24k", "encodec", "acoustic", 75.0, (1024,) * 4),
              "encodec-24k-3kbps", {"pesq_wb": [2.0] * N}, dataset=ds)
    data = page_data(build_site(tmp_path, tmp_path / "site", reference=REFERENCE, charts=False))
    rows = {r["label"]: r for r in data["tables"][0]["rows"] if r["reported"] is None}
    pub = rows["encodec-24k-6kbps"]["cells"]["pesq_wb"]["published"]
    assert pub["text"] == "2.77" and pub["comparable"] == "caveats" and pub["label"] == "encodec-24k 6kbps"
    assert pub["diff"] == pytest.approx(2.75 - 2.77) and pub["in_ci"] is True
    far = rows["encodec-24k-6kbps"]["cells"]["stoi"]["published"]
    assert far["text"] == "0.94" and far["in_ci"] is False  # 0.5 with a zero-width CI
    assert "wer" not in rows["encodec-24k-6kbps"]["cells"]  # not comparable: never placed
    assert rows["encodec-24k-3kbps"]["cells"]["pesq_wb"]["published"] is None
    truth = rows["identity"]["cells"]["pesq_wb"]["published"]
    assert truth["text"] == "4.64" and truth["diff"] == pytest.approx(0.0)


# ----------------------------------------------------------------------------- audio examples

def _wav(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.1 * np.random.default_rng(seed).standard_normal(800)).astype(np.float32), 16000)


def test_examples_are_labelled_by_utterance_id_and_vc_files_appear(tmp_path):
    spec = RunSpec(dataset="sample", dataset_revision="r", task="vc", task_version="1",
                   task_options={}, tokenizer="units", variant="units", tokenizer_options={},
                   tokenizer_revision=None, protocol=PROTOCOL_A, kind="semantic")
    store = RunStore(tmp_path, spec).open({"tokenizer_meta": meta("units", "hubert", "semantic", 50.0, (500,)).to_dict()})
    for k, uid in enumerate(("spk/a x", "b")):
        store.append(make_record(uid, {"secs_target": 0.5}))
        for i, role in enumerate(("source", "prompt", "converted")):
            _wav(store.examples_dir(uid) / f"{role}.wav", seed=100 + 10 * k + i)
    store.finish({"run_id": spec.run_id, "metrics": []}, {})
    rec_spec = run_spec(make_meta("mulaw", "acoustic", 16000.0, (256,)), "mulaw", PROTOCOL_A)
    rec = RunStore(tmp_path, rec_spec).open({"tokenizer_meta": make_meta("mulaw", "acoustic", 16000.0, (256,)).to_dict()})
    rec.append(make_record("spk/a x", {"pesq_wb": 3.0}))
    _wav(rec.examples_dir("spk/a x") / "original.wav", seed=100)  # the vc run's source
    _wav(rec.examples_dir("spk/a x") / "reconstruction.wav", seed=300)
    _wav(rec.path / "examples" / "orphan" / "original.wav", seed=301)
    _wav(rec.path / "examples" / "named" / "original.wav", seed=302)
    (rec.path / "examples" / "named" / "example.json").write_text(json.dumps({"utterance_id": "a/x"}))
    rec.finish({"run_id": rec_spec.run_id, "metrics": []}, {})
    out = tmp_path / "site"
    data = page_data(build_site(tmp_path, out, charts=False))
    by = {(data["runs"][e["run"]]["task"], e["utterance_id"]): e for e in data["examples"]}
    assert set(by) == {("vc", "spk/a x"), ("vc", "b"), ("recon", "spk/a x"), ("recon", "orphan"),
                       ("recon", "a/x")}  # example.json names the utterance
    assert by[("vc", "b")]["roles"] == ["source", "prompt", "converted"]  # inputs first
    assert "labelled by folder name" in by[("recon", "orphan")]["note"]
    assert by[("recon", "spk/a x")]["note"] is None
    for e in data["examples"]:
        assert all((out / f["src"]).is_file() for f in e["files"].values())
    # the same recording kept twice is stored once (the vc source is the recon original)
    srcs = [f["src"] for e in data["examples"] for f in e["files"].values()]
    assert len(srcs) - len(set(srcs)) == 1


# ----------------------------------------------------------------------------- atomic writes

def test_a_failing_chart_write_leaves_the_old_file(families, tmp_path):
    table = table_of(report_tables(families))
    fig = radar_figure(table)
    first = save_figure(fig, tmp_path / "radar", formats=("svg",))["svg"]
    before = first.read_bytes()

    class Boom(Exception):
        pass

    def half_then_fail(fh, **kwargs):
        fh.write(b"<svg trunc")
        raise Boom

    fig.savefig = half_then_fail
    with pytest.raises(Boom):
        save_figure(fig, tmp_path / "radar", formats=("svg",))
    assert first.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["radar.svg"]  # no temporary left
    assert oct(first.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_failure_mid_build_leaves_the_old_site_intact(tmp_path, monkeypatch):
    results = make_results(tmp_path / "results")
    out = tmp_path / "site"
    build_site(results, out, reference=REFERENCE)
    (out / "notes.txt").write_text("mine")  # a file the tool did not write
    snapshot = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert any(p.parts[0] == "charts" for p in snapshot) and any(p.parts[0] == "audio" for p in snapshot)

    def fail_after_charts(*args, **kwargs):
        raise KeyboardInterrupt  # e.g. Ctrl-C after the charts were redrawn

    monkeypatch.setattr(lb, "render_page", fail_after_charts)
    with pytest.raises(KeyboardInterrupt):
        build_site(results, out, reference=REFERENCE)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == snapshot
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "site"]  # stage removed
    monkeypatch.undo()
    build_site(results, out, reference=REFERENCE, charts=False)
    assert (out / "notes.txt").read_text() == "mine"  # carried over, never deleted
    assert not (out / "charts").exists()  # the new site replaced the old one whole
    assert oct((out / "index.html").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def test_a_killed_builds_leftover_is_cleaned_only_if_it_is_ours(tmp_path):
    results = make_results(tmp_path / "results")
    ours = tmp_path / ".site.tokbench-stage-abc"
    (ours / "charts").mkdir(parents=True)
    theirs = tmp_path / ".site.tokbench-stage-def"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    build_site(results, tmp_path / "site", charts=False)
    assert not ours.exists() and (theirs / "notes.txt").read_text() == "mine"


def test_load_results_on_a_missing_path_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_results(tmp_path / "nope")


def test_write_charts_into_a_file_is_an_error(families, tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError, match="is a file"):
        write_charts(report_tables(families), tmp_path / "f")


def test_cli_charts_into_a_file_is_one_line(families, tmp_path):
    from typer.testing import CliRunner

    from tokbench.cli import app

    (tmp_path / "f").write_text("")
    res = CliRunner().invoke(app, ["report", "--results", str(families), "--charts", str(tmp_path / "f")])
    assert res.exit_code == 2 and "is a file" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["report", "--results", str(families), "--format", "csv",
                                   "--charts", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert "pareto-pesq_wb chart:" in res.output and (tmp_path / "c").is_dir()
    assert len(list((tmp_path / "c").glob("*-radar.*"))) == 3  # png, svg, pdf


def _referenced_files_exist(site: Path) -> bool:
    data = page_data(site / "index.html")
    files = [f for t in data["tables"] for c in t["charts"] for f in c["files"].values()]
    files += [f["src"] for e in data["examples"] for f in e["files"].values()]
    return bool(files) and all((site / f).is_file() and (site / f).stat().st_size > 0 for f in files)


@pytest.mark.slow
def test_killed_leaderboard_builds_leave_a_whole_site(tmp_path):
    """SIGKILL `tokbench leaderboard` at several points: the site is always the old one or the
    new one, and every chart and audio file its page names exists and is not empty."""
    import signal
    import subprocess
    import sys
    import time

    results = make_results(tmp_path / "results")
    site = tmp_path / "site"
    cmd = [sys.executable, "-m", "tokbench.cli", "leaderboard", "--results", str(results),
           "--out", str(site)]
    subprocess.run(cmd, check=True, capture_output=True)
    assert _referenced_files_exist(site)
    for delay in (0.5, 1.5, 2.5, 4.0):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert _referenced_files_exist(site), f"killed after {delay} s"
    subprocess.run(cmd, check=True, capture_output=True)  # the next build removes the leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "site"]
