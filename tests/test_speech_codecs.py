"""Speech codecs served by transformers >= 5.24 (X-Codec, X-Codec2, NeuCodec, WavTokenizer) on
tiny random checkpoints built with each model's own classes: real sample rates, hops, frame
rates and codebooks; only widths and depths shrink."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tokbench.adapters.fsq_codec import NeuCodecTokenizer, Xcodec2Tokenizer, kaldi_fbank
from tokbench.adapters.requirements import transformers_class
from tokbench.adapters.wavtokenizer import WavTokenizer40, WavTokenizer75
from tokbench.adapters.xcodec import XcodecTokenizer
from tokbench.io.hub import ModelNotAvailableError
from tokbench.options import OptionError
from tokbench.resolve import load_tokenizer, resolve_tokenizer
from tokbench.types import Tokens

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BUILDERS = {"xcodec": XcodecTokenizer, "xcodec2": Xcodec2Tokenizer, "neucodec": NeuCodecTokenizer,
            "wavtokenizer-40": WavTokenizer40, "wavtokenizer-75": WavTokenizer75}


def family_of(preset: str) -> str:
    return "xcodec" if preset.startswith("xcodec-") else preset


@pytest.fixture(scope="module")
def checkpoints(tiny_checkpoint) -> dict[str, Path]:
    """Each family's tiny checkpoint (``build_tiny_checkpoint``), shared with the conformance test."""
    return {name: tiny_checkpoint(cls)[1] for name, cls in BUILDERS.items()}


# preset -> (call arguments, sample rate, output rate, frame rate, codebooks, codebook size, repo)
PRESETS = {
    "xcodec-hubert-librispeech": ({"bandwidth": 4.0}, 16000, 16000, 50, 8, 1024,
                                  "hf-audio/xcodec-hubert-librispeech"),
    "xcodec-hubert-librispeech-0.5kbps": ({"bandwidth": 0.5}, 16000, 16000, 50, 1, 1024,
                                          "hf-audio/xcodec-hubert-librispeech"),
    "xcodec-hubert-librispeech-1.5kbps": ({"bandwidth": 1.5}, 16000, 16000, 50, 3, 1024,
                                          "hf-audio/xcodec-hubert-librispeech"),
    "xcodec-wavlm-more-data": ({"bandwidth": 4.0}, 16000, 16000, 50, 8, 1024,
                               "hf-audio/xcodec-wavlm-more-data"),
    "xcodec2": ({}, 16000, 16000, 50, 1, 65536, "HKUSTAudio/xcodec2-hf"),
    "neucodec": ({}, 16000, 24000, 50, 1, 65536, "neuphonic/neucodec"),
    "wavtokenizer-40": ({}, 24000, 24000, 40, 1, 4096, "swiss-ai/wavtokenizer-large-unify-40token"),
    "wavtokenizer-75": ({}, 24000, 24000, 75, 1, 4096, "swiss-ai/wavtokenizer-large-speech-75token-v2"),
}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_resolve_to_explicit_call_arguments_and_rates(preset):
    kwargs, sr, _, fps, n_q, size, repo = PRESETS[preset]
    resolved = resolve_tokenizer(preset)
    assert resolved.cls.call_kwargs(resolved.options) == kwargs
    meta = resolved.meta
    assert (meta.sample_rate, meta.frame_rate, meta.n_codebooks) == (sr, fps, n_q)
    assert meta.codebook_sizes == (size,) * n_q and meta.source.repo_id == repo
    assert meta.bitrate_nominal == pytest.approx(fps * n_q * math.log2(size))
    assert meta.license and meta.citation and meta.capabilities == frozenset({"decode", "embed"})


def test_bitrates_match_the_model_cards():
    assert resolve_tokenizer("xcodec2").meta.bitrate_nominal == 800  # "0.8 kbps"
    assert resolve_tokenizer("xcodec-hubert-librispeech-1kbps").meta.bitrate_nominal == 1000
    assert resolve_tokenizer("wavtokenizer-40").meta.bitrate_nominal == 480


def test_xcodec_refuses_codebook_counts_the_model_lacks():
    with pytest.raises(OptionError, match=r"n_codebooks must be one of \[1, 2, 3, 4, 8\]"):
        resolve_tokenizer("xcodec-hubert-librispeech", {"n_codebooks": "5"})
    with pytest.raises(OptionError, match=r"n_codebooks must lie in \[1, 8\]"):
        resolve_tokenizer("xcodec-hubert-librispeech", {"n_codebooks": "9"})
    with pytest.raises(OptionError, match="variant must be one of"):
        resolve_tokenizer("xcodec-hubert-librispeech", {"variant": "encodec"})
    wavlm = resolve_tokenizer("xcodec-wavlm-mls", {"n_codebooks": "4"})
    assert wavlm.cls.call_kwargs(wavlm.options) == {"bandwidth": 2.0} and wavlm.meta.n_codebooks == 4


