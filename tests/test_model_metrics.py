"""Model-based metrics on tiny random models built with the real classes: WavLM speaker
similarity (WavLMForXVector), HuBERT CTC ASR (HubertForCTC), dWER/dCER, back-ends in the
protocol and in the transcript cache key."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tokbench.data import open_dataset
from tokbench.io.audio import resample
from tokbench.io.cache import Cache
from tokbench.run.scoring import ReferenceKeys, ScoreItem, Scorer

VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D"]


def _tiny_conv(cfg_cls, **more):
    # The real front end (7 conv layers, 320x downsampling at 16 kHz), tiny transformer.
    return cfg_cls(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                   intermediate_size=64, conv_dim=(32,) * 7, num_conv_pos_embeddings=16,
                   num_conv_pos_embedding_groups=4, **more)


@pytest.fixture(scope="module")
def wavlm_dir(tmp_path_factory):
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    torch.manual_seed(0)
    cfg = _tiny_conv(WavLMConfig, tdnn_dim=(32, 32, 32, 32, 64), xvector_output_dim=16,
                     num_buckets=32, max_bucket_distance=100)
    folder = tmp_path_factory.mktemp("wavlm-sv")
    WavLMForXVector(cfg).eval().save_pretrained(folder)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def hubert_dir(tmp_path_factory):
    from transformers import (
        HubertConfig,
        HubertForCTC,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Processor,
    )

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("hubert-ctc")
    vocab = folder / "vocab.json"
    vocab.write_text(json.dumps({t: i for i, t in enumerate(VOCAB)}))
    tok = Wav2Vec2CTCTokenizer(str(vocab), unk_token="<unk>", pad_token="<pad>",
                               word_delimiter_token="|")
    fx = Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False)
    Wav2Vec2Processor(feature_extractor=fx, tokenizer=tok).save_pretrained(folder)
    cfg = _tiny_conv(HubertConfig, vocab_size=len(VOCAB), pad_token_id=0)
    model = HubertForCTC(cfg).eval()
    with torch.no_grad():  # a bias towards letters so that greedy decoding says something
        model.lm_head.bias[5:] += 2.0
        model.lm_head.bias[0] -= 2.0
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def speech():
    ds = open_dataset("sample")
    out = []
    for utt in ds.utterances[:3]:
        a = ds.load(utt)
        out.append((utt, resample(a.wav, a.sample_rate, 16000).astype(np.float32)))
    return out


def test_wavlm_similarity_equals_direct_transformers_calls(wavlm_dir, speech, tmp_path):
    from transformers import Wav2Vec2FeatureExtractor, WavLMForXVector

    (utt, ref), (_, other) = speech[0], speech[1]
    hyp = ref + 0.01 * np.random.default_rng(0).standard_normal(len(ref)).astype(np.float32)
    items = [ScoreItem(utt.id, ref, hyp), ScoreItem("x", ref, ref.copy()), ScoreItem("y", ref, other)]
    with Scorer(Cache(tmp_path), ReferenceKeys("s", "r"), workers=0, metrics="spk_sim_wavlm",
                checkpoints={"spk_sim_wavlm": str(wavlm_dir)}) as scorer:
        got = [s for _, s in scorer.score(items)]
    assert all(set(s.values) == {"spk_sim_wavlm"} for s in got)

    model = WavLMForXVector.from_pretrained(wavlm_dir).eval()
    fx = Wav2Vec2FeatureExtractor.from_pretrained(wavlm_dir)

    def emb(x):
        with torch.no_grad():
            e = model(**fx(x, sampling_rate=16000, return_tensors="pt")).embeddings[0]
        return torch.nn.functional.normalize(e, dim=-1)

    expected = float(torch.dot(emb(ref), emb(hyp)))
    assert got[0].values["spk_sim_wavlm"] == pytest.approx(expected, abs=1e-5)
    assert got[1].values["spk_sim_wavlm"] == pytest.approx(1.0, abs=1e-5)
    assert got[2].values["spk_sim_wavlm"] < got[1].values["spk_sim_wavlm"]


def test_wavlm_without_weights_is_null_with_the_reason_and_not_cached(monkeypatch, speech, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    _, ref = speech[0]
    with Scorer(Cache(tmp_path / "c"), ReferenceKeys("s", "r"), workers=0,
                metrics="spk_sim_wavlm") as scorer:
        [(_, s)] = list(scorer.score([ScoreItem("u", ref, ref.copy())]))
    assert s.values == {"spk_sim_wavlm": None}
    assert "microsoft/wavlm-base-plus-sv" in s.reasons["spk_sim_wavlm"]
    assert not list((tmp_path / "c").rglob("*wavlm*"))  # unavailability is not a cached result


def test_hubert_ctc_backend_transcribes_like_direct_calls_and_keys_the_cache(hubert_dir, speech,
                                                                            tmp_path):
    from transformers import HubertForCTC, Wav2Vec2Processor

    from tokbench.metrics.asr import AsrScorer, asr_protocol

    scorer = AsrScorer(checkpoint=str(hubert_dir), backend="hubert-ctc")
    assert scorer.available and scorer.precision == "fp32"
    wavs = [w for _, w in speech]
    texts = scorer.transcribe(wavs)
    model = HubertForCTC.from_pretrained(hubert_dir).eval()
    proc = Wav2Vec2Processor.from_pretrained(hubert_dir)
    for wav, text in zip(wavs, texts, strict=True):
        with torch.no_grad():
            ids = model(proc(wav, sampling_rate=16000, return_tensors="pt").input_values).logits.argmax(-1)
        assert text == proc.batch_decode(ids)[0].strip()
    assert any(texts)  # the biased random head says something

    cache = Cache(tmp_path)
    items = [(u.id, w) for u, w in speech]
    truth = scorer.ground_truth(cache, "sample", "r1", items)
    saved = [json.loads(p.read_text()) for p in tmp_path.rglob("*.json")]
    assert {d["value"]["backend"] for d in saved} == {"hubert-ctc"} and len(saved) == 3  # cache entries hold their key, checksum and value
    assert truth == dict(zip([u.id for u, _ in speech], texts, strict=True))

    p = asr_protocol(True, checkpoint=str(hubert_dir), backend="hubert-ctc", device="cpu")
    assert p["backend"] == "hubert-ctc" and p["package"] == "transformers"
    assert p["model"].startswith("local-sha256:") and p["precision"] == "fp32"


def test_dwer_uses_the_asr_text_of_the_reference(hubert_dir, speech, tmp_path):
    from tokbench.metrics.asr import AsrScorer

    scorer = AsrScorer(checkpoint=str(hubert_dir), backend="hubert-ctc")
    (u0, w0), (u1, w1) = speech[0], speech[1]
    items = [ScoreItem(u0.id, w0, w0.copy(), text=None),  # identity without a transcript
             ScoreItem(u1.id, w1, w0.copy(), text=u1.text)]  # another utterance's audio
    with Scorer(Cache(tmp_path), ReferenceKeys("s", "r"), workers=0, asr=scorer,
                metrics="asr") as sc:
        a, b = [s for _, s in sc.score(items)]
    assert a.values["dwer"] == 0.0 and a.values["dcer"] == 0.0
    assert a.values["wer"] is None and "no reference transcript" in a.reasons["wer"]
    assert b.values["dwer"] > 0 and b.values["wer"] is not None
    assert b.extra["ratio"]["dwer"][1] > 0 and set(b.extra["ratio"]) == {"wer", "cer", "dwer", "dcer"}


def test_whisper_precision_is_part_of_the_protocol_and_the_cache_key():
    from tokbench.metrics.asr import _transcript_key, asr_protocol

    cpu = asr_protocol(True, "large-v3", backend="whisper", device="cpu")
    gpu = asr_protocol(True, "large-v3", backend="whisper", device="cuda:1")
    beam = asr_protocol(True, "large-v3", backend="whisper-beam5", device="cpu")
    assert (cpu["precision"], gpu["precision"]) == ("fp32", "fp16")
    assert len({json.dumps(d, sort_keys=True) for d in (cpu, gpu, beam)}) == 3
    assert "beam 5" in beam["decoding"]
    keys = {_transcript_key("d", "r", "u", "large-v3", None, b, p)
            for b in ("whisper", "whisper-beam5") for p in ("fp16", "fp32")}
    assert len(keys) == 4


def test_whisper_beam_search_runs_one_utterance_at_a_time(monkeypatch):
    import whisper

    from tokbench.metrics import asr
    from tokbench.testing import tiny_random_whisper

    model = tiny_random_whisper(n_mels=80)
    calls = []
    real = model.transcribe

    def spy(audio, **kw):
        calls.append(kw["beam_size"])
        return real(audio, **kw)

    monkeypatch.setattr(model, "transcribe", spy)
    monkeypatch.setattr(whisper, "decode", lambda *a, **k: pytest.fail("batched decode"))
    wavs = [np.zeros(8000, np.float32), 0.01 * np.ones(16000, np.float32)]
    texts = asr.transcribe(model, wavs, batch_size=4, sample_len=4, beam_size=5)
    assert len(texts) == 2 and calls == [5, 5]
