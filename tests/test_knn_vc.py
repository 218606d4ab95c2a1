"""kNN-VC parts: matching, the HiFi-GAN in the release's checkpoint layout, prompt processing,
and semantic tokenizers decoding through it (tiny random weights, tests/tiny_vc.py)."""

from __future__ import annotations

import urllib.error

import numpy as np
import pyloudnorm
import pytest
import torch

from tests.tiny_vc import (
    DIM,
    save_official_layout,
    save_tiny_centroids,
    save_tiny_hubert,
    save_tiny_wavlm,
    tiny_generator,
)
from tokbench.adapters.ssl.knn_vc import (
    HOP,
    PREMATCHED_URL,
    TARGET_LUFS,
    HiFiGANConfig,
    HiFiGANGenerator,
    VocoderUnavailableError,
    checkpoint_cache_path,
    compare_features,
    fetch_checkpoint,
    fold_weight_norm,
    knn_average,
    load_generator,
    normalize_loudness,
    pad_to_hop,
    unit_queries,
    voiced_span,
)
from tokbench.data import open_dataset
from tokbench.resolve import load_tokenizer, resolve_tokenizer
from tokbench.types import Audio, PromptAudio

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- matching -------------------------------------------------------------------------------

def test_knn_average_finds_the_known_cosine_neighbours():
    """Matching set: 3 tight clusters of 5 vectors around orthogonal directions, at very
    different scales; each query is a scaled copy of one direction. Its k=4 nearest by cosine are
    4 members of that cluster whatever the scale (Euclidean neighbours would differ)."""
    gen = torch.Generator().manual_seed(0)
    dirs = torch.eye(8)[:3]
    scales = torch.tensor([0.01, 1.0, 100.0])
    members = [dirs[c] * scales[c] * (1 + 0.01 * torch.randn(5, 8, generator=gen)) for c in range(3)]
    matching = torch.cat(members)
    query = torch.stack([dirs[2] * 0.001, dirs[0] * 50.0, dirs[1]])
    out = knn_average(query, matching, k=4)
    for row, c in zip(out, (2, 0, 1), strict=True):
        cos = torch.nn.functional.cosine_similarity(members[c], row[None]).min()
        assert cos > 0.999  # the mean of members of the right cluster
        assert row.norm() == pytest.approx(float(scales[c]), rel=0.05)  # features, not queries
    # exactly the mean of the 4 most similar rows
    sims = torch.nn.functional.normalize(matching, dim=1) @ torch.nn.functional.normalize(query, dim=1).T
    for j in range(3):
        top = sims[:, j].topk(4).indices
        assert torch.allclose(out[j], matching[top].mean(0))
    # k larger than the matching set averages all of it; an empty one is an error
    assert torch.allclose(knn_average(query[:1], matching[:2], k=4)[0], matching[:2].mean(0))
    with pytest.raises(ValueError, match="matching set is empty"):
        knn_average(query, matching[:0])


def test_unit_queries_average_the_prompt_frames_of_each_unit_with_a_fallback():
    centroids = torch.tensor([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [0.0, 9.0]])
    feats = torch.arange(12, dtype=torch.float32).reshape(6, 2)
    units = torch.tensor([0, 0, 2, 2, 2, 3])  # unit 1 never occurs in the prompt
    codes = torch.tensor([2, 1, 0, 3, 1])
    q, fallback = unit_queries(codes, units, feats, centroids)
    assert torch.allclose(q[0], feats[2:5].mean(0)) and torch.allclose(q[2], feats[:2].mean(0))
    assert torch.allclose(q[3], feats[5])
    # unit 1's nearest present centroid is unit 0 (distance 1; unit 2 is 9 away)
    assert torch.allclose(q[1], feats[:2].mean(0)) and torch.allclose(q[4], q[1])
    assert fallback == 2


def test_feature_check_passes_equal_features_and_flags_differences():
    """The comparison behind scripts/check_knn_vc_features.py (transformers vs official WavLM)."""
    gen = torch.Generator().manual_seed(0)
    official = torch.randn(50, 16, generator=gen)
    same = compare_features(official + 1e-6 * torch.randn(50, 16, generator=gen), official)
    assert same["ok"] and same["min_cosine"] > 0.9999 and same["rel_error"] < 1e-5
    assert not compare_features(official[:49], official)["ok"]  # one frame short
    assert compare_features(official[:49], official)["frame_mismatch"] == -1
    drift = official.clone()
    drift[10] = torch.randn(16, generator=gen)  # one frame of 50 wrong
    bad = compare_features(drift, official)
    assert not bad["ok"] and bad["min_cosine"] < 0.9 and bad["mean_cosine"] > 0.95


# --- the vocoder checkpoint -----------------------------------------------------------------

