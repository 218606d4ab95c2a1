"""Task invariance: edit distances, perturbations, known answers, the runner and the report."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tokbench.data import open_dataset
from tokbench.io.cache import Cache
from tokbench.run.runner import run
from tokbench.run.task import Artefact, RunContext
from tokbench.tasks.invariance.perturbations import (
    apply,
    fractional_delay,
    parse_perturbation,
    rms,
    room_impulse_response,
)
from tokbench.tasks.invariance.task import Invariance, InvarianceOptions
from tokbench.tasks.invariance.unit_edit import change, dedup, edit_distance, frame_ids

PLUGINS = Path(__file__).parent / "plugins"
SIGN_BITS = f"{PLUGINS / 'toy_tokens.py'}:SignBits"


def quiet(_: str) -> None:
    pass


def levenshtein(a, b) -> int:
    """The textbook dynamic programme, to check the library against."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def test_edit_distance_matches_the_direct_dynamic_programme(rng):
    for _ in range(40):
        a = rng.integers(0, 4, rng.integers(0, 30))
        b = rng.integers(0, 4, rng.integers(0, 30))
        assert edit_distance(a, b) == levenshtein(a.tolist(), b.tolist())
    assert edit_distance(np.array([70000, 1, 2]), np.array([1, 2])) == 1  # large codes too


def test_change_counts_dedup_and_aligned_changes():
    a = np.array([1, 1, 2, 2, 2, 3])
    b = np.array([1, 1, 2, 5, 2, 3, 3])
    c = change(a, b)
    assert (c.distance, c.length) == (2, 6)  # one substitution, one insertion
    assert dedup(a).tolist() == [1, 2, 3] and dedup(b).tolist() == [1, 2, 5, 2, 3]
    assert (c.distance_dedup, c.length_dedup) == (2, 3)
    assert c.changed == 1 and c.code_change_rate == pytest.approx(1 / 6)
    assert change(a, a[:4]).changed == 2  # frames the perturbed side lacks count as changed
    assert change(np.array([], dtype=int), b).ued is None  # nothing to divide by: no score
    x, y = frame_ids(np.array([[0, 0, 1], [5, 6, 5]]), np.array([[0, 1], [6, 5]]))
    assert x.tolist()[1:] == y.tolist() and len(set(x.tolist())) == 3


def test_random_sequences_have_ued_near_one(rng):
    a, b = rng.integers(0, 1024, 2000), rng.integers(0, 1024, 2000)
    assert 0.95 < change(a, b).ued <= 1.0


def test_perturbation_names_round_trip_and_errors_say_what_to_write():
    for text in ("gain=+6dB", "gain=-6dB", "noise-white=10dB", "shift=0.25hop", "speed=0.9x",
                 "pitch=-2st", "reverb=0.3s", "reencode", "noise-babble=0dB"):
        assert parse_perturbation(text).name == text
    assert parse_perturbation("gain=6dB").name == "gain=+6dB"
    for bad, why in (("gain=6", "dB"), ("loud=3dB", "KIND"), ("speed=0x", "positive"),
                     ("reencode=1x", "no level")):
        with pytest.raises(ValueError, match=why):
            parse_perturbation(bad)
    with pytest.raises(ValueError, match="twice"):
        InvarianceOptions(perturbations=("gain=6dB", "gain=+6dB"))


