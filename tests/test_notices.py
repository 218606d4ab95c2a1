"""Notices are said once per process, short; the run's account and the report do not repeat them."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from tokbench import notices
from tokbench.records import make_record
from tokbench.run.account import failure_account

REASON = ("Whisper model 'large-v3' is not available: not cached and example.org is unreachable "
          "(URLError: no network). Looked for /x/large-v3.pt. To fix: run once online.")


@pytest.fixture(autouse=True)
def _fresh():
    notices.forget()
    yield
    notices.forget()


def test_a_notice_is_said_once_per_process():
    said: list[str] = []
    assert notices.once("k", "hello", said.append, reason="why")
    assert not notices.once("k", "hello again", said.append)
    assert said == ["hello"]
    assert notices.said("why") and not notices.said("hello")
    notices.once("other", "second", said.append)
    assert said == ["hello", "second"]


def test_unavailable_asr_is_announced_once(monkeypatch):
    import tokbench.metrics.asr as asr
    from tokbench.metrics.whisper_model import AsrUnavailable

    def offline(*args, **kwargs):
        raise AsrUnavailable(REASON)

    monkeypatch.setattr(asr, "load_asr_model", offline)
    said: list[str] = []
    for _ in range(3):  # three runs (or three tasks) in one process
        scorer = asr.task_scorer(True, "large-v3", None, "cpu", 4, said.append)
        assert scorer is not None and not scorer.available
    assert said == [f"WER/CER will not be computed: {REASON}"]


def _records(reason: str) -> list[dict]:
    return [make_record(f"u{i}", {"pesq_wb": 3.0, "wer": None, "cer": None},
                        reasons={"wer": reason, "cer": reason}) for i in range(2)]


def test_the_account_gives_one_line_per_reason_and_points_back_to_a_notice():
    lines = failure_account(_records(REASON)).lines()
    assert lines == [f"wer, cer not computed for 2 of 2: u0, u1 ({REASON})"]
    notices.once("asr", "WER/CER will not be computed", lambda m: None, reason=REASON)
    assert failure_account(_records(REASON)).lines() == [
        "wer, cer not computed for 2 of 2: u0, u1 (as said above)"]


def test_whisper_offline_reason_names_the_host_not_the_whole_url(monkeypatch, tmp_path):
    import tokbench.metrics.whisper_model as wm

    def no_network(url):
        raise OSError("no network")

    monkeypatch.setattr(wm, "_probe", no_network)
    with pytest.raises(wm.AsrUnavailable) as info:
        wm._load_named("tiny", "cpu", tmp_path)
    text = str(info.value)
    assert "openaipublic.azureedge.net is unreachable" in text
    assert "/models/" not in text and "To fix" in text


def test_terminal_report_leaves_out_columns_no_run_could_fill(tmp_path):
    from tests.report_fixtures import PROTOCOL_A, make_meta, run_spec
    from tokbench.report import report_tables
    from tokbench.report.render import print_tables, render
    from tokbench.results.store import RunStore

    for name, pesq in (("codec-a", 2.0), ("codec-b", 3.0)):
        store = RunStore(tmp_path, run_spec(make_meta(name, "acoustic", 50.0, (1024,)), name,
                                            PROTOCOL_A)).open({})
        for i in range(2):
            store.append(make_record(f"u{i}", {"pesq_wb": pesq + i / 10, "wer": None, "cer": None},
                                     reasons={"wer": REASON, "cer": REASON}))
    tables = report_tables(tmp_path)
    buf = io.StringIO()
    print_tables(tables, Console(file=buf, width=200, color_system=None))
    text = buf.getvalue()
    assert "pesq_wb" in text and "wer ↓" not in text and "cer ↓" not in text
    note = ("wer, cer not shown: no run could compute them (Whisper model 'large-v3' is not "
            "available: not cached and example.org is unreachable)")
    assert note in text and text.count("Whisper") == 1
    assert "wer ↓" in render(tables, "md")  # the files keep every column and the whole reason
