"""WER/CER with Whisper: normalisation, edit counts, corpus ratio, batched decoding on tiny random
Whisper models (80 and 128 mel bins), checkpoint loading, and the offline failure mode.

The tiny models check plumbing and invariants (one text per utterance, batched == unbatched,
input order kept); their transcripts are noise, never benchmark numbers.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
import whisper

from tokbench.io.cache import Cache
from tokbench.metrics import asr
from tokbench.metrics.asr import AsrScorer, AsrUnavailable, normalize, transcribe, wer_cer
from tokbench.metrics.whisper_model import load_asr_model, model_id
from tokbench.records import make_record
from tokbench.results import load_results, summarize
from tokbench.results.store import RunSpec, RunStore
from tokbench.testing import save_whisper_checkpoint, tiny_random_whisper

SR = 16_000
SAMPLE_LEN = 5  # tokens per window: random weights never stop by themselves


# --------------------------------------------------------------------------- text and scores

@pytest.mark.parametrize("text, expected", [
    ("twenty five", "25"),
    ("Twenty-five", "25"),
    ("I have twenty five apples.", "i have 25 apples"),
    ("one hundred and one", "101"),
    ("one two three four", "1234"),  # consecutive number words merge into ONE token
    ("The colour of honour", "the color of honor"),
    ("Hello, World!", "hello world"),
    ("Mr. Smith isn't here", "mister smith is not here"),
    ("[noise] hello (laughs)", "hello"),
    ("uh, um, hmm.", ""),
    ("Hello...", "hello ."),  # a quirk: an ellipsis leaves a "." token behind
])
def test_english_text_normalizer_behaviour(text, expected):
    assert normalize(text) == expected


def _levenshtein(a, b) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def test_wer_cer_known_values_after_normalisation():
    s = wer_cer("The colour is red, twenty five times!", "the color is rod 25 times")
    # "the color is red 25 times": one word substituted of 6, one character of 25 (spaces count)
    assert s.values == pytest.approx({"wer": 100 / 6, "cer": 100 / 25})
    assert s.extra["ratio"] == {"wer": [1, 6], "cer": [1, 25]}
    assert s.extra["ref_norm"] == "the color is red 25 times"
    assert s.extra["asr_text"] == "the color is rod 25 times"
    assert s.reasons == {}

    ref, hyp = "Mr. Smith isn't here.", "mister smith is here today"
    s = wer_cer(ref, hyp)  # one deletion ("not") and one insertion ("today") of 5 words
    assert s.extra["ratio"]["wer"] == [2, 5] and s.values["wer"] == pytest.approx(40.0)
    r, h = normalize(ref), normalize(hyp)
    assert s.extra["ratio"]["cer"] == [_levenshtein(r, h), len(r)]
    assert s.values["cer"] == pytest.approx(100 * _levenshtein(r, h) / len(r))


def test_case_punctuation_spelling_and_spelled_numbers_are_not_errors():
    s = wer_cer("Hello, World! The COLOUR was twenty-five.", "hello world the color was 25")
    assert s.values == {"wer": 0.0, "cer": 0.0}


def test_empty_hypothesis_is_all_deletions():
    s = wer_cer("a cat sat", "")
    assert s.values == {"wer": 100.0, "cer": 100.0}
    assert s.extra["ratio"] == {"wer": [3, 3], "cer": [9, 9]}


@pytest.mark.parametrize("ref, why", [(None, "no reference"), ("", "empty after"),
                                      ("Uh, um, hmm.", "empty after")])
def test_missing_or_empty_reference_is_null_with_reason(ref, why):
    s = wer_cer(ref, "some words")
    assert s.values == {"wer": None, "cer": None}
    assert why in s.reasons["wer"] and why in s.reasons["cer"]
    assert "ratio" not in s.extra and s.extra["asr_text"] == "some words"


def test_corpus_wer_is_total_edits_over_total_words(tmp_path):
    pairs = [("a b c d e f g h i j", "a b c d e f g h i x"),  # 1/10
             ("one cat", "dog"),                              # 2/2 -> per-utterance 100%
             ("red green blue", "red green blue")]            # 0/3
    spec = RunSpec(dataset="sample", dataset_revision="r1", task="recon", task_version="1",
                   task_options={}, tokenizer="t", variant="t", tokenizer_options={},
                   tokenizer_revision=None, protocol={"version": "1"})
    store = RunStore(tmp_path, spec).open({})
    for k, (ref, hyp) in enumerate(pairs):
        s = wer_cer(ref, hyp)
        store.append(make_record(f"u{k}", s.values, s.reasons, s.extra))
    s = wer_cer(None, "x")
    store.append(make_record("nulled", s.values, s.reasons, s.extra))
    table = summarize(load_results(tmp_path)).set_index("metric")
    assert table.loc["wer", "mean"] == pytest.approx(100 * 3 / 15)  # not the mean 36.7 %
    assert table.loc["wer", "n"] == 3 and table.loc["wer", "n_total"] == 4
    cer_edits = sum(wer_cer(r, h).extra["ratio"]["cer"][0] for r, h in pairs)
    cer_chars = sum(len(normalize(r)) for r, _ in pairs)
    assert table.loc["cer", "mean"] == pytest.approx(100 * cer_edits / cer_chars)


# --------------------------------------------------------------------------- tiny Whisper models

@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("whisper_ckpt")
    paths = {}
    for n_mels in (80, 128):
        paths[n_mels] = root / f"tiny-{n_mels}.pt"
        save_whisper_checkpoint(tiny_random_whisper(n_mels), paths[n_mels])
    return paths


def _utterances(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        t = np.arange(int(SR * (1.0 + 0.7 * i))) / SR
        tone = 0.3 * np.sin(2 * np.pi * (150 + 90 * i) * t) + 0.02 * rng.standard_normal(t.size)
        out.append(tone.astype(np.float32))
    # Interleaved (n=4: lengths 1.7, 3.1, 1.0, 2.4 s), so neither input order nor index order
    # within a batch matches length order and a mix-up shows.
    return [out[k] for k in [*range(1, n, 2), *range(0, n, 2)]]


@pytest.mark.parametrize("n_mels", [80, 128])
def test_checkpoint_file_loads_with_weights_only(checkpoints, n_mels, monkeypatch):
    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or real_load(*a, **k))
    model = load_asr_model(checkpoint=checkpoints[n_mels])
    assert calls and all(k.get("weights_only") is True for k in calls)
    assert model.dims.n_mels == n_mels and model.is_multilingual
    assert model.num_languages == (100 if n_mels == 128 else 99)
    reference = tiny_random_whisper(n_mels).state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in model.state_dict().items())
    assert load_asr_model(checkpoint=checkpoints[n_mels]) is model  # loaded once per process
    digest = hashlib.sha256(checkpoints[n_mels].read_bytes()).hexdigest()
    assert model_id(checkpoint=checkpoints[n_mels]) == f"checkpoint-sha256:{digest[:16]}"


def test_bad_model_names_and_paths(tmp_path):
    with pytest.raises(ValueError, match="did you mean.*large-v3"):
        load_asr_model("large-v33", download_root=tmp_path)
    with pytest.raises(FileNotFoundError, match="asr_checkpoint"):
        load_asr_model(checkpoint=tmp_path / "missing.pt")
    assert model_id("large") == model_id("large-v3") == "large-v3"
    assert model_id("turbo") == "large-v3-turbo" and model_id("small") == "small"


@pytest.mark.parametrize("n_mels", [80, 128])
def test_batched_decoding_equals_one_at_a_time(checkpoints, n_mels):
    model = load_asr_model(checkpoint=checkpoints[n_mels])
    wavs = _utterances(4)
    # batch_size 3 of 4: one full and one partial batch, after sorting by length
    batched = transcribe(model, wavs, batch_size=3, sample_len=SAMPLE_LEN)
    single = [transcribe(model, [w], batch_size=1, sample_len=SAMPLE_LEN)[0] for w in wavs]
    assert len(batched) == len(wavs) and all(isinstance(t, str) for t in batched)
    assert batched == single
    assert len(set(batched)) >= 3  # the texts depend on the input, so order is really checked


def test_long_utterances_go_through_transcribe_in_order(checkpoints, monkeypatch):
    model = load_asr_model(checkpoint=checkpoints[80])
    rng = np.random.default_rng(1)
    long = (0.1 * rng.standard_normal(SR * 31)).astype(np.float32)  # 31 s: two windows
    short = _utterances(2)
    seen = []
    real = type(model).transcribe

    def spy(self, audio, **kw):
        seen.append((len(audio), kw, real(self, audio, **kw)))
        return seen[-1][2]

    monkeypatch.setattr(type(model), "transcribe", spy)
    texts = transcribe(model, [short[0], long, short[1]], batch_size=8, sample_len=SAMPLE_LEN)
    assert len(texts) == 3
    assert [n for n, _, _ in seen] == [len(long)]  # only the long one; the short ones batched
    _, kw, result = seen[0]
    assert kw["temperature"] == 0.0 and kw["condition_on_previous_text"] is False
    assert kw["without_timestamps"] is True and kw["language"] == "en" and kw["fp16"] is False
    assert kw["no_speech_threshold"] is None and kw["sample_len"] == SAMPLE_LEN
    assert len(result["segments"]) == 2 and texts[1] == result["text"].strip()
    assert [texts[0], texts[2]] == transcribe(model, short, sample_len=SAMPLE_LEN)


# --------------------------------------------------------------------------- offline behaviour

def _offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("no network in tests")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_missing_checkpoint_raises_quickly_naming_both_fixes(tmp_path, monkeypatch):
    _offline(monkeypatch)
    t0 = time.perf_counter()
    with pytest.raises(AsrUnavailable) as err:
        load_asr_model("large-v3", download_root=tmp_path)
    assert time.perf_counter() - t0 < 30  # bounded, not a hang (generous for a busy CI box)
    msg = str(err.value)
    assert "'large-v3'" in msg and str(tmp_path / "large-v3.pt") in msg
    assert "run once online" in msg and "--set asr_checkpoint=PATH" in msg


def test_default_cache_honours_xdg_cache_home(tmp_path, monkeypatch):
    _offline(monkeypatch)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(AsrUnavailable) as err:
        load_asr_model("small")
    assert str(tmp_path / "whisper" / "small.pt") in str(err.value)


def test_download_failure_after_a_good_probe_is_unavailable(tmp_path, monkeypatch):
    class Head:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def urlopen(request, *args, **kwargs):
        if getattr(request, "method", None) == "HEAD":
            return Head()
        raise ConnectionResetError("connection reset during download")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    with pytest.raises(AsrUnavailable, match="downloading failed.*ConnectionResetError"):
        load_asr_model("base", download_root=tmp_path)


def test_named_model_from_cache_needs_no_network(checkpoints, tmp_path, monkeypatch):
    """A cached official file is verified (SHA256 from its URL) and loaded without a request."""
    data = checkpoints[80].read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    name = "tiny-test"
    monkeypatch.setitem(whisper._MODELS, name, f"https://example.invalid/{digest}/{name}.pt")
    dims = load_asr_model(checkpoint=checkpoints[80]).dims
    heads = np.zeros((dims.n_text_layer, dims.n_text_head), dtype=bool)
    heads[-1, 0] = True
    monkeypatch.setitem(whisper._ALIGNMENT_HEADS, name,
                        base64.b85encode(gzip.compress(heads.tobytes())))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "whisper").mkdir()
    (tmp_path / "whisper" / f"{name}.pt").write_bytes(data)
    _offline(monkeypatch)
    model = load_asr_model(name)
    assert model.dims.n_mels == 80 and load_asr_model(name) is model
    assert model.alignment_heads.to_dense().numpy().tolist() == heads.tolist()
    assert model_id(name) == name


def test_scorer_offline_gives_null_with_reason(tmp_path, monkeypatch):
    _offline(monkeypatch)
    scorer = AsrScorer("large-v3", download_root=tmp_path)
    assert scorer.model_id == "large-v3"
    assert not scorer.available
    assert "asr_checkpoint=PATH" in scorer.reason
    scores = scorer.score(["hello world", None], [np.zeros(SR, np.float32)] * 2)
    assert [s.values for s in scores] == [{"wer": None, "cer": None}] * 2
    assert all("ASR unavailable" in s.reasons["wer"] for s in scores)
    with pytest.raises(AsrUnavailable):
        scorer.model  # noqa: B018


def test_scorer_scores_and_caches_ground_truth(checkpoints, monkeypatch):
    scorer = AsrScorer(checkpoint=checkpoints[128], sample_len=SAMPLE_LEN, batch_size=4)
    assert scorer.available and scorer.reason is None
    assert scorer.model_id.startswith("checkpoint-sha256:")
    wavs = _utterances(3)
    cache = Cache()
    items = [(f"u{k}", w) for k, w in enumerate(wavs)]
    truth = scorer.ground_truth(cache, "sample", "r1", items)
    assert list(truth) == ["u0", "u1", "u2"]

    # The same transcripts score through the audio path and the text path alike.
    refs = [truth["u0"], "a reference that differs", None]
    from_audio = scorer.score(refs, wavs)
    from_text = scorer.score_texts(refs, [truth[u] for u, _ in items])
    assert [s.values for s in from_audio] == [s.values for s in from_text]
    assert [s.extra["asr_text"] for s in from_audio] == [truth[u] for u, _ in items]
    assert normalize(truth["u0"])  # random weights, but a non-empty transcript
    assert from_audio[0].values == {"wer": 0.0, "cer": 0.0}
    assert from_audio[1].values["wer"] > 0 and from_audio[2].values["wer"] is None

    # Second time: served from the cache, nothing is transcribed.
    monkeypatch.setattr(asr, "transcribe", lambda *a, **k: pytest.fail("transcribed again"))
    assert scorer.ground_truth(cache, "sample", "r1", items) == truth
    # A different dataset revision or ASR model is a different key.
    with pytest.raises(pytest.fail.Exception):
        scorer.ground_truth(cache, "sample", "r2", items[:1])
    with pytest.raises(pytest.fail.Exception):
        asr.ground_truth_transcripts(cache, scorer.model, "sample", "r1", items[:1], "large-v3",
                                     sample_len=SAMPLE_LEN)
