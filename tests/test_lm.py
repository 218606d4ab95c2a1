"""Task lm: known answers of the token LM, the speaker split, and the runner on the sample set."""

import json
import math

import pytest
import torch

from tokbench.data.splits import SplitError, split_groups
from tokbench.run.runner import run
from tokbench.tasks.lm.model import CausalLM, LMConfig, TrainConfig, evaluate, train_lm

TINY = LMConfig(layers=1, width=32, heads=2, context=64, dropout=0.0)
FAST = TrainConfig(epochs=4, steps_per_epoch=30, patience=2, lr=1e-2, batch=8)
TINY_OPTIONS = {"layers": "1", "width": "32", "heads": "2", "context": "64", "epochs": "1",
                "steps_per_epoch": "3", "max_eval_windows": "8", "train_batch": "4"}


def quiet(_: str) -> None:
    pass


def fit(sizes, items, config=TINY, tc=FAST):
    ids = sorted(items)
    result = train_lm(sizes, {i: items[i] for i in ids[:-2]}, {ids[-2]: items[ids[-2]]}, config, tc,
                      seed=0)
    return result, evaluate(result.model, {ids[-1]: items[ids[-1]]}, 32, "cpu")


def test_a_deterministic_sequence_costs_about_zero_bits(one_torch_thread):
    items = {f"u{i}": torch.arange(256 + 16 * i)[None] % 8 for i in range(6)}  # 0 1 ... 7 0 1 ...
    result, ev = fit([8], items)
    assert ev.bits_per_token() < 0.05
    assert result.info["best_epoch"] >= 1 and result.info["n_params"] > 0


def test_uniform_random_tokens_cost_about_log2_of_the_codebook(one_torch_thread):
    g = torch.Generator().manual_seed(0)
    items = {f"u{i}": torch.randint(0, 16, (1, 400), generator=g) for i in range(6)}
    _, ev = fit([16], items)
    assert ev.bits_per_token() == pytest.approx(math.log2(16), abs=0.25)


def test_flattened_factorisation_sees_the_lower_codebooks_of_the_frame(one_torch_thread):
    # Codebook 1 is a function of codebook 0 of the same frame; codebook 0 is uniform random.
    g = torch.Generator().manual_seed(1)
    c0 = torch.randint(0, 16, (6, 2000), generator=g)  # enough not to memorise codebook 0
    items = {f"u{i}": torch.stack([c0[i], (c0[i] + 3) % 16]) for i in range(6)}
    _, ev = fit([16, 16], items)
    (uid,) = ev.bits
    per_codebook = [b / n for b, n in zip(ev.bits[uid], ev.tokens[uid], strict=True)]
    assert per_codebook[0] == pytest.approx(4.0, abs=0.3) and per_codebook[1] < 0.3


def test_windows_are_whole_frames_and_sampling_is_seeded():
    model = CausalLM([4, 4, 4], LMConfig(layers=1, width=8, heads=2, context=10))
    codes = torch.arange(3 * 7).reshape(3, 7) % 4
    windows = model.windows(codes)
    assert model.window == 9 and [len(w) for w in windows] == [9, 9, 3]
    assert windows[0][:3].tolist() == [0, 3 + 4, 2 + 8]  # frame 0: codes offset per codebook
    items = {f"u{i}": torch.randint(0, 4, (3, 30)) for i in range(5)}
    a = evaluate(model, items, 8, "cpu", max_windows=6, seed=3)
    b = evaluate(model, items, 8, "cpu", max_windows=6, seed=3)
    assert sum(w[0] for w in a.windows.values()) == 6 and a.bits == b.bits
    assert a.total_tokens() == 6 * 9
    full = evaluate(model, items, 8, "cpu")
    assert full.total_tokens() == 5 * 90 and all(full.scored_fraction(u) == 1 for u in items)
    # Mimi-32's 32 x 2048 codes: one small head per codebook, not 65,536 logits per position
    big = CausalLM([2048] * 32, LMConfig(layers=1, width=8, heads=2, context=64))
    (window,) = big.windows(torch.randint(0, 2048, (32, 2)))
    bits = big.nll_bits(window[None])
    assert bits.shape == (1, 64) and bool((bits > 0).all())
    assert sum(p.numel() for p in big.heads.parameters()) == 32 * (8 * 2048 + 2048)


