"""The probe task: splits, frame-rate plans, frontends, known-answer heads, end to end.

Known-answer tests train on synthetic token tensors (no audio): speaker-dependent tokens must
give a speaker accuracy far above chance, random tokens chance level (binomial tolerance), and
tokens that spell the characters a low CER.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tokbench.data import SAMPLE_DIR
from tokbench.data.splits import (
    SplitError,
    cap_per_group,
    split_items,
    split_sizes,
    split_within_groups,
    stable_order,
)
from tokbench.options import OptionError, build_options
from tokbench.results import load_results, summarize
from tokbench.results.store import iter_records
from tokbench.run.runner import run
from tokbench.tasks.probe.frames import AdapterEmbedding, LearnedEmbedding, collate, plan_frame_rate
from tokbench.tasks.probe.heads import (
    HEADS,
    BiLSTM,
    ContentHead,
    HeadConfig,
    ProbeItem,
    Scored,
    SpeakerHead,
    register_head,
    reverse_valid,
)
from tokbench.tasks.probe.task import ProbeOptions
from tokbench.tasks.probe.training import TrainConfig, train_head
from tokbench.types import Tokens

# ----------------------------------------------------------------------------------- splits


def test_split_sizes_keep_train_and_test_non_empty():
    assert split_sizes(4, 0.1, 0.1) == (2, 1, 1)  # a sample-set speaker
    assert split_sizes(2, 0.1, 0.1) == (1, 0, 1)
    assert split_sizes(3, 0.0, 0.1) == (2, 0, 1)
    assert split_sizes(32, 0.1, 0.1) == (26, 3, 3)
    assert split_sizes(25, 0.1, 0.1) == (19, 3, 3)  # half rounds up, not to even
    with pytest.raises(SplitError):
        split_sizes(1, 0.1, 0.1)


def test_split_within_groups_is_deterministic_and_covers_every_speaker():
    groups = {f"s{s}-{k}": f"s{s}" for s in range(8) for k in range(4)}
    groups["lonely-1"] = "lonely"
    a = split_within_groups(groups, dev_fraction=0.1, test_fraction=0.1, seed=0)
    reordered = dict(reversed(list(groups.items())))
    assert a == split_within_groups(reordered, dev_fraction=0.1, test_fraction=0.1, seed=0)
    assert a != split_within_groups(groups, dev_fraction=0.1, test_fraction=0.1, seed=1)
    parts = [set(a.train), set(a.dev), set(a.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert parts[0] | parts[1] | parts[2] | set(a.excluded) == set(groups)
    assert {groups[i] for i in a.train} == {groups[i] for i in a.test} == {f"s{s}" for s in range(8)}
    assert len(a.test) == len(a.dev) == 8 and len(a.train) == 16
    assert "only 1 item" in a.excluded["lonely-1"]
    d = a.to_dict()
    assert d["n_test"] == 8 and sorted(d["test"]) == sorted(a.test) and len(d["digest"]["train"]) == 12


def test_split_items_and_caps():
    ids = [f"u{k}" for k in range(32)]
    s = split_items(ids, dev_fraction=0.1, test_fraction=0.1, seed=3)
    assert (len(s.train), len(s.dev), len(s.test)) == (26, 3, 3)
    assert list(s.test) == stable_order(ids, 3)[:3]
    groups = {f"{g}-{k}": g for g in "abc" for k in range(10)} | {"x": None}
    kept = cap_per_group(groups, 4, seed=0)
    assert len(kept) == 13 and "x" in kept
    assert all(sum(i.startswith(g) for i in kept) == 4 for g in "abc")
    assert cap_per_group(groups, 0, seed=0) == list(groups)


# ------------------------------------------------------------------------------- frame rate


def test_auto_frame_rate_lands_in_50_to_100_hz():
    cases = {12.5: (50.0, "repeat"), 25.0: (50.0, "repeat"), 40.0: (80.0, "repeat"),
             50.0: (50.0, "keep"), 75.0: (75.0, "keep"), 86.13: (86.13, "keep"),
             100.0: (100.0, "keep"), 150.0: (50.0, "pool"), 16000.0: (50.0, "pool")}
    for native, (target, mode) in cases.items():
        plan = plan_frame_rate(native)
        assert plan.target == pytest.approx(target) and plan.mode == mode, native
    for native in np.linspace(1.0, 2000.0, 777):
        assert 50.0 - 1e-9 <= plan_frame_rate(float(native)).target <= 100.0 + 1e-9
    assert plan_frame_rate(50.0, 75.0).mode == "repeat"
    with pytest.raises(ValueError, match="50, 100"):
        plan_frame_rate(50.0, 30.0)


def test_layout_pools_windows_and_repeats_frames():
    index, starts = plan_frame_rate(16000).layout(1000)  # 320 samples per probe frame
    assert starts.tolist() == [0, 320, 640, 960] and index.tolist() == list(range(1000))
    index, starts = plan_frame_rate(12.5).layout(3)  # each frame four times
    assert index.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2] and starts.tolist() == list(range(12))
    index, _ = plan_frame_rate(50.0, 75.0).layout(4)  # fractional: frame j takes floor(j * 2/3)
    assert index.tolist() == [0, 0, 1, 2, 2, 3]


# -------------------------------------------------------------------------------- frontends


def test_learned_embedding_is_the_weighted_window_mean_and_batching_does_not_leak():
    torch.manual_seed(0)
    plan = plan_frame_rate(200.0)  # pool 4 frames -> 50 Hz
    codes = [torch.stack([torch.randint(0, 10, (n,)), torch.randint(0, 7, (n,))]) for n in (9, 4, 13)]
    fe = LearnedEmbedding([10, 7], 8)
    with torch.no_grad():
        fe.codebook_logits.copy_(torch.tensor([0.3, -0.2]))
        batched = fe(collate(codes, plan))
        single = torch.cat([fe(collate([c], plan)) for c in codes])
        w = torch.softmax(fe.codebook_logits, 0)
        expected = []
        for c in codes:
            for start in range(0, c.shape[1], 4):
                win = c[:, start:start + 4]
                expected.append(sum(w[q] * fe.tables[q].weight[win[q]].mean(0) for q in range(2)))
        expected = fe.proj(torch.stack(expected))
    assert batched.shape == (3 + 1 + 4, 8)
    torch.testing.assert_close(batched, single)
    torch.testing.assert_close(batched, expected)
    # The adapter path, fed the same vectors by a lookup embed(), must give the same frames.
    def embed(tokens: Tokens) -> torch.Tensor:
        return torch.stack([fe.tables[q].weight[tokens.codes[:, q]] for q in range(2)], 1)

    ad = AdapterEmbedding(embed, 2, 8, 8)
    with torch.no_grad():
        ad.codebook_logits.copy_(fe.codebook_logits)
        ad.proj.load_state_dict(fe.proj.state_dict())
        torch.testing.assert_close(ad(collate(codes, plan)), batched)
    repeat = collate(codes, plan_frame_rate(25.0))  # repeat x2
    with torch.no_grad():
        torch.testing.assert_close(ad(repeat), fe(repeat))
    assert repeat.lengths.tolist() == [18, 8, 26]
    # An adapter whose embed() runs in inference mode still lets the weights train.
    def embed_inference(tokens: Tokens) -> torch.Tensor:
        with torch.inference_mode():
            return embed(tokens)

    ad.embed = embed_inference
    ad(repeat).sum().backward()
    assert ad.codebook_logits.grad is not None and ad.codebook_logits.grad.abs().sum() > 0


def test_bilstm_outputs_on_valid_frames_ignore_padding():
    torch.manual_seed(0)
    x = torch.randn(1, 5, 4)
    lengths = torch.tensor([5, 3])
    padded = torch.cat([x, torch.cat([x[:, :3], 100 * torch.randn(1, 2, 4)], 1)])
    assert torch.equal(reverse_valid(padded, lengths)[1, :3], x[0, :3].flip(0))
    lstm = BiLSTM(4, 6, layers=2).eval()
    with torch.no_grad():
        both = lstm(padded, lengths)
        short = lstm(x[:, :3], torch.tensor([3]))
    torch.testing.assert_close(both[1, :3], short[0])
    torch.testing.assert_close(both[0], lstm(x, torch.tensor([5]))[0])


# ---------------------------------------------------------------------- known-answer probes

N_SPEAKERS, PER_SPEAKER = 10, 60  # 600 items; 20% test -> 120 test items
FAST = TrainConfig(epochs=15, patience=4, lr=1e-2, batch=32)


def speaker_items(informative: bool, frames: int = 40) -> dict[str, ProbeItem]:
    """Two 64-code codebooks. Informative: 30% of codebook 0's frames come from six codes of the
    speaker's own; otherwise every code is uniform noise."""
    g = torch.Generator().manual_seed(1 if informative else 2)
    items = {}
    for s in range(N_SPEAKERS):
        for k in range(PER_SPEAKER):
            c0 = torch.randint(0, 64, (frames,), generator=g)
            if informative:
                own = torch.rand(frames, generator=g) < 0.3
                c0[own] = 6 * s + torch.randint(0, 6, (int(own.sum()),), generator=g)
            uid = f"s{s}-{k:03d}"
            items[uid] = ProbeItem(uid, torch.stack([c0, torch.randint(0, 64, (frames,), generator=g)]),
                                   speaker=f"spk{s}")
    return items