def _items(sr: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(sr) / sr
    speechlike = 0.3 * torch.sin(2 * math.pi * 170 * t) * (1 + torch.sin(2 * math.pi * 3 * t))
    lengths = (sr, sr // 2 - 77, sr // 40 + 1, 1)
    return [speechlike[:n] + 0.02 * torch.randn(n, generator=gen) for n in lengths]


def _expected_frames(preset: str, n: int, hop: int) -> int:
    return (n + 1) // hop if preset == "neucodec" else -(-n // hop)


@pytest.mark.parametrize("preset", ["xcodec-hubert-librispeech", "xcodec-hubert-librispeech-0.5kbps",
                                    "xcodec2", "neucodec", "wavtokenizer-40", "wavtokenizer-75"])
def test_codes_lengths_and_batched_equals_one_at_a_time(preset, checkpoints):
    _, sr, out_sr, fps, n_q, size, _ = PRESETS[preset]
    tok = load_tokenizer(preset, checkpoint=str(checkpoints[family_of(preset)]))
    hop = sr // fps
    items = _items(sr)
    lengths = torch.tensor([len(x) for x in items])
    wav = torch.zeros(len(items), int(lengths.max()))
    for i, x in enumerate(items):
        wav[i, : len(x)] = x
    tokens = tok.encode(wav, lengths)
    expected = [_expected_frames(preset, len(x), hop) for x in items]
    assert tokens.frame_lengths.tolist() == expected
    assert tokens.codes.shape == (len(items), n_q, max(expected))
    assert int(tokens.codes.min()) >= 0 and int(tokens.codes.max()) < size
    assert len(torch.unique(tokens.codes[0])) > 3  # the tiny model does not collapse to one code
    audio = tok.decode(tokens)
    assert audio.sample_rate == out_sr
    assert audio.lengths.tolist() == [round(len(x) * out_sr / sr) for x in items]
    for i, x in enumerate(items):  # per-item mode: exactly the item alone, codes and audio
        one = tok.encode(x[None], torch.tensor([len(x)]))
        assert torch.equal(one.codes[0], tokens.codes[i, :, : expected[i]])
        alone = tok.decode(one)
        assert torch.equal(alone.wav[0], audio.wav[i, : int(audio.lengths[i])])
        assert not audio.wav[i, int(audio.lengths[i]):].any()
    emb = tok.embed(tokens)
    assert emb.shape[:3] == (len(items), n_q, max(expected))
    assert not emb[1, :, expected[1]:].any() and emb[0].abs().sum() > 0
    assert tok.meta.source.resolved.startswith("local-sha256:")


def test_tokens_without_input_lengths_decode_whole_frames(checkpoints):
    tok = load_tokenizer("neucodec", checkpoint=str(checkpoints["neucodec"]))
    tokens = tok.encode(_items(16000)[0][None], torch.tensor([16000]))
    bare = Tokens(tokens.codes, tokens.frame_lengths)  # e.g. from a cache or a language model
    audio = tok.decode(bare)
    assert audio.lengths.tolist() == [50 * 480] and audio.sample_rate == 24000


def test_neucodec_partial_last_frame_decodes_to_zeros_through_the_framed_base(checkpoints):
    # NeuCodec's frames_for drops a partial last frame; the framed base's decode (covered_lengths
    # hook) still returns the input length, zero past the frames, and refuses longer lengths.
    tok = load_tokenizer("neucodec", checkpoint=str(checkpoints["neucodec"]))
    x = _items(16000)[0]
    x = torch.cat([x, x[:100]])
    n = len(x)  # 16,100 samples: 50 whole frames and 100 samples no frame holds
    tokens = tok.encode(x[None], torch.tensor([n]))
    assert tokens.frame_lengths.tolist() == [50]
    audio = tok.decode(tokens)
    assert audio.lengths.tolist() == [round(n * 1.5)]
    assert audio.wav[0, :24_000].abs().sum() > 0 and not audio.wav[0, 24_000:].any()
    longest = 51 * 320 - 2  # the longest input with 50 frames: floor((len + 1) / 320) = 50
    assert tok.decode(tokens, lengths=torch.tensor([longest])).lengths.tolist() == [round(longest * 1.5)]
    with pytest.raises(ValueError, match="exceed what the codes cover"):
        tok.decode(tokens, lengths=torch.tensor([longest + 1]))


def test_fewer_xcodec_codebooks_are_a_prefix_of_more(checkpoints):
    full = load_tokenizer("xcodec-hubert-librispeech", checkpoint=str(checkpoints["xcodec"]))
    low = load_tokenizer("xcodec-hubert-librispeech-1.5kbps", checkpoint=str(checkpoints["xcodec"]))
    x = _items(16000)[1][None]
    n = torch.tensor([x.shape[1]])
    assert torch.equal(low.encode(x, n).codes, full.encode(x, n).codes[:, :3])


def test_kaldi_fbank_matches_torchaudio():
    """Golden values from torchaudio.compliance.kaldi.fbank (torchaudio 2.11.1, the settings of
    the X-Codec2/NeuCodec feature extractors) for a fixed two-tone signal with a little noise;
    over all 23 x 80 values the two implementations differed by at most 8.8e-5 (log power)."""
    t = np.arange(4000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 1250 * t)
         + 0.01 * np.random.default_rng(0).standard_normal(4000)).astype(np.float32)
    feats = kaldi_fbank(x)
    assert feats.shape == (23, 80)  # 25 ms windows every 10 ms, edges snipped
    golden = {0: [14.8104, 16.5945, 14.1877, 21.2857, 15.02, 17.6314, 19.5234, 18.9467],
              11: [13.2791, 16.5393, 13.4134, 21.2524, 17.1742, 17.8122, 19.5963, 20.4487],
              22: [13.9409, 16.6184, 13.1025, 21.2776, 16.2365, 16.826, 18.2965, 18.5199]}
    for frame, values in golden.items():
        np.testing.assert_allclose(feats[frame, ::10], values, atol=5e-4)


@pytest.mark.parametrize("preset, repo", [("xcodec-hubert-librispeech", "hf-audio/xcodec-hubert-librispeech"),
                                          ("xcodec2", "HKUSTAudio/xcodec2-hf"),
                                          ("neucodec", "neuphonic/neucodec"),
                                          ("wavtokenizer-75", "swiss-ai/wavtokenizer-large-speech-75token-v2")])
def test_missing_weights_name_the_repo_and_both_fixes(preset, repo, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError) as info:
        load_tokenizer(preset)
    assert f"{repo} is not cached and the Hub is unreachable" in str(info.value)
    assert "--checkpoint DIR" in str(info.value)


def test_a_checkpoint_of_another_family_is_refused(checkpoints):
    with pytest.raises(ValueError, match="hop length 600 != 320"):
        load_tokenizer("wavtokenizer-75", checkpoint=str(checkpoints["wavtokenizer-40"]))
    with pytest.raises(ValueError, match="output sampling rate 16000 != 24000"):
        bare = NeuCodecTokenizer.__new__(NeuCodecTokenizer)  # only the declared meta
        bare.meta = resolve_tokenizer("neucodec").meta
        bare.check_config(_Config(input_sampling_rate=16000, output_sampling_rate=16000), _source())


class _Config:
    downsampling_ratios = (2, 2, 4, 4, 5)
    quantization_levels = (4,) * 8

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _source():
    from tokbench.types import ModelSource

    return ModelSource(repo_id="neuphonic/neucodec", revision="main")


def test_a_class_missing_from_transformers_names_the_release():
    import transformers

    with pytest.raises(ImportError, match=rf"transformers {transformers.__version__} has no "
                                          r"NoSuchCodecModel: it needs transformers >= 9\.9"):
        transformers_class("NoSuchCodecModel", "9.9")


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e-cache")


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["xcodec-hubert-librispeech-0.5kbps", "xcodec2", "neucodec",
                                    "wavtokenizer-75"])
