"""End-to-end reconstruction on the bundled sample set with the weight-free tokenizers."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import tokbench
from tokbench.cli import app
from tokbench.data import Dataset, Utterance, open_dataset
from tokbench.results.store import iter_records
from tokbench.run.runner import run

NO_ASR = ["asr=false"]


@pytest.fixture(scope="module")
def identity_and_mulaw(tmp_path_factory):
    """identity and mulaw on 6 sample utterances, sharing one cache (reference features reused)."""
    out = tmp_path_factory.mktemp("results")
    cache = tmp_path_factory.mktemp("cache")
    runs = {name: run(name, "recon", "sample", limit=6, out=out, overrides=NO_ASR, workers=2,
                      cache_dir=cache, device="cpu")
            for name in ("identity", "mulaw")}
    return out, runs


@pytest.mark.slow
def test_identity_scores_like_the_original(identity_and_mulaw):
    out, runs = identity_and_mulaw
    s = runs["identity"].summary.set_index("metric")["mean"]
    assert s["pesq_wb"] >= 4.5 and s["stoi"] >= 0.99 and s["secs"] >= 0.99 and s["gpe"] <= 0.01
    assert s["mel_l1"] < 0.01 and s["f0_corr"] > 0.99
    assert s["bitrate_nominal"] == 256_000 and s["token_rate"] == pytest.approx(16000, rel=1e-3)
    assert 0 < s["bitrate_entropy"] < 256_000


@pytest.mark.slow
def test_mulaw_is_lower_but_sane(identity_and_mulaw):
    out, runs = identity_and_mulaw
    ident = runs["identity"].summary.set_index("metric")["mean"]
    mu = runs["mulaw"].summary.set_index("metric")["mean"]
    assert 3.0 < mu["pesq_wb"] < ident["pesq_wb"]
    assert 0.9 < mu["stoi"] <= ident["stoi"] + 1e-6
    assert mu["secs"] > 0.9 and mu["gpe"] < 0.1
    assert mu["bitrate_nominal"] == 128_000 and mu["bitrate_entropy"] <= 128_000
    # Recon records the token statistics too (param = codebook index), from the same counts.
    stats = runs["mulaw"].summary.set_index(["metric", "param"])["mean"]
    assert stats[("token_entropy", 0)] * 16000 == pytest.approx(mu["bitrate_entropy"])
    assert stats[("token_cond_entropy", 0)] < stats[("token_entropy", 0)] <= 8.0
    assert 0 < stats[("codebook_utilisation", 0)] <= 1.0


@pytest.mark.slow
def test_records_and_provenance(identity_and_mulaw):
    out, runs = identity_and_mulaw
    r = runs["mulaw"]
    records = list(iter_records(r.path))
    assert len(records) == 6 and len({x["utterance_id"] for x in records}) == 6
    for rec in records:
        assert rec["metrics"]["wer"] is None and "ASR disabled" in rec["reasons"]["wer"]
        assert rec["extra"]["length_mismatch"] == 0 and rec["metrics"]["rtf_encode"] > 0
    info = json.loads((r.path / "run.json").read_text())
    assert info["status"] == "complete" and info["tokenizer_meta"]["name"] == "mulaw"
    assert info["protocol"]["resampler"] == "soxr-HQ" and info["packages"]["torch"]
    assert info["config"]["task_options"]["asr"] is False
    assert (r.path / "summary.json").is_file() and (r.path / "corpus.jsonl").is_file()
    df = tokbench.load_results(out)
    assert set(df["variant"]) == {"identity", "mulaw"} and df["protocol_id"].nunique() == 1


@pytest.mark.slow
def test_rerun_resumes_without_duplicates(identity_and_mulaw, tmp_path):
    out, runs = identity_and_mulaw
    again = run("mulaw", "recon", "sample", limit=6, out=out, overrides=NO_ASR, workers=0,
                cache_dir=tmp_path)
    assert again.path == runs["mulaw"].path
    assert len(list(iter_records(again.path))) == 6


def test_bad_inputs_are_recorded_not_scored(tmp_path):
    """Corrupt, empty, silent, too short, stereo and odd-rate files in one folder."""
    rng = np.random.default_rng(0)
    d = tmp_path / "data"
    d.mkdir()
    # Real speech: a tone is "a reference without speech" (Silero VAD), whose metrics are null.
    sample = open_dataset("sample")
    clip = sample.load(sample.utterances[0])
    from tokbench.io.audio import resample

    def speechy(sr, s):
        wav = resample(clip.wav, clip.sample_rate, sr)[:int(sr * s)]
        return (wav + 0.001 * rng.standard_normal(len(wav))).astype(np.float32)

    sf.write(d / "good.wav", speechy(16000, 2.5), 16000)
    sf.write(d / "odd_rate.wav", speechy(22050, 2.5), 22050)
    sf.write(d / "stereo.wav", np.stack([speechy(44100, 2.0)] * 2, axis=1), 44100)
    sf.write(d / "silence.wav", np.zeros(16000, np.float32), 16000)
    sf.write(d / "short.wav", speechy(16000, 0.1), 16000)
    (d / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    sf.write(d / "empty.wav", np.zeros(0, np.float32), 16000)
    result = run("mulaw", "recon", str(d), out=tmp_path / "out", overrides=NO_ASR, workers=0,
                 cache_dir=tmp_path / "cache")
    recs = {r["utterance_id"]: r for r in iter_records(result.path)}
    assert set(recs) == {"good", "odd_rate", "stereo", "silence", "short", "corrupt", "empty"}
    for name in ("corrupt", "empty"):
        assert recs[name]["metrics"]["pesq_wb"] is None
        assert "unreadable" in recs[name]["reasons"]["pesq_wb"] or "no samples" in recs[name]["reasons"]["pesq_wb"]
    assert recs["silence"]["metrics"]["pesq_wb"] is None and recs["silence"]["reasons"]["pesq_wb"]
    assert recs["silence"]["metrics"]["stoi"] is None
    assert recs["short"]["metrics"]["pesq_wb"] is None and recs["short"]["reasons"]["pesq_wb"]
    for name in ("good", "odd_rate", "stereo"):
        assert recs[name]["metrics"]["pesq_wb"] is not None
    assert recs["stereo"]["extra"]["downmixed"] is True and recs["odd_rate"]["extra"]["source_rate"] == 22050
    text = "".join(p.read_text() for p in result.path.glob("*.jsonl"))
    assert "NaN" not in text and "Infinity" not in text


NAN_PLUGIN = '''
from dataclasses import dataclass
from tokbench.types import TokenizerBase, TokenizerMeta, Tokens, Audio

@dataclass(frozen=True)
class Opts:
    pass

class BrokenDecoder(TokenizerBase):
    """Decodes every other utterance to NaN."""
    name = "broken"
    Options = Opts

    @classmethod
    def describe(cls, options):
        return TokenizerMeta(name="broken", family="test", kind="acoustic", sample_rate=16000,
                             frame_rate=16000.0, n_codebooks=1, codebook_sizes=(256,))

    def encode(self, wav, lengths):
        return Tokens(((wav.clamp(-1, 0.99) + 1) * 128).long()[:, None], lengths)

    def decode(self, tokens, prompt=None):
        wav = tokens.codes[:, 0].float() / 128 - 1
        if wav.shape[0] > 1:
            wav[1::2] = float("nan")
        return Audio(wav, tokens.frame_lengths, 16000)
'''


def test_nan_from_a_decoder_is_a_reason(tmp_path):
    plugin = tmp_path / "broken.py"
    plugin.write_text(NAN_PLUGIN)
    result = run("", "recon", "sample", limit=4, batch_size=4, adapter=f"{plugin}:BrokenDecoder",
                 out=tmp_path / "out", overrides=NO_ASR, workers=0, cache_dir=tmp_path / "c")
    recs = list(iter_records(result.path))
    nan = [r for r in recs if r["metrics"]["pesq_wb"] is None]
    ok = [r for r in recs if r["metrics"]["pesq_wb"] is not None]
    assert len(nan) == 2 and len(ok) == 2
    assert all("NaN or infinite" in r["reasons"]["pesq_wb"] for r in nan)
    assert all(r["metrics"]["token_rate"] is not None for r in nan)  # the encoder did work


def test_keep_audio_writes_examples(tmp_path):
    result = run("mulaw", "recon", "sample", limit=3, out=tmp_path, workers=0,
                 overrides=["asr=false", "keep_audio=2"], cache_dir=tmp_path / "c")
    examples = sorted(p.name for p in (result.path / "examples").iterdir())
    assert len(examples) == 2
    first = result.path / "examples" / examples[0]
    ref, sr = sf.read(first / "original.wav")
    hyp, sr2 = sf.read(first / "reconstruction.wav")
    assert sr == sr2 == 16000 and len(ref) == len(hyp)


def test_cli_errors_exit_2_with_a_suggestion(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["run", "--tokenizer", "mulw", "--task", "recon", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "did you mean 'mulaw'" in r.output
    r = runner.invoke(app, ["run", "--tokenizer", "mulaw", "--task", "recon", "--dataset", "sampel",
                            "--out", str(tmp_path)])
    assert r.exit_code == 2 and "did you mean 'sample'" in r.output
    r = runner.invoke(app, ["run", "--tokenizer", "mulaw", "--task", "recon", "--set", "bitz=4",
                            "--out", str(tmp_path)])
    assert r.exit_code == 2 and "did you mean 'bits'" in r.output


def test_cli_run_prints_the_summary(tmp_path):
    r = CliRunner().invoke(app, ["run", "--tokenizer", "mulaw", "--task", "recon", "--limit", "2",
                                 "--set", "asr=false", "--workers", "0", "--out", str(tmp_path),
                                 "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "pesq_wb" in r.output and "2/2" in r.output


@pytest.mark.slow
def test_sigkill_then_rerun_loses_and_duplicates_nothing(tmp_path):
    """Kill the run with SIGKILL once k records are on disk, run again, check the records."""
    k = 2
    env = {**os.environ, "TOKBENCH_CACHE": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "tokbench.cli", "run", "--tokenizer", "mulaw", "--task", "recon",
           "--limit", "6", "--batch-size", "1", "--workers", "0", "--set", "asr=false",
           "--out", str(tmp_path / "out"), "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600  # generous: a loaded 2-core machine imports slowly
    killed_at = None
    try:
        while time.time() < deadline and proc.poll() is None:
            shards = list((tmp_path / "out").rglob("utterances.rank0.jsonl"))
            n = shards[0].read_bytes().count(b"\n") if shards else 0
            if n >= k:
                proc.send_signal(signal.SIGKILL)
                killed_at = n
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None and killed_at is None:
            proc.kill()
        proc.wait(timeout=60)
    assert killed_at is not None and killed_at < 6, "the run finished before it could be killed"
    assert proc.returncode == -signal.SIGKILL
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    shard = next((tmp_path / "out").rglob("utterances.rank0.jsonl"))
    ids = [json.loads(line)["utterance_id"] for line in shard.read_text().splitlines() if line.strip()]
    expected = [u.id for u in open_dataset("sample").utterances[:6]]
    assert sorted(ids) == sorted(expected) and len(ids) == len(set(ids))


def test_dataset_objects_can_be_passed_directly(tmp_path):
    src = open_dataset("sample")
    ds = Dataset("mini", "r0", [Utterance(u.id, u.path, u.text, u.speaker) for u in src.utterances[:2]])
    result = run("identity", "recon", ds, out=tmp_path, overrides=NO_ASR, workers=0, cache_dir=tmp_path / "c")
    assert result.run_id.startswith("mini/recon/identity/")
    assert len(list(iter_records(result.path))) == 2


@pytest.mark.slow
def test_asr_with_a_local_checkpoint_and_cached_ground_truth(tmp_path, monkeypatch):
    """A tiny random Whisper (128 mels, as large-v3) through --set asr_checkpoint: WER is computed,
    the ground-truth transcription is made once, and the identity row reuses it."""
    from tokbench.metrics import asr as asr_module
    from tokbench.testing import save_whisper_checkpoint, tiny_random_whisper

    ckpt = save_whisper_checkpoint(tiny_random_whisper(n_mels=128), tmp_path / "tiny.pt")
    calls = []
    real = asr_module.transcribe
    monkeypatch.setattr(asr_module, "transcribe", lambda model, wavs, *a, **k: calls.append(len(wavs)) or real(model, wavs, *a, **k))
    common = dict(limit=3, out=tmp_path / "out", workers=0, cache_dir=tmp_path / "cache",
                  overrides=[f"asr_checkpoint={ckpt}", "asr_batch_size=3"])
    ident = run("identity", "recon", "sample", **common)
    assert calls == [3]  # the ground truth only: identity output is the original, bit for bit
    mu = run("mulaw", "recon", "sample", **common)
    assert calls == [3, 3]  # mu-law output is transcribed; the ground truth comes from the cache
    for result in (ident, mu):
        recs = list(iter_records(result.path))
        assert all(r["metrics"]["wer"] is not None for r in recs)
        assert all(r["extra"]["asr_text_original"] == r["extra"]["asr_text"] for r in recs) == (result is ident)
        assert all(r["extra"]["ratio"]["wer"][1] > 0 for r in recs)
    info = json.loads((ident.path / "run.json").read_text())
    assert info["protocol"]["asr"]["model"].startswith("checkpoint-sha256:")


def test_more_metrics_later_resume_the_run_and_add_only_what_is_lacking(tmp_path, monkeypatch):
    """--metrics is not part of the run identity: a larger selection resumes the finished run,
    decodes again only for the lacking metrics, and never recomputes the recorded ones."""
    from tokbench.run import scoring

    common = dict(limit=2, out=tmp_path / "out", workers=0, cache_dir=tmp_path / "c", device="cpu")
    first = run("mulaw", "recon", "sample", overrides=[*NO_ASR, "metrics=stoi"], **common)
    before = {r["utterance_id"]: r for r in iter_records(first.path)}
    assert {k for r in before.values() for k in r["metrics"]} == {
        "stoi", "token_rate", "rtf_encode", "rtf_decode", "length_ratio"}
    asked: list[tuple] = []
    real = scoring.score_signals
    monkeypatch.setattr(scoring, "score_signals",
                        lambda *a, **k: asked.append(tuple(a[5])) or real(*a, **k))
    again = run("mulaw", "recon", "sample", overrides=[*NO_ASR, "metrics=stoi,si_sdr,f0_rmse_cents"],
                **common)
    assert again.path == first.path and asked == [("si_sdr", "f0_rmse_cents")] * 2
    after = {r["utterance_id"]: r for r in iter_records(again.path)}
    for utt, rec in after.items():
        assert rec["metrics"]["stoi"] == before[utt]["metrics"]["stoi"]
        assert rec["metrics"]["rtf_decode"] == before[utt]["metrics"]["rtf_decode"]
        assert rec["metrics"]["si_sdr"] is not None and "f0_rmse_cents" in rec["metrics"]
    assert set(again.summary["metric"]) >= {"stoi", "si_sdr", "f0_rmse_cents"}
    third = run("mulaw", "recon", "sample", overrides=[*NO_ASR, "metrics=si_sdr"], **common)
    assert third.path == first.path and len(asked) == 2  # nothing lacking: nothing computed


def test_unknown_metric_selection_is_a_clean_error(tmp_path):
    r = CliRunner().invoke(app, ["run", "--tokenizer", "mulaw", "--task", "recon", "--metrics",
                                 "sigal", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "did you mean 'signal'" in r.output and "Traceback" not in r.output