def test_perturbations_do_what_they_say(rng):
    sr = 16000
    x = (0.3 * np.sin(2 * np.pi * 200 * np.arange(sr) / sr)).astype(np.float32)
    y, clipped = apply(parse_perturbation("gain=-6dB"), x, sr, 320, 0, "u")
    assert np.allclose(y, x * 10 ** (-6 / 20), atol=1e-7) and clipped == 0
    _, clipped = apply(parse_perturbation("gain=+12dB"), x, sr, 320, 0, "u")
    assert clipped > 0.3  # peaks of 1.2 are clipped to 1 and counted
    noisy, _ = apply(parse_perturbation("noise-white=10dB"), x, sr, 320, 0, "u")
    assert 10 * math.log10(rms(x) ** 2 / rms(noisy - x) ** 2) == pytest.approx(10, abs=1e-6)
    again, _ = apply(parse_perturbation("noise-white=10dB"), x, sr, 320, 0, "u")
    other, _ = apply(parse_perturbation("noise-white=10dB"), x, sr, 320, 0, "v")
    assert np.array_equal(noisy, again) and not np.array_equal(noisy, other)  # seeded per utterance
    babble, _ = apply(parse_perturbation("noise-babble=0dB"), x, sr, 320, 0, "u",
                      lambda: [rng.standard_normal(3000).astype(np.float32)])
    assert rms(babble - x) == pytest.approx(rms(x), rel=1e-2)  # a few peaks clip
    shifted, _ = apply(parse_perturbation("shift=0.5hop"), x, sr, 8, 0, "u")  # 4 samples
    assert np.allclose(shifted[4:], x[:-4], atol=1e-5) and np.allclose(shifted[:4], 0, atol=1e-5)
    half = fractional_delay(fractional_delay(x, 0.5), 0.5)  # two half-sample delays = one sample
    assert np.allclose(half[200:-200], x[199:-201], atol=1e-3)
    fast, _ = apply(parse_perturbation("speed=1.25x"), x, sr, 320, 0, "u")
    assert len(fast) == pytest.approx(len(x) / 1.25, abs=2)
    high, _ = apply(parse_perturbation("pitch=+12st"), x, sr, 320, 0, "u")
    spectrum = np.abs(np.fft.rfft(high[2000:-2000]))
    assert len(high) == len(x) and abs(np.argmax(spectrum) / len(high[2000:-2000]) * sr - 400) < 10
    wet, _ = apply(parse_perturbation("reverb=0.3s"), x, sr, 320, 0, "u")
    assert len(wet) == len(x) and rms(wet) == pytest.approx(rms(x), rel=1e-4)
    rir = room_impulse_response(0.3, sr, 1)
    assert rir[0] == 1 and np.sum(rir[1:] ** 2) == pytest.approx(1.0)
    late = np.sum(rir[int(0.2 * sr):] ** 2) / np.sum(rir[1:] ** 2)
    assert 1e-5 < late < 3e-4  # energy 60 dB down at RT60, so 40 dB down at 2/3 of it


def _context(tokenizer, tmp_path, limit=2) -> RunContext:
    data = open_dataset("sample").subset(limit)
    return RunContext(tokenizer=tokenizer, dataset=data, utterances=list(data.utterances),
                      cache=Cache(tmp_path / "cache"), device="cpu", batch_size=4, workers=0,
                      progress=lambda it, **_: it, log=quiet)


def _records(task, ctx) -> list[dict]:
    task.prepare(ctx)
    return [o for o in task.run(ctx) if not isinstance(o, Artefact)]


