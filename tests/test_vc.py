"""Task ``vc`` end to end on the sample set with tiny random weights, unsupported tokenizers, and
``recon`` of a prompt-driven tokenizer (same-speaker prompts, ``prompt=self`` marked leak)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import tokbench
from tests.tiny_vc import save_official_layout, save_tiny_centroids, save_tiny_wavlm
from tokbench.cli import app
from tokbench.data import open_dataset
from tokbench.data.prompts import Prompt
from tokbench.io.audio import fit_length
from tokbench.io.cache import Cache
from tokbench.protocol import protocol_settings
from tokbench.results.store import iter_records
from tokbench.run.runner import run
from tokbench.run.scoring import ReferenceKeys
from tokbench.tasks.recon import ReconOptions, Reconstruction
from tokbench.tasks.vc.task import prompt_key, score_conversion
from tokbench.testing import save_whisper_checkpoint, tiny_random_whisper

TOKENIZER = "wavlm-large-l6-km1000"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("vc")
    vocoder, _ = save_official_layout(root / "g.pt")
    return {
        "root": root, "wavlm": save_tiny_wavlm(root / "wavlm"),
        "whisper": str(save_whisper_checkpoint(tiny_random_whisper(n_mels=128), root / "whisper.pt")),
        "tokenizer": [f"centroids={save_tiny_centroids(root / 'km.npz', 'wavlm-large', 6, 20, False)}",
                      "k=20", "normalize=false", "vocoder=knn-vc", f"vocoder_checkpoint={vocoder}"],
    }


@pytest.fixture(scope="module")
def vc_run(tiny):
    """vc on 2 sample utterances (one speaker as source, 8 as possible targets), 5 s prompts,
    ASR through a tiny random Whisper, CPU metrics in one worker process."""
    out, cache = tiny["root"] / "results", tiny["root"] / "cache"
    kwargs = dict(limit=2, out=out, workers=1, cache_dir=cache, device="cpu",
                  checkpoint=tiny["wavlm"], batch_size=4,
                  overrides=[*tiny["tokenizer"], "prompt_seconds=5", "seed=1",
                             f"asr_checkpoint={tiny['whisper']}", "keep_audio=1"])
    return run(TOKENIZER, "vc", "sample", **kwargs), kwargs


def test_vc_pairs_prompts_and_metrics(vc_run):
    result, _ = vc_run
    assert result.status == "complete"
    ds = open_dataset("sample")
    speaker = {u.id: u.speaker for u in ds.utterances}
    records = list(iter_records(result.path))
    assert len(records) == 2
    for r in records:
        x, m = r["extra"], r["metrics"]
        assert x["target_speaker"] != x["source_speaker"] == speaker[r["utterance_id"]]
        assert r["utterance_id"] not in x["prompt_utterances"] and not x["prompt_leak"]
        assert {speaker[p] for p in x["prompt_utterances"]} == {x["target_speaker"]}
        assert 0 < x["prompt_seconds"] <= 5.0
        for name in ("secs_target", "secs_source"):  # a random vocoder: plumbing, not quality
            assert m[name] is None and "speech" in r["reasons"][name] or -1 <= m[name] <= 1
        assert m["f0_corr"] is None and r["reasons"]["f0_corr"] or -1 <= m["f0_corr"] <= 1
        assert m["wer"] is not None and x["ratio"]["wer"][1] > 0 and m["rtf_decode"] > 0
        assert x["ratio"]["rtf_decode"][1] == pytest.approx(x["duration"])  # corpus: total/total
    pairs = json.loads((result.path / "pairs.json").read_text())
    assert pairs["seed"] == 1 and pairs["prompt_seconds"] == 5.0
    assert [p["source"] for p in pairs["pairs"]] == [u.id for u in ds.utterances[:2]]
    by_source = {p["source"]: p for p in pairs["pairs"]}
    for r in records:
        assert by_source[r["utterance_id"]]["target_speaker"] == r["extra"]["target_speaker"]
        assert by_source[r["utterance_id"]]["prompt"] == r["extra"]["prompt_utterances"]
    info = json.loads((result.path / "run.json").read_text())
    assert info["tokenizer_meta"]["options"]["vocoder"] == "knn-vc"
    assert info["protocol"]["vc"]["prompt_seconds"] == 5.0
    assert info["config"]["task_options"]["prompt_seconds"] == 5.0
    assert (result.path / "examples").is_dir()
    summary = result.summary.set_index("metric")
    assert {"secs_target", "secs_source", "f0_corr", "wer", "cer"} <= set(summary.index)


def test_conversion_scores_compare_with_the_right_signals(tmp_path):
    """secs_target is measured against the prompt and secs_source against the source: real
    speech of the target speaker standing in for a perfect conversion must score closer to the
    target than to the source (Resemblyzer tells the sample voices apart)."""
    ds = open_dataset("sample")
    by_id = {u.id: ds.load(u).wav for u in ds.utterances}
    keys = ReferenceKeys("sample", ds.revision)
    prompt = Prompt("spk02", ("spk02-001", "spk02-002", "spk02-003"), (3.0, 3.0, 3.0))
    target16 = np.concatenate([by_id[i] for i in prompt.utterance_ids])
    src = by_id["spk05-001"]
    hyp, _ = fit_length(by_id["spk02-004"], len(src))
    s = score_conversion(hyp, src, target16, Cache(tmp_path), keys, "spk05-001",
                         prompt_key(keys, prompt))
    assert s.values["secs_target"] > s.values["secs_source"] + 0.1
    assert -1 <= s.values["f0_corr"] <= 1 and s.extra["pitch_frames_both_voiced"] > 10
    assert prompt_key(keys, prompt) != prompt_key(keys, Prompt("spk02", ("spk02-001",), (3.0,)))


def test_vc_is_stable_and_resumes(vc_run, tmp_path):
    result, kwargs = vc_run
    before = (result.path / "pairs.json").read_text()
    again = run(TOKENIZER, "vc", "sample", **{**kwargs, "workers": 0, "cache_dir": tmp_path})
    assert again.path == result.path and (again.path / "pairs.json").read_text() == before
    assert len(list(iter_records(again.path))) == 2


def test_tokenizers_without_speaker_prompts_are_not_supported(tmp_path):
    mu = run("mulaw", "vc", "sample", limit=2, out=tmp_path, overrides=["asr=false"], workers=0)
    assert mu.status == "unsupported" and "speaker_prompt" in mu.reason
    summary = json.loads((mu.path / "summary.json").read_text())
    assert "speaker_prompt" in summary["unsupported"]
    semantic = run(TOKENIZER, "vc", "sample", limit=2, out=tmp_path, overrides=["asr=false"])
    assert semantic.status == "unsupported" and "needs a vocoder" in semantic.reason
    cli = CliRunner().invoke(app, ["run", "--tokenizer", "mulaw", "--task", "vc", "--limit", "2",
                                   "--out", str(tmp_path / "cli"), "--set", "asr=false"])
    assert cli.exit_code == 0, cli.output
    assert "not supported" in cli.output


def test_recon_gives_prompt_tokenizers_same_speaker_prompts_or_a_marked_leak(tiny, vc_run):
    # the vc run's cache: the reference F0 and speaker embeddings of these sources are reused
    common = dict(limit=1, out=tiny["root"] / "recon", workers=0, device="cpu",
                  cache_dir=tiny["root"] / "cache", checkpoint=tiny["wavlm"])
    other = run(TOKENIZER, "recon", "sample", overrides=[*tiny["tokenizer"], "asr=false",
                                                         "prompt_seconds=4"], **common)
    leak = run(TOKENIZER, "recon", "sample", overrides=[*tiny["tokenizer"], "asr=false",
                                                        "prompt=self"], **common)
    for r in iter_records(other.path):
        x = r["extra"]
        assert r["utterance_id"] not in x["prompt_utterances"] and x["prompt_leak"] is False
        assert x["prompt_speaker"] == r["utterance_id"].split("-")[0] and x["prompt_seconds"] <= 4
        assert r["metrics"]["secs"] is not None or r["reasons"]["secs"]
    for r in iter_records(leak.path):
        assert r["extra"]["prompt_utterances"] == [r["utterance_id"]] and r["extra"]["prompt_leak"]
    df = tokbench.load_results(tiny["root"] / "recon")
    ids = df.groupby("run_id")["protocol_id"].first()
    assert ids[other.run_id] != ids[leak.run_id]  # the leak is a different protocol
    assert "leak" in json.loads((leak.path / "run.json").read_text())["protocol"]["prompt"]
    # same-speaker prompts keep the default protocol: such rows sit beside the codecs' rows
    assert json.loads((other.path / "run.json").read_text())["protocol"] == protocol_settings(
        **Reconstruction(ReconOptions(asr=False)).protocol())
