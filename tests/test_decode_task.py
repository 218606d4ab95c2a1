"""The decode-task base: the example of docs/adding-a-task.md is a whole task (a few lines),
run by the runner, and its figures equal a direct encode/decode and library call."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import tokbench
from tokbench.data import open_dataset
from tokbench.data.batches import load_item
from tokbench.io.audio import resample
from tokbench.metrics import signal
from tokbench.resolve import load_tokenizer, resolve_tokenizer
from tokbench.run.decode_score import fit_output, frame_tolerance
from tokbench.run.runner import RunSettings, run_resolved

DOC = Path(__file__).resolve().parent.parent / "docs" / "adding-a-task.md"


def _doc_example() -> dict:
    """The Python block under "## A decode task", executed."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## A decode task", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace


def test_the_documented_decode_task_runs_and_scores_like_a_direct_call(tmp_path):
    ns = _doc_example()
    task = ns["Echo"](ns["EchoOptions"]())
    data = open_dataset("sample")
    result = run_resolved(resolve_tokenizer("mulaw"), task, data,
                          RunSettings(out=tmp_path / "out", workers=0, cache_dir=tmp_path / "c",
                                      log=lambda m: None), limit=2)
    assert result.status == "complete"
    df = tokbench.load_results(tmp_path / "out")
    assert set(df["task"]) == {"echo"} and df["utterance_id"].nunique() == 2
    # The base adds the timings and the length ratio to the task's selection (stoi only).
    assert set(df["metric"]) == {"stoi", "rtf_encode", "rtf_decode", "token_rate", "length_ratio"}

    tok = load_tokenizer("mulaw")
    sr = tok.meta.sample_rate
    for utt in data.utterances[:2]:
        item = load_item(data, utt, sr)
        wav = torch.from_numpy(item.wav)[None]
        with torch.inference_mode():
            out = tok.decode(tok.encode(wav, torch.tensor([wav.shape[1]])))
        hyp = resample(out.item(0).float().numpy(), out.sample_rate, 16000)
        hyp16, _ = fit_output(hyp, len(item.ref16), frame_tolerance(tok.meta.frame_rate))
        got = df[(df.utterance_id == utt.id) & (df.metric == "stoi")]["value"].item()
        assert got == pytest.approx(signal.stoi_score(item.ref16, hyp16, extended=False), rel=1e-6)
        assert np.isfinite(df[(df.utterance_id == utt.id) & (df.metric == "length_ratio")]["value"].item())


def test_a_decode_task_without_produce_says_what_is_missing(tmp_path):
    from tokbench.run.decode_task import DecodeTask

    class Bare(DecodeTask):
        name = "bare"
        Options = _doc_example()["EchoOptions"]

    with pytest.raises(NotImplementedError, match="must implement produce"):
        run_resolved(resolve_tokenizer("mulaw"), Bare(Bare.Options()), open_dataset("sample"),
                     RunSettings(out=tmp_path / "out", workers=0, cache_dir=tmp_path / "c",
                                 log=lambda m: None), limit=1)