def test_gain_invariant_tokens_give_ued_zero_and_random_tokens_near_one(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("toy_tokens", PLUGINS / "toy_tokens.py")
    toy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(toy)
    opts = InvarianceOptions(perturbations=("reencode", "gain=-6dB", "gain=+6dB", "noise-white=0dB",
                                            "noise-babble=0dB"), babble_talkers=2)
    sign = toy.SignBits(toy.NoOptions())
    ctx = _context(sign, tmp_path, limit=6)  # spk01-001..004, spk02-001, spk02-002
    ctx.utterances = ctx.utterances[:2]
    recs = {(r["utterance_id"], r["param"]): r for r in _records(Invariance(opts), ctx)}
    assert len(recs) == 2 * 5 * 3  # utterances x perturbations x (cb0, cb1, frames)
    for (_, param), r in recs.items():
        if param.startswith(("gain", "reencode")):
            assert r["metrics"] == {"ued": 0.0, "ued_dedup": 0.0, "code_change_rate": 0.0}, param
        else:  # 0 dB noise flips many frame signs
            assert r["metrics"]["ued"] > 0.05, param
    talkers = recs[("spk01-001", "noise-babble=0dB/cb0")]["extra"]["babble_talkers"]
    assert talkers == recs[("spk01-001", "noise-babble=0dB/frames")]["extra"]["babble_talkers"]
    assert sorted(talkers) == ["spk02-001", "spk02-002"]  # other speakers only
    some = recs[("spk01-001", "gain=+6dB/frames")]
    assert some["extra"]["clipped_fraction"] > 0  # the sample set peaks at -1 dBFS
    assert some["extra"]["length"] == some["extra"]["perturbed_length"] > 100

    rand = toy.RandomTokens(toy.NoOptions())
    opts = InvarianceOptions(perturbations=("reencode", "speed=1.1x"))
    recs = _records(Invariance(opts), _context(rand, tmp_path / "r"))
    assert {r["param"] for r in recs} == {"reencode/cb0", "speed=1.1x/cb0"}
    assert all(0.9 < r["metrics"]["ued"] <= 1.0 for r in recs)
    assert all("code_change_rate" not in r["metrics"] for r in recs if "speed" in r["param"])


@pytest.mark.slow
def test_mulaw_end_to_end_resumes_and_reports(tmp_path, monkeypatch):
    opts = {"perturbations": "reencode,gain=-6dB,noise-white=20dB,shift=0.5hop"}
    res = run("mulaw", "invariance", "sample", limit=2, out=tmp_path, overrides=opts, log=quiet)
    assert res.status == "complete"
    lines = [json.loads(x) for x in (res.path / "utterances.rank0.jsonl").read_text().splitlines()]
    recs = {(r["utterance_id"], r["param"]): r for r in lines}
    assert len(recs) == len(lines) == 2 * 4
    assert all(r["metrics"]["ued"] == 0 for (_, p), r in recs.items() if p == "reencode/cb0")
    # mu-law is not gain invariant: most samples change code at -6 dB
    assert all(r["metrics"]["code_change_rate"] > 0.5 for (_, p), r in recs.items()
               if p == "gain=-6dB/cb0")
    # 16 kHz mu-law: the hop is one sample, so half a hop is a fractional (interpolated) delay
    described = json.loads((res.path / "perturbations.json").read_text())
    assert described["hop_samples"] == 1 and described["perturbations"]["shift=0.5hop"][
        "delay_samples"] == 0.5
    # a second run resumes: nothing is encoded or written again
    from tokbench.adapters.pcm import MuLawTokenizer

    monkeypatch.setattr(MuLawTokenizer, "encode", lambda *a, **k: (_ for _ in ()).throw(
        AssertionError("nothing should be encoded again")))
    again = run("mulaw", "invariance", "sample", limit=2, out=tmp_path, overrides=opts, log=quiet)
    assert again.path == res.path
    assert len((res.path / "utterances.rank0.jsonl").read_text().splitlines()) == len(lines)
    monkeypatch.undo()
    # more perturbations extend the same run: only the new ones are computed
    more = {"perturbations": opts["perturbations"] + ",speed=1.1x"}
    extended = run("mulaw", "invariance", "sample", limit=2, out=tmp_path, overrides=more, log=quiet)
    assert extended.path == res.path
    lines = [json.loads(x) for x in (res.path / "utterances.rank0.jsonl").read_text().splitlines()]
    assert len(lines) == 2 * 5 and sum(r["param"] == "speed=1.1x/cb0" for r in lines) == 2

    import tokbench
    from tokbench.report import report_tables, write_charts
    from tokbench.tasks.invariance.report import (
        parse_param,
        perturbation_tables,
        write_invariance_report,
    )

    assert parse_param("noise-white=10dB/cb0") == ("noise-white", 10.0, "dB", "cb0")
    assert parse_param("gain=-6dB/frames").level == -6 and parse_param("reencode/cb2").level is None
    assert parse_param(3) is None and parse_param("3/cb0") is None
    df = tokbench.load_results(tmp_path)
    tables = perturbation_tables(df)
    assert list(tables) == ["reencode", "gain", "noise-white", "shift", "speed"]
    assert tables["gain"]["level"].tolist() == ["-6dB"] and "(2/2)" in tables["gain"]["ued"][0]
    written = write_invariance_report(df, tmp_path / "report")
    assert {p.name for p in written} >= {"invariance_ued.png", "invariance_gain.md"}
    # the generic by-param table gets the UED chart (keyed by the metric, not the task)
    outcomes = write_charts(report_tables(tmp_path, task="invariance"), tmp_path / "charts")
    assert [o.chart for o in outcomes if o.ok] == ["ued_strength"]


def test_a_registered_plugin_tokenizer_runs_through_its_own_encode(tmp_path):
    res = run("", "invariance", "sample", limit=2, out=tmp_path, adapter=SIGN_BITS, log=quiet,
              overrides={"perturbations": "gain=+6dB,speed=0.9x"})
    lines = [json.loads(x) for x in (res.path / "utterances.rank0.jsonl").read_text().splitlines()]
    params = {r["param"] for r in lines}
    assert params == {f"{p}/{s}" for p in ("gain=+6dB", "speed=0.9x") for s in ("cb0", "cb1", "frames")}
    assert all(r["metrics"]["ued"] == 0 for r in lines if r["param"].startswith("gain"))