def speaker_accuracy(items: dict[str, ProbeItem]) -> tuple[float, int]:
    head = SpeakerHead(HeadConfig(width=32, hidden=32, dropout=0.0))
    split = head.split(list(items.values()), dev_fraction=0.1, test_fraction=0.2, seed=0)
    result = train_head(head, lambda: LearnedEmbedding([64, 64], 32), items, split,
                        plan_frame_rate(50.0), FAST, seed=0)
    accs = [s.metrics["probe_spk_acc"] for s in result.scores.values()]
    assert result.info["curve"] and result.info["train_utt_per_s"] > 0
    return float(np.mean(accs)), len(accs)


def test_speaker_probe_finds_speaker_dependent_tokens():
    acc, n = speaker_accuracy(speaker_items(informative=True))
    assert n == 120
    assert acc >= 0.8  # chance is 0.1; the Bayes accuracy is ~1


def test_speaker_probe_on_random_tokens_is_at_chance():
    acc, n = speaker_accuracy(speaker_items(informative=False))
    chance = 1 / N_SPEAKERS
    # Predictions cannot depend on the label and the test set is balanced, so each item is right
    # with probability 1/10: 4 binomial standard deviations.
    assert acc <= chance + 4 * math.sqrt(chance * (1 - chance) / n)