def test_generator_loads_a_checkpoint_in_the_official_layout(tmp_path):
    path, ref = save_official_layout(tmp_path / "prematch_g_02500000.pt")
    state = torch.load(path, weights_only=True)["generator"]
    assert "conv_pre.weight_g" in state and "resblocks.0.convs1.0.weight_v" in state
    model, info = load_generator(path)
    assert model.config.input_dim == DIM and model.config.hop == HOP == 320
    assert len(info["sha256"]) == 64 and info["config"]["upsample_rates"] == (10, 8, 2, 2)
    x = torch.randn(2, 7, DIM, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        y, y_ref = model(x), ref(x)
    assert y.shape == (2, 1, 7 * 320)
    assert torch.allclose(y, y_ref, atol=1e-6) and y.abs().max() <= 1.0
    # the real config: 1024-d WavLM-Large input, 512 channels
    assert HiFiGANGenerator().lin_pre.in_features == 1024 == HiFiGANConfig().input_dim


def test_fold_weight_norm_also_reads_parametrizations():
    conv = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv1d(3, 4, 5))
    folded = fold_weight_norm(conv.state_dict())
    assert set(folded) == {"bias", "weight"}
    assert torch.allclose(folded["weight"], conv.weight.detach())


def test_checkpoint_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"model": {}}, bad)
    with pytest.raises(ValueError, match="expected a dict with the key 'generator'"):
        load_generator(bad)
    other = tmp_path / "other.pt"
    g = HiFiGANGenerator(HiFiGANConfig(input_dim=DIM, hifi_dim=16, upsample_initial_channel=16,
                                       upsample_kernel_sizes=(20, 16, 4, 6),
                                       upsample_rates=(10, 8, 2, 2)))
    torch.save({"generator": g.state_dict()}, other)
    with pytest.raises(ValueError, match="upsampling kernels"):
        load_generator(other)
    with pytest.raises(VocoderUnavailableError, match="does not exist"):
        load_generator(tmp_path / "missing.pt")


def test_offline_download_says_which_url_and_how_to_fix(tmp_path):
    def offline(request, timeout):
        raise urllib.error.URLError("no network")

    with pytest.raises(VocoderUnavailableError) as err:
        fetch_checkpoint(opener=offline)
    msg = str(err.value)
    assert PREMATCHED_URL in msg and "--set vocoder_checkpoint=PATH" in msg
    assert str(checkpoint_cache_path()) in msg
    # a file already in the cache is used without any network access
    checkpoint_cache_path().parent.mkdir(parents=True, exist_ok=True)
    save_official_layout(checkpoint_cache_path())
    assert fetch_checkpoint(opener=offline) == checkpoint_cache_path()


# --- prompt processing ----------------------------------------------------------------------

def test_silence_is_trimmed_from_both_ends_and_output_loudness_normalised():
    ds = open_dataset("sample")
    speech = ds.load(ds.utterances[0]).wav
    gen = np.random.default_rng(0)
    quiet = lambda n: (1e-4 * gen.standard_normal(n)).astype(np.float32)  # noqa: E731
    padded = np.concatenate([quiet(16000), speech, quiet(24000)])
    start, end = voiced_span(padded)
    assert 16000 - 960 <= start <= 16000 + 0.3 * 16000  # within 60 ms before the speech onset
    assert 16000 + len(speech) - 0.3 * 16000 <= end <= 16000 + len(speech) + 960
    assert voiced_span(quiet(8000)) == (0, 8000)  # nothing voiced: kept whole
    assert voiced_span(speech[:100]) == (0, 100)
    assert pad_to_hop(torch.zeros(640)).shape[0] == 960 and pad_to_hop(torch.zeros(1)).shape[0] == 320

    out, gain = normalize_loudness(0.01 * speech)
    meter = pyloudnorm.Meter(16000)
    assert meter.integrated_loudness(out.astype(np.float64)) == pytest.approx(TARGET_LUFS, abs=0.05)
    assert gain > 0
    short = np.ones(1000, np.float32) * 0.1
    assert normalize_loudness(short)[1] is None and normalize_loudness(np.zeros(16000))[1] is None


# --- semantic tokenizers with vocoder=knn-vc -------------------------------------------------

@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("knnvc")
    vocoder, _ = save_official_layout(root / "g.pt")
    return {
        "wavlm": save_tiny_wavlm(root / "wavlm"), "hubert": save_tiny_hubert(root / "hubert"),
        "vocoder": str(vocoder),
        "wavlm_km": save_tiny_centroids(root / "wavlm.npz", "wavlm-large", 6, 20, False),
        "hubert_km": save_tiny_centroids(root / "hubert.npz", "hubert-base", 6, 20, False, seed=1),
    }


def _speech(n: int = 2):
    ds = open_dataset("sample")
    return [torch.from_numpy(ds.load(u).wav) for u in ds.utterances[:n]], ds


def test_vocoder_option_gives_decode_and_speaker_prompt():
    meta = resolve_tokenizer("wavlm-large-l6-km1000", {"vocoder": "knn-vc"}).meta
    assert meta.capabilities == frozenset({"embed", "decode", "speaker_prompt"})
    assert meta.options["vocoder"] == "knn-vc"
    assert resolve_tokenizer("wavlm-large-l6-km1000").meta.capabilities == frozenset({"embed"})