def test_cli_recon_run_with_checkpoint(preset, checkpoints, shared_cache, tmp_path, monkeypatch):
    from tokbench.cli import app
    from tokbench.results.store import iter_records

    monkeypatch.setenv("TOKBENCH_CACHE", str(shared_cache))
    out = tmp_path / "results"
    r = CliRunner().invoke(app, ["run", "--tokenizer", preset, "--checkpoint",
                                 str(checkpoints[family_of(preset)]), "--task", "recon",
                                 "--dataset", "sample", "--limit", "2", "--set", "asr=false",
                                 "--workers", "0", "--device", "cpu", "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    runs = [p.parent for p in out.rglob("run.json")]
    assert len(runs) == 1
    records = list(iter_records(runs[0]))
    assert len(records) == 2
    for rec in records:
        assert rec["metrics"]["mel_l1"] is not None and rec["metrics"]["stoi"] is not None
        assert rec["extra"]["length_mismatch"] == 0  # decoded = input length, at the output rate
    info = json.loads((runs[0] / "run.json").read_text())
    assert info["tokenizer_meta"]["source"]["resolved"].startswith("local-sha256:")


def test_xcodec2_published_figures_load_with_their_column_map():
    from tokbench.report.published import load_references

    root = Path(__file__).resolve().parents[1] / "results" / "reference"
    (ref,) = [r for r in load_references(root) if r.source.name == "xcodec2_readme_recon.csv"]
    assert (ref.task, ref.dataset) == ("recon", "librispeech-test-clean")
    row = {r["tokenizer"]: r for r in ref.rows}
    assert (row["xcodec2"]["wer"], row["xcodec2"]["pesq_wb"], row["xcodec2"]["utmos"]) == (2.47, 2.44, 4.13)
    assert (row["ground-truth"]["wer"], row["ground-truth"]["utmos"]) == (1.96, 4.09)
    assert set(ref.comparable_columns()) == {"stoi", "pesq_nb", "pesq_wb", "utmos", "spk_sim_ecapa"}
    assert ref.kind("xcodec2") == "hybrid"