def test_split_groups_keeps_speakers_whole_and_ignores_order():
    groups = {f"s{s}-{k}": f"s{s}" for s in range(10) for k in range(3)}
    split = split_groups(groups, dev_fraction=0.1, test_fraction=0.2, seed=0)
    speakers = [{groups[i] for i in part} for part in (split.train, split.dev, split.test)]
    assert [len(s) for s in speakers] == [7, 1, 2]
    assert not (speakers[0] & speakers[2]) and not (speakers[0] & speakers[1])
    shuffled = dict(reversed(list(groups.items())))
    assert split_groups(shuffled, dev_fraction=0.1, test_fraction=0.2, seed=0) == split
    assert split_groups(groups, dev_fraction=0.1, test_fraction=0.2, seed=1) != split
    with pytest.raises(SplitError, match="groups"):
        split_groups({"a": "s1", "b": "s1"}, dev_fraction=0.1, test_fraction=0.1, seed=0)


def test_mulaw_on_the_sample_set_says_the_numbers_mean_nothing(tmp_path, one_torch_thread):
    logged: list[str] = []
    res = run("mulaw", "lm", "sample", out=tmp_path, overrides=TINY_OPTIONS, log=logged.append)
    assert res.status == "complete"
    assert any("far too little" in m for m in logged)
    lines = [json.loads(x) for x in (res.path / "utterances.rank0.jsonl").read_text().splitlines()]
    per_utt = [r for r in lines if r["utterance_id"] is not None]
    (seed_rec,) = [r for r in lines if r["utterance_id"] is None]
    splits = json.loads((res.path / "splits.json").read_text())["split"]
    test_speakers = {u.split("-")[0] for u in splits["test"]}
    assert not test_speakers & {u.split("-")[0] for u in splits["train"]}
    assert {r["utterance_id"] for r in per_utt} <= set(splits["test"])
    assert all(r["param"] == 0 for r in lines)
    info = seed_rec["extra"]
    assert "far too little" in info["warning"] and info["model"]["layers"] == 1
    bpt = info["test_bits"] / info["test_tokens"]
    assert info["test_windows"][0] == 8 and info["test_tokens"] <= 8 * 64  # a sample of windows
    assert seed_rec["metrics"]["lm_perplexity"] == pytest.approx(2**bpt, rel=1e-6)
    assert seed_rec["metrics"]["lm_unigram_gap"] == pytest.approx(
        sum(info["unigram_entropy"]) - bpt, rel=1e-6)
    assert 0 < bpt < 12  # one training step cannot be better than chance by much, nor absurd
    scored = [r for r in per_utt if r["metrics"]["lm_bits_per_token"] is not None]
    for r in scored:  # bits per second of the audio the scored windows cover
        bits, tokens = r["extra"]["ratio"]["lm_bits_per_token"]
        assert r["metrics"]["lm_bits_per_second"] == pytest.approx(
            bits / (tokens / 16000), rel=1e-6)
    # the same run again is answered from its folder; resumed (--rerun-failed goes the usual
    # way, with nothing failed to forget) it trains nothing again
    again = run("mulaw", "lm", "sample", out=tmp_path, overrides=TINY_OPTIONS, log=logged.append)
    assert again.path == res.path and any(m.startswith("already complete") for m in logged)
    again = run("mulaw", "lm", "sample", out=tmp_path, overrides=TINY_OPTIONS, log=logged.append,
                rerun_failed=True)
    assert again.path == res.path and any("already recorded" in m for m in logged)


def test_a_multi_codebook_plugin_gets_per_codebook_records(tmp_path, one_torch_thread):
    from pathlib import Path

    plugin = str(Path(__file__).parent / "plugins" / "random_semantic.py") + ":RandomSemantic"
    res = run("", "lm", "sample", out=tmp_path, adapter=plugin, log=quiet,
              overrides={**TINY_OPTIONS, "n_codebooks": "2", "max_eval_windows": "0"})
    lines = [json.loads(x) for x in (res.path / "utterances.rank0.jsonl").read_text().splitlines()]
    params = {r["param"] for r in lines}
    assert params == {0, "0/cb0", "0/cb1"}
    total = {r["utterance_id"]: r for r in lines if r["param"] == 0 and r["utterance_id"]}
    for r in lines:
        if r["param"] == "0/cb0" and r["utterance_id"]:
            cb1 = next(x for x in lines if x["param"] == "0/cb1"
                       and x["utterance_id"] == r["utterance_id"])
            whole = total[r["utterance_id"]]["metrics"]["lm_bits_per_second"]
            assert r["metrics"]["lm_bits_per_second"] + cb1["metrics"]["lm_bits_per_second"] == \
                pytest.approx(whole, rel=1e-6)  # per-codebook bits add up to the whole