WORDS = "cat dog sun red fish bird rain sand milk home road king ship blue".split()


def test_content_probe_reads_tokens_that_spell_the_characters():
    rng = np.random.default_rng(0)
    items = {}
    for k in range(500):
        text = " ".join(rng.choice(WORDS, size=int(rng.integers(2, 5))))
        # One code per character (a-z -> 1..26, space -> 27), each followed by a separator 0.
        codes = [x for ch in text for x in ((27 if ch == " " else ord(ch) - 96), 0)]
        items[f"u{k:03d}"] = ProbeItem(f"u{k:03d}", torch.tensor([codes]), text=text.capitalize() + ".")
    head = ContentHead(HeadConfig(width=32, hidden=32, dropout=0.0))
    split = head.split(list(items.values()), dev_fraction=0.1, test_fraction=0.1, seed=0)
    assert len(split.test) == 50
    result = train_head(head, lambda: LearnedEmbedding([28], 32), items, split, plan_frame_rate(50.0),
                        TrainConfig(epochs=6, patience=2, lr=1e-2, batch=16), seed=0)
    edits = sum(s.ratio["probe_cer"][0] for s in result.scores.values())
    chars = sum(s.ratio["probe_cer"][1] for s in result.scores.values())
    assert edits / chars < 0.05
    first = next(iter(result.scores.values()))
    assert first.extra["ref"] == first.extra["ref"].lower() and "." not in first.extra["ref"]


def test_new_heads_plug_in_without_touching_adapters():
    class SpeakerParity(SpeakerHead):  # e.g. an emotion head would look like this
        name = "toy_parity"
        metrics = ("toy_parity_acc",)

        def split(self, items, **kw):
            relabelled = [ProbeItem(i.id, i.codes, f"p{int(i.speaker[3:]) % 2}") for i in items]
            self._labels = {i.id: i.speaker for i in relabelled}
            return super().split(relabelled, **kw)

        def fit_labels(self, train):
            super().fit_labels([ProbeItem(i.id, i.codes, self._labels[i.id]) for i in train])

        def loss(self, outputs, lengths, items):
            return super().loss(outputs, lengths, [ProbeItem(i.id, i.codes, self._labels[i.id]) for i in items])

        def score(self, item, prediction):
            return Scored({"toy_parity_acc": float(prediction == self._labels[item.id])})

    register_head(SpeakerParity)
    try:
        assert build_options(ProbeOptions, {}, {"heads": "speaker,toy_parity"}).heads == ("speaker", "toy_parity")
        items = dict(list(speaker_items(informative=True, frames=8).items())[::10])
        head = SpeakerParity(HeadConfig(width=8, hidden=8))
        split = head.split(list(items.values()), dev_fraction=0.0, test_fraction=0.2, seed=0)
        result = train_head(head, lambda: LearnedEmbedding([64, 64], 8), items, split,
                            plan_frame_rate(50.0), TrainConfig(epochs=1), seed=0)
        assert result.info["n_speakers"] == 2 and len(result.scores) == len(split.test)
        assert all(set(s.metrics) == {"toy_parity_acc"} for s in result.scores.values())
    finally:
        HEADS.pop("toy_parity")


