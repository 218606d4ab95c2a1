"""`tokbench score`: audio made elsewhere, scored with the same metrics and the same store."""

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import tokbench
from tokbench.cli import app
from tokbench.data import open_dataset
from tokbench.io.audio import fit_length, load_audio, resample
from tokbench.metrics import mel, pitch, signal, speaker
from tokbench.metrics.selection import DEFAULT


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """References from the sample set; outputs degraded and written at 16, 24 and 44.1 kHz."""
    root = tmp_path_factory.mktemp("pairs")
    ref, hyp = root / "ref", root / "hyp"
    ref.mkdir()
    hyp.mkdir()
    rng = np.random.default_rng(0)
    ds = open_dataset("sample")
    lines = []
    for utt, rate in zip(ds.utterances[:3], (16000, 24000, 44100), strict=True):
        a = ds.load(utt)
        sf.write(ref / f"{utt.id}.wav", a.wav, a.sample_rate)
        noisy = a.wav + 0.01 * rng.standard_normal(len(a.wav)).astype(np.float32)
        sf.write(hyp / f"{utt.id}.flac", resample(noisy, a.sample_rate, rate), rate)
        lines.append(f"{utt.id} {utt.text}")
    sf.write(hyp / "stray.wav", np.zeros(1600, np.float32), 16000)  # no reference
    sf.write(ref / "lonely.wav", ds.load(ds.utterances[5]).wav, 16000)  # no output
    (root / "text.txt").write_text("\n".join(lines) + "\n")
    return root


def test_score_matches_direct_library_calls(pairs, tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["score", "--ref", str(pairs / "ref"), "--hyp", str(pairs / "hyp"),
                                 "--text", str(pairs / "text.txt"), "--out", str(out), "--no-asr",
                                 "--workers", "0"])
    assert r.exit_code == 0, r.output
    # singular for one (issue 26: "1 outputs" read wrong)
    assert "1 reference without an output" in r.output and "1 output without a reference" in r.output
    assert "1 reference has no output in" in r.output and "1 output has no reference in" in r.output
    df = tokbench.load_results(out)
    lonely = df[df.utterance_id == "lonely"]
    assert lonely["value"].isna().all() and lonely["reason"].str.contains("no output file").all()
    df = df[df.utterance_id != "lonely"]
    assert set(df["utterance_id"]) == {p.stem for p in (pairs / "hyp").glob("*.flac")}
    assert set(df["task"]) == {"score"} and set(df["variant"]) == {"hyp"}
    for stem in set(df["utterance_id"]):
        r_ = load_audio(pairs / "ref" / f"{stem}.wav")
        h_ = load_audio(pairs / "hyp" / f"{stem}.flac")
        ref16 = resample(r_.wav, r_.sample_rate, 16000)
        hyp16, _ = fit_length(resample(h_.wav, h_.sample_rate, 16000), len(ref16))
        expected = {
            **signal.pesq_scores(ref16, hyp16).values,
            **signal.stoi_scores(ref16, hyp16).values,
            "mel_l1": mel.mel_l1(ref16, hyp16),
            "secs": speaker.secs(speaker.speaker_embedding(ref16), hyp16),
            **pitch.pitch_scores(pitch.f0_contour(ref16), pitch.f0_contour(hyp16)).values,
        }
        got = df[df.utterance_id == stem].set_index("metric")["value"]
        # Without --metrics: exactly the default set (f0_rmse_cents is not in it).
        assert set(got.index) == {*DEFAULT, "length_ratio"}, stem
        for name, value in expected.items():
            if name not in DEFAULT:
                continue
            assert got[name] == pytest.approx(value, rel=1e-6, abs=1e-9), (stem, name)
    assert df[df.metric == "pesq_wb"]["value"].notna().all()


def test_score_rejects_missing_folders(tmp_path):
    r = CliRunner().invoke(app, ["score", "--ref", str(tmp_path / "nope"), "--hyp", str(tmp_path),
                                 "--out", str(tmp_path / "o"), "--no-asr"])
    assert r.exit_code == 2 and "is not a folder" in r.output


def test_score_more_metrics_later_adds_only_what_is_lacking(pairs, tmp_path, monkeypatch):
    """--metrics on a finished run: the new metrics are added (as supplements) and those
    already recorded are not computed again; the values equal direct library calls."""
    import fast_bss_eval
    from speechmos import dnsmos as speechmos_dnsmos

    from tokbench.metrics import distortion
    from tokbench.run import scoring

    out = tmp_path / "out"
    args = ["score", "--ref", str(pairs / "ref"), "--hyp", str(pairs / "hyp"), "--text",
            str(pairs / "text.txt"), "--out", str(out), "--no-asr", "--workers", "0"]
    r = CliRunner().invoke(app, [*args, "--metrics", "stoi"])
    assert r.exit_code == 0, r.output
    first = tokbench.load_results(out)
    assert set(first["metric"]) == {"stoi", "length_ratio"}
    run_dirs = {p.parent for p in out.rglob("run.json")}

    seen: list[tuple] = []
    real = scoring.score_signals

    def spy(*a, **k):
        seen.append(tuple(a[5]))
        return real(*a, **k)

    monkeypatch.setattr(scoring, "score_signals", spy)
    r = CliRunner().invoke(app, [*args, "--metrics", "stoi,si_sdr,sdr,dnsmos_ovrl,dnsmos_p808"])
    assert r.exit_code == 0, r.output
    assert {p.parent for p in out.rglob("run.json")} == run_dirs  # the same run, resumed
    assert seen and all("stoi" not in names for names in seen)  # stoi was not computed again
    df = tokbench.load_results(out)
    df = df[df.utterance_id != "lonely"]
    for stem in set(df["utterance_id"]):
        got = df[df.utterance_id == stem].set_index("metric")["value"]
        assert set(got.index) == {"stoi", "si_sdr", "sdr", "dnsmos_ovrl", "dnsmos_p808", "length_ratio"}
        assert got["stoi"] == first[first.utterance_id == stem].set_index("metric")["value"]["stoi"]
        r_ = load_audio(pairs / "ref" / f"{stem}.wav")
        h_ = load_audio(pairs / "hyp" / f"{stem}.flac")
        ref16 = resample(r_.wav, r_.sample_rate, 16000).astype(np.float64)
        hyp16 = fit_length(resample(h_.wav, h_.sample_rate, 16000), len(ref16))[0].astype(np.float64)
        assert got["si_sdr"] == pytest.approx(float(fast_bss_eval.si_sdr(ref16[None], hyp16[None])[0]))
        assert got["sdr"] == pytest.approx(distortion.sdr(ref16, hyp16))
        direct = speechmos_dnsmos.run(hyp16, 16000)
        assert got["dnsmos_ovrl"] == pytest.approx(float(direct["ovrl_mos"]), abs=1e-6)
        assert got["dnsmos_p808"] == pytest.approx(float(direct["p808_mos"]), abs=1e-6)
    lonely = tokbench.load_results(out)
    lonely = lonely[lonely.utterance_id == "lonely"]
    assert set(lonely["metric"]) == {"stoi", "si_sdr", "sdr", "dnsmos_ovrl", "dnsmos_p808", "length_ratio"}
    assert lonely["value"].isna().all()


def test_score_rejects_an_unknown_metric(pairs, tmp_path):
    r = CliRunner().invoke(app, ["score", "--ref", str(pairs / "ref"), "--hyp", str(pairs / "hyp"),
                                 "--out", str(tmp_path / "o"), "--no-asr", "--metrics", "pesq_wbb"])
    assert r.exit_code != 0 and "did you mean 'pesq_wb'" in r.output
