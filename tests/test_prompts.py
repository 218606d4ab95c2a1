"""Speaker prompts and voice-conversion pairs (tokbench.data.prompts): properties over many seeds."""

from __future__ import annotations

import random
import zlib

import numpy as np
import pytest
import torch

from tokbench.data import Dataset, Utterance, open_dataset
from tokbench.data.prompts import (
    PromptAudio,
    PromptError,
    PromptLoader,
    candidate_speakers,
    conversion_prompt,
    same_speaker_prompt,
    select_prompt,
    self_prompt,
    target_speaker,
)

# 7 speakers with 1 to 9 utterances of 1.5 to 9.5 s (durations known without files)
SPEAKERS = {f"s{i}": 1 + (i * 4) % 9 for i in range(7)}
UTTS = [Utterance(f"s{i}-{j:02d}", f"/nowhere/s{i}-{j:02d}.flac", "text", f"s{i}")
        for i, n in enumerate(SPEAKERS.values()) for j in range(n)]
SECONDS = {u.id: 1.5 + zlib.crc32(u.id.encode()) % 9 for u in UTTS}


def duration(u: Utterance) -> float:
    return SECONDS[u.id]


def test_pairs_never_keep_the_speaker_and_are_stable():
    speakers = candidate_speakers(UTTS)
    for seed in range(20):
        pairs = {u.id: target_speaker(u, speakers, seed) for u in UTTS}
        assert all(pairs[u.id] != u.speaker and pairs[u.id] in speakers for u in UTTS)
        # the same seed gives the same pairs, whatever the order of utterances or speakers
        shuffled = UTTS[:]
        random.Random(seed).shuffle(shuffled)
        assert {u.id: target_speaker(u, speakers[::-1], seed) for u in shuffled} == pairs
    by_seed = [tuple(target_speaker(u, speakers, s) for u in UTTS) for s in range(5)]
    assert len(set(by_seed)) == 5  # the seed matters
    targets = [target_speaker(u, speakers, s) for s in range(20) for u in UTTS]
    assert set(targets) == set(speakers)  # every speaker serves as a target
    with pytest.raises(PromptError, match="no speaker label"):
        target_speaker(Utterance("x", "/x.wav"), speakers)
    with pytest.raises(PromptError, match="no speaker other than s0"):
        target_speaker(UTTS[0], ["s0"])


def test_prompts_exclude_the_source_and_respect_the_cap():
    for seed in range(10):
        for cap in (0.5, 4.0, 12.0, 60.0):
            for u in UTTS:
                try:
                    p = select_prompt(UTTS, u.speaker, exclude={u.id}, max_seconds=cap, seed=seed,
                                      duration=duration)
                except PromptError:
                    assert SPEAKERS[u.speaker] == 1  # only when the speaker has nothing else
                    continue
                assert u.id not in p.utterance_ids and not p.leak
                assert all(i.startswith(u.speaker + "-") for i in p.utterance_ids)
                assert p.total_seconds <= cap + 1e-9
                # whole utterances, only the last one cut; and cut only to reach the cap
                assert all(s == SECONDS[i] for i, s in zip(p.utterance_ids[:-1], p.seconds, strict=False))
                assert 0 < p.seconds[-1] <= SECONDS[p.utterance_ids[-1]]
                others = sum(SECONDS[x.id] for x in UTTS if x.speaker == u.speaker and x.id != u.id)
                assert p.total_seconds == pytest.approx(min(cap, others))
                again = select_prompt(UTTS, u.speaker, exclude={u.id}, max_seconds=cap,
                                      seed=seed, duration=duration)
                assert again == p


def test_excluding_one_utterance_does_not_reshuffle_the_others():
    speaker = max(SPEAKERS, key=SPEAKERS.get)
    full = select_prompt(UTTS, speaker, max_seconds=1e9, duration=duration).utterance_ids
    for drop in full:
        rest = select_prompt(UTTS, speaker, exclude={drop}, max_seconds=1e9,
                             duration=duration).utterance_ids
        assert rest == tuple(i for i in full if i != drop)


def test_self_prompt_is_the_utterance_and_marked_leak():
    p = self_prompt(UTTS[3], max_seconds=2.0, duration=duration)
    assert p.utterance_ids == (UTTS[3].id,) and p.leak and p.seconds == (min(2.0, SECONDS[UTTS[3].id]),)
    assert p.describe()["prompt_leak"] is True


def test_sample_set_prompts_and_conversion_targets():
    ds = open_dataset("sample")
    for u in ds.utterances:
        p = same_speaker_prompt(u, ds, "other", max_seconds=6.0)
        assert u.id not in p.utterance_ids and p.speaker == u.speaker
        assert 0 < p.total_seconds <= 6.0
        c = conversion_prompt(u, ds, max_seconds=6.0, seed=3)
        assert c.speaker != u.speaker and u.id not in c.utterance_ids
        assert same_speaker_prompt(u, ds, "self").utterance_ids == (u.id,)
    # --limit keeps the full dataset's prompt candidates (targets and prompts do not shrink)
    small = ds.subset(4)
    assert {u.speaker for u in small.utterances} == {"spk01"}
    assert small.prompt_candidates() == ds.utterances
    assert conversion_prompt(small.utterances[0], small, seed=3) == conversion_prompt(ds.utterances[0], ds, seed=3)
    assert small.describe()["n_prompt_candidates"] == 32


def test_prompt_audio_keeps_its_utterances_apart():
    segs = [[torch.ones(5), torch.zeros(3)], [torch.full((4,), 2.0)]]
    pa = PromptAudio.from_segments(segs, 16000)
    assert pa.lengths.tolist() == [8, 4] and pa.segments == [(5, 3), (4,)]
    assert [s.tolist() for s in pa.item_segments(0)] == [[1.0] * 5, [0.0] * 3]
    assert pa.to("cpu").segments == pa.segments and isinstance(pa.to("cpu"), PromptAudio)
    with pytest.raises(ValueError, match="do not add up"):
        PromptAudio(pa.wav, pa.lengths, 16000, [(5, 2), (4,)])


def test_loader_cuts_the_last_utterance_to_the_cap():
    ds = open_dataset("sample")
    u = ds.utterances[0]
    p = same_speaker_prompt(u, ds, max_seconds=4.0)
    loader = PromptLoader(ds, 16000)
    segs = loader.segments(p)
    assert [len(s) for s in segs] == [round(s * 16000) for s in p.seconds]
    assert sum(map(len, segs)) == pytest.approx(4.0 * 16000, abs=len(segs))
    batch = loader.batch([p, p])
    assert batch.segments[0] == tuple(map(len, segs))
    assert np.array_equal(loader.waveform(p, 16000), np.concatenate(segs))
    assert len(loader.waveform(p, 8000)) == pytest.approx(4.0 * 8000, abs=len(segs))


def test_a_dataset_without_other_utterances_of_the_speaker_has_no_prompt():
    lone = Dataset("lone", "r", [Utterance("a", "/a.wav", "t", "x"), Utterance("b", "/b.wav", "t", "y")])
    with pytest.raises(PromptError, match="speaker x has no other utterance"):
        same_speaker_prompt(lone.utterances[0], lone)