def test_wavlm_units_decode_their_centroids_with_a_prompt(parts):
    tok = load_tokenizer("wavlm-large-l6-km1000", {
        "k": 20, "centroids": parts["wavlm_km"], "normalize": "false", "vocoder": "knn-vc",
        "vocoder_checkpoint": parts["vocoder"]}, checkpoint=parts["wavlm"])
    assert tok.meta.options["vocoder_query"] == "centroid"
    assert len(tok.meta.options["vocoder_checkpoint"]["sha256"]) == 64
    assert tok.meta.options["vocoder_features"]["checkpoint"]  # the tokenizer's own WavLM folder
    wavs, _ = _speech(3)
    audio = Audio.from_list(wavs[:2], 16000)
    tokens = tok.encode(audio.wav, audio.lengths)
    prompt = PromptAudio.from_segments([[wavs[2]], [wavs[2], wavs[0]]], 16000)
    out = tok.decode(tokens, prompt)
    assert out.sample_rate == 16000
    assert out.lengths.tolist() == (tokens.frame_lengths * 320).tolist()
    assert torch.isfinite(out.wav).all()
    # per item: the batched result equals one-at-a-time decoding
    one = tok.decode(type(tokens)(tokens.codes[1:, :, : int(tokens.frame_lengths[1])],
                                  tokens.frame_lengths[1:]),
                     PromptAudio.from_segments([[wavs[2], wavs[0]]], 16000))
    assert torch.allclose(one.item(0), out.item(1), atol=1e-5)
    # with the input lengths recorded, decode returns exactly them
    exact = tok.decode(type(tokens)(tokens.codes, tokens.frame_lengths, audio.lengths), prompt)
    assert exact.lengths.tolist() == audio.lengths.tolist()
    assert torch.equal(exact.item(0)[: out.lengths[0]], out.item(0))
    with pytest.raises(ValueError, match="speaker prompt"):
        tok.decode(tokens)
    with pytest.raises(ValueError, match="16000 Hz"):
        tok.decode(tokens, Audio(prompt.wav, prompt.lengths, 24000))


def test_hubert_units_decode_through_prompt_frames_of_the_same_unit(parts):
    tok = load_tokenizer("hubert-base-l6-km50", {
        "k": 20, "centroids": parts["hubert_km"], "vocoder": "knn-vc",
        "vocoder_checkpoint": parts["vocoder"], "vocoder_features": parts["wavlm"]},
        checkpoint=parts["hubert"])
    assert tok.meta.options["vocoder_query"].startswith("mean of prompt frames")
    wavs, _ = _speech(2)
    audio = Audio.from_list(wavs[:1], 16000)
    tokens = tok.encode(audio.wav, audio.lengths)
    out = tok.decode(tokens, Audio.from_list([wavs[1]], 16000))  # a plain Audio: one segment
    assert out.lengths.tolist() == [int(tokens.frame_lengths[0]) * 320]
    assert torch.isfinite(out.wav).all() and out.wav.abs().max() > 0
    assert tok.vocoder.fallback_frames >= 0


def test_a_random_vocoder_still_follows_the_prompt(parts):
    """Not a quality claim: with tiny random weights, different prompts must give different
    audio from the same tokens (the prompt really is used)."""
    tok = load_tokenizer("wavlm-large-l6-km1000", {
        "k": 20, "centroids": parts["wavlm_km"], "normalize": "false", "vocoder": "knn-vc",
        "vocoder_checkpoint": parts["vocoder"]}, checkpoint=parts["wavlm"])
    ds = open_dataset("sample")
    by_speaker = {}
    for u in ds.utterances:
        by_speaker.setdefault(u.speaker, []).append(torch.from_numpy(ds.load(u).wav))
    a, b = list(by_speaker)[:2]
    src = Audio.from_list([by_speaker[a][0]], 16000)
    tokens = tok.encode(src.wav, src.lengths)
    out_a = tok.decode(tokens, PromptAudio.from_segments([by_speaker[a][1:]], 16000))
    out_b = tok.decode(tokens, PromptAudio.from_segments([by_speaker[b][1:]], 16000))
    assert not torch.allclose(out_a.wav, out_b.wav, atol=1e-3)


def test_generator_widths_must_match_the_features(parts, tmp_path):
    g = tiny_generator()
    wide = HiFiGANGenerator(HiFiGANConfig(input_dim=48, hifi_dim=16, upsample_initial_channel=16))
    torch.save({"generator": wide.state_dict()}, tmp_path / "wide.pt")
    with pytest.raises(Exception, match="48-d features but the feature model gives 32-d"):
        load_tokenizer("wavlm-large-l6-km1000", {
            "k": 20, "centroids": parts["wavlm_km"], "normalize": "false", "vocoder": "knn-vc",
            "vocoder_checkpoint": str(tmp_path / "wide.pt")}, checkpoint=parts["wavlm"])
    assert g.config.input_dim == DIM
