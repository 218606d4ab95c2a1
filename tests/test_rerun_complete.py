"""Re-running a finished run says "already complete" and loads no model and starts no workers."""

from __future__ import annotations

import pytest

from tokbench import notices
from tokbench.resolve import ResolvedTokenizer
from tokbench.results.store import iter_records
from tokbench.run.runner import run

REASON = "Whisper model 'large-v3' is not available: offline in this test"


@pytest.fixture
def loads(monkeypatch):
    """Counts model loads and task runs (the task's run starts the metric workers)."""
    from tokbench.tasks.recon import Reconstruction

    counts = {"load": 0, "task": 0}
    real_load, real_run = ResolvedTokenizer.load, Reconstruction.run

    def load(self, *a, **k):
        counts["load"] += 1
        return real_load(self, *a, **k)

    def task_run(self, ctx):
        counts["task"] += 1
        return real_run(self, ctx)

    monkeypatch.setattr(ResolvedTokenizer, "load", load)
    monkeypatch.setattr(Reconstruction, "run", task_run)
    notices.forget()
    yield counts
    notices.forget()


def _common(tmp_path, said):
    return dict(limit=2, out=tmp_path / "out", workers=0, cache_dir=tmp_path / "c", device="cpu",
                log=said.append)


def test_a_finished_run_is_answered_from_its_folder(tmp_path, loads):
    said: list[str] = []
    first = run("mulaw", "recon", "sample", overrides=["asr=false", "metrics=stoi"],
                **_common(tmp_path, said))
    assert loads == {"load": 1, "task": 1} and not any("already" in s for s in said)
    again = run("mulaw", "recon", "sample", overrides=["asr=false", "metrics=stoi"],
                **_common(tmp_path, said))
    assert loads == {"load": 1, "task": 1}  # no model, no task, no workers
    assert again.status == "complete" and again.path == first.path
    assert said[-1].startswith(f"already complete: {first.path}")
    assert list(again.summary["metric"]) == list(first.summary["metric"])
    assert again.summary["mean"].tolist() == pytest.approx(first.summary["mean"].tolist(),
                                                           nan_ok=True)
    assert again.summary["param"].tolist() == first.summary["param"].tolist()
    assert again.account is not None and again.account.n_utterances == 2
    # more metrics than recorded: the run resumes the usual way
    run("mulaw", "recon", "sample", overrides=["asr=false", "metrics=stoi,si_sdr"],
        **_common(tmp_path, said))
    assert loads == {"load": 2, "task": 2}
    # a task option outside the identity changed (more examples kept): the usual way
    run("mulaw", "recon", "sample", overrides=["asr=false", "metrics=stoi,si_sdr", "keep_audio=1"],
        **_common(tmp_path, said))
    assert loads == {"load": 3, "task": 3}
    # --rerun-failed always goes the usual way
    run("mulaw", "recon", "sample", overrides=["asr=false", "metrics=stoi"], rerun_failed=True,
        **_common(tmp_path, said))
    assert loads["load"] == 4


def test_an_asr_gap_is_retried_only_when_asr_may_work_now(tmp_path, loads, monkeypatch):
    import tokbench.metrics.asr as asr
    from tokbench.metrics.whisper_model import AsrUnavailable
    from tokbench.tasks.recon import Reconstruction

    def offline(*args, **kwargs):
        raise AsrUnavailable(REASON)

    monkeypatch.setattr(asr, "load_asr_model", offline)
    said: list[str] = []
    first = run("mulaw", "recon", "sample", overrides=["metrics=stoi,wer"], **_common(tmp_path, said))
    (record, *_) = [r for r in iter_records(first.path) if r.get("utterance_id")]
    assert record["metrics"]["wer"] is None and record["extra"]["transient"] == ["wer"]
    run("mulaw", "recon", "sample", overrides=["metrics=stoi,wer"], **_common(tmp_path, said))
    assert loads == {"load": 1, "task": 1}  # still no ASR model: nothing to retry
    assert said.count(f"WER/CER will not be computed: {REASON}") == 1  # once per process
    assert said[-1].startswith("already complete")
    # the model may be there now: the run retries its gaps the usual way
    monkeypatch.setattr(Reconstruction, "still_unavailable", lambda self, metrics, log: False)
    run("mulaw", "recon", "sample", overrides=["metrics=stoi,wer"], **_common(tmp_path, said))
    assert loads == {"load": 2, "task": 2}