# ---------------------------------------------------------------------------------- options


def test_options_are_checked():
    assert build_options(ProbeOptions, {}, {"heads": "speaker", "seeds": "3"}).seeds == 3
    with pytest.raises(OptionError, match="did you mean 'speaker'"):
        build_options(ProbeOptions, {}, {"heads": "speeker"})
    with pytest.raises(OptionError, match="target_rate"):
        build_options(ProbeOptions, {}, {"target_rate": "30"})
    with pytest.raises(OptionError):
        build_options(ProbeOptions, {}, {"embed": "pretrained"})


# ------------------------------------------------------------------------------ end to end

FAKE_ADAPTER = '''
from dataclasses import dataclass

import torch

from tokbench.types import TokenizerBase, TokenizerMeta, Tokens


@dataclass(frozen=True)
class FakeOptions:
    pass


class FakeEmbed(TokenizerBase):
    """25 Hz, two 16-code codebooks (level, zero crossings), with an embed() table."""

    name = "fake-embed"
    Options = FakeOptions

    @classmethod
    def describe(cls, options):
        return TokenizerMeta(name="fake-embed", family="test", kind="acoustic", sample_rate=16000,
                             frame_rate=25.0, n_codebooks=2, codebook_sizes=(16, 16),
                             capabilities=frozenset({"embed"}))

    def encode(self, wav, lengths):
        self.check_input(wav, lengths)
        hop = 640
        frames = wav[:, : wav.shape[1] // hop * hop].reshape(wav.shape[0], -1, hop)
        level = (frames.abs().mean(-1) * 64).long().clamp(0, 15)
        zc = ((frames[..., 1:] * frames[..., :-1]) < 0).sum(-1).div(8, rounding_mode="floor")
        return Tokens(torch.stack([level, zc.clamp(0, 15)], 1), lengths // hop)

    def embed(self, tokens):
        table = torch.randn(2, 16, 8, generator=torch.Generator().manual_seed(0))
        return torch.stack([table[q][tokens.codes[:, q].cpu()] for q in range(2)], 1)
'''

TEXTS = ["the cat sat on the mat", "a red fish swam home", "the king rode a ship"]


def tone_manifest(root: Path, speakers: bool = True) -> Path:
    """3 'speakers' (tone pitch) x 3 utterances, 16 kHz, with transcripts."""
    rows = []
    for s, freq in enumerate((200.0, 400.0, 700.0)):
        for k, text in enumerate(TEXTS):
            t = np.arange(int(16000 * (0.8 + 0.2 * k))) / 16000
            wav = (0.2 + 0.1 * k) * np.sin(2 * np.pi * freq * t)
            name = f"s{s}-{k}.wav"
            sf.write(root / name, wav.astype(np.float32), 16000)
            rows.append({"id": name[:-4], "path": name, "text": text,
                         **({"speaker": f"s{s}"} if speakers else {})})
    path = root / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


SMALL = {"epochs": 2, "patience": 1, "width": 16, "hidden": 16}


def test_adapter_embeddings_end_to_end_with_repeated_frames(tmp_path):
    (tmp_path / "fake.py").write_text(FAKE_ADAPTER)
    manifest = tone_manifest(tmp_path)
    adapter = f"{tmp_path / 'fake.py'}:FakeEmbed"
    res = run("", "probe", str(manifest), adapter=adapter, out=tmp_path / "r", device="cpu",
              overrides={**SMALL, "embed": "adapter"}, log=lambda _m: None)
    assert res.status == "complete"
    records = list(iter_records(res.path))
    seed = [r for r in records if r["utterance_id"] is None]
    assert len(seed) == 1 and seed[0]["param"] == 0
    info = seed[0]["extra"]
    assert info["frame_plan"]["mode"] == "repeat" and info["frame_plan"]["probe_rate"] == 50.0
    assert info["embed"] == "adapter" and len(info["heads"]["speaker"]["codebook_weights"]) == 2
    assert info["heads"]["speaker"]["codebook_weights"] != [0.5, 0.5]  # trained: gradients flow
    assert info["heads"]["speaker"]["split"]["n_test"] == 3  # one per speaker
    assert info["heads"]["content"]["split"]["n_test"] == 1
    spk = [r for r in records if "probe_spk_acc" in r["metrics"] and r["utterance_id"]]
    assert sorted(r["utterance_id"][:2] for r in spk) == ["s0", "s1", "s2"]
    assert all(r["metrics"]["probe_spk_acc"] in (0.0, 1.0) for r in spk)
    # A tokenizer without embed() cannot run the adapter-embedding probe.
    res = run("mulaw", "probe", str(manifest), out=tmp_path / "r", device="cpu",
              overrides={"embed": "adapter"}, log=lambda _m: None)
    assert res.status == "unsupported" and "embed" in res.reason


def test_head_without_labels_is_recorded_as_missing(tmp_path):
    manifest = tone_manifest(tmp_path, speakers=False)
    res = run("mulaw", "probe", str(manifest), out=tmp_path / "r", device="cpu",
              overrides={**SMALL, "heads": "speaker"}, log=lambda _m: None)
    records = list(iter_records(res.path))
    assert len(records) == 1 and records[0]["utterance_id"] is None
    assert records[0]["metrics"] == {"probe_spk_acc": None}
    assert "at least 2 speakers" in records[0]["reasons"]["probe_spk_acc"]


@pytest.mark.skipif(not (SAMPLE_DIR / "manifest.jsonl").is_file(),
                    reason="the bundled sample set is not built (python scripts/make_sample_set.py)")
@pytest.mark.slow
def test_sample_set_with_mulaw_end_to_end_resumes_without_duplicates(tmp_path):
    over = {**SMALL, "seeds": 2}
    res = run("mulaw", "probe", "sample", out=tmp_path, device="cpu", overrides=over,
              log=lambda _m: None)
    assert res.status == "complete"
    lines = sum(1 for p in res.path.glob("utterances.rank*.jsonl") for _ in p.open())
    records = list(iter_records(res.path))
    for seed in (0, 1):
        mine = [r for r in records if r["param"] == seed]
        spk = [r for r in mine if "probe_spk_acc" in r["metrics"]]
        cer = [r for r in mine if "probe_cer" in r["metrics"]]
        assert len(spk) == 8 and len({r["utterance_id"][:5] for r in spk}) == 8  # 1 per speaker
        assert len(cer) == 3 and all(r["extra"]["ratio"]["probe_cer"][1] > 0 for r in cer)
        curve = [r for r in mine if r["utterance_id"] is None][0]["extra"]["heads"]["content"]["curve"]
        assert 1 <= len(curve) <= 2 and {"train_loss", "dev_error"} <= set(curve[0])
    splits = json.loads((res.path / "splits.json").read_text())
    sp = splits["heads"]["speaker"]
    assert not set(sp["train"]) & set(sp["test"]) and len(sp["test"]) == 8
    # Corpus CER = total edits / total characters, per seed and for the seed average.
    summary = summarize(load_results(res.path))
    for param in (0, 1):
        cer = [r for r in records if r["param"] == param and "probe_cer" in r["metrics"]]
        want = 100 * sum(r["extra"]["ratio"]["probe_cer"][0] for r in cer) / sum(
            r["extra"]["ratio"]["probe_cer"][1] for r in cer)
        row = summary[(summary.metric == "probe_cer") & (summary.param == param)]
        assert row["mean"].item() == pytest.approx(want)
    mean_rows = summary[summary.param == "mean"]
    assert set(mean_rows.metric) == {"probe_spk_acc", "probe_cer", "probe_wer"}
    acc = summary[summary.metric == "probe_spk_acc"].set_index("param")["mean"]
    assert acc["mean"] == pytest.approx((acc[0] + acc[1]) / 2)
    # The same configuration again: nothing is retrained or duplicated.
    logs: list[str] = []
    again = run("mulaw", "probe", "sample", out=tmp_path, device="cpu", overrides=over, log=logs.append)
    assert again.path == res.path and sum(m.startswith("already complete") for m in logs) == 1
    # resumed the usual way (--rerun-failed, nothing failed to forget): nothing retrained
    logs.clear()
    again = run("mulaw", "probe", "sample", out=tmp_path, device="cpu", overrides=over,
                log=logs.append, rerun_failed=True)
    assert again.path == res.path
    assert sum(1 for p in res.path.glob("utterances.rank*.jsonl") for _ in p.open()) == lines
    assert sum("already recorded" in m for m in logs) == 2
