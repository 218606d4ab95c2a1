"""SpeechTokenizer from its authors' package: presets -> call arguments, the released
architecture's parameter count, equality with the authors' model on the same random weights,
loading errors, and an end-to-end recon run on the tiny checkpoint (the contract itself is
checked for every preset by test_conformance)."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from typer.testing import CliRunner

from tokbench.resolve import load_tokenizer, resolve_tokenizer
from tokbench.types import TokenizerSetupError

pytest.importorskip("speechtokenizer")  # an OSError here is a broken torchaudio: fails, as it should

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PRESETS = {"speechtokenizer": 8, "speechtokenizer-1": 1, "speechtokenizer-2": 2,
           "speechtokenizer-4": 4}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tokbench.adapters.speechtokenizer import SpeechTokenizerTokenizer

    return SpeechTokenizerTokenizer.build_tiny_checkpoint(tmp_path_factory.mktemp("spt"))


@pytest.fixture(scope="module")
def authors_model(tiny):
    """The authors' class, loaded the authors' way (``load_from_checkpoint``) from the same files."""
    from speechtokenizer import SpeechTokenizer

    sub = tiny / "speechtokenizer_hubert_avg"
    return SpeechTokenizer.load_from_checkpoint(str(sub / "config.json"),
                                                str(sub / "SpeechTokenizer.pt")).eval()


@pytest.mark.parametrize("preset,n_q", PRESETS.items())
def test_preset_resolves_to_explicit_call_arguments(preset, n_q):
    r = resolve_tokenizer(preset)
    assert r.options.n_codebooks == n_q
    assert r.cls.call_kwargs(r.options) == {"n_q": n_q}
    meta = r.meta
    assert (meta.sample_rate, meta.frame_rate, meta.codebook_sizes) == (16_000, 50.0, (1024,) * n_q)
    assert meta.bitrate_nominal == 500 * n_q and meta.kind == "hybrid"
    assert meta.license == "Apache-2.0" and "arXiv:2308.16692" in meta.citation


def test_more_than_eight_layers_is_refused():
    with pytest.raises(ValueError, match=r"n_codebooks must lie in \[1, 8\]"):
        resolve_tokenizer("speechtokenizer", {"n_codebooks": 9})


def test_released_architecture_has_the_recorded_parameters():
    """The full-size model from the released config, random weights: the counts recorded in the
    adapter's costs (which benchmarks/tokenizer_costs.py measured) are its real counts."""
    from tokbench.adapters.speechtokenizer import (
        RELEASED_CONFIG,
        SpeechTokenizerTokenizer,
        build_model,
    )

    with torch.device("meta"):  # shapes only: the count needs no weights
        model = build_model(RELEASED_CONFIG)

    def count(m):
        return sum(p.numel() for p in m.parameters())

    assert count(model) == 103_675_586  # 103.7 M
    for name, cost in SpeechTokenizerTokenizer.costs.items():
        assert name in SpeechTokenizerTokenizer.presets
        assert (cost.params_encoder, cost.params_quantizer, cost.params_decoder,
                cost.params_unused) == (count(model.encoder), count(model.quantizer),
                                        count(model.decoder), count(model.transform))
        assert cost.params == count(model)
        assert cost.encode_macs_per_s > cost.lstm_macs[0] > 0
    assert set(SpeechTokenizerTokenizer.costs) == set(SpeechTokenizerTokenizer.presets)


@pytest.mark.parametrize("n_q", [1, 8])
def test_equal_to_the_authors_model(tiny, authors_model, n_q):
    """Same weights: tokens identical to the authors' ``encode`` on the same whole frames, and
    decoded audio equal to the authors' ``decode`` (tolerance 1e-5: the same float32 kernels,
    called one item at a time on both sides)."""
    tok = load_tokenizer("speechtokenizer", {"n_codebooks": n_q}, checkpoint=str(tiny))
    gen = torch.Generator().manual_seed(1)
    lengths = torch.tensor([16_000, 9_000])  # 50 frames, and 28.125 -> 29 frames
    wav = torch.randn(2, 16_000, generator=gen) * 0.1
    tokens = tok.encode(wav, lengths)
    out = tok.decode(tokens)
    for b, n in enumerate(lengths.tolist()):
        frames = -(-n // 320)
        x = torch.zeros(1, 1, frames * 320)
        x[0, 0, :n] = wav[b, :n]
        with torch.inference_mode():
            ref_codes = authors_model.encode(x, n_q=n_q)  # [Q, 1, F]
            ref_wav = authors_model.decode(ref_codes)[0, 0]
        assert torch.equal(tokens.item(b).cpu(), ref_codes[:, 0, :])
        assert len(torch.unique(ref_codes[0])) > 1  # the tiny model's codes vary
        assert torch.allclose(out.wav[b, :n], ref_wav[:n], atol=1e-5, rtol=0)
        assert int(out.lengths[b]) == n


def test_fewer_layers_are_a_prefix_and_layer_one_is_the_semantic_one(tiny):
    wav = torch.randn(1, 8_000, generator=torch.Generator().manual_seed(2)) * 0.1
    lengths = torch.tensor([8_000])
    all8 = load_tokenizer("speechtokenizer", checkpoint=str(tiny)).encode(wav, lengths)
    one = load_tokenizer("speechtokenizer-1", checkpoint=str(tiny)).encode(wav, lengths)
    assert torch.equal(one.codes[:, 0], all8.codes[:, 0])


def test_a_checkpoint_of_another_model_is_refused(tiny, tmp_path):
    sub = tmp_path / "speechtokenizer_hubert_avg"
    sub.mkdir()
    cfg = json.loads((tiny / "speechtokenizer_hubert_avg" / "config.json").read_text())
    cfg["strides"] = [8, 5, 4, 4]
    (sub / "config.json").write_text(json.dumps(cfg))
    (sub / "SpeechTokenizer.pt").write_bytes(
        (tiny / "speechtokenizer_hubert_avg" / "SpeechTokenizer.pt").read_bytes())
    with pytest.raises(TokenizerSetupError, match=r"\(16000, 640, 1024, 8\).*expects"):
        load_tokenizer("speechtokenizer", checkpoint=str(tmp_path))


def test_missing_weights_offline_name_both_fixes(tmp_path, monkeypatch):
    from tokbench.io.hub import ModelNotAvailableError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelNotAvailableError, match="fnlp/SpeechTokenizer.*--checkpoint"):
        load_tokenizer("speechtokenizer")


def test_checkpoint_folder_without_the_files_is_a_clear_error(tmp_path):
    from tokbench.io.hub import ModelNotAvailableError

    with pytest.raises(ModelNotAvailableError, match="lacks speechtokenizer_hubert_avg/config.json"):
        load_tokenizer("speechtokenizer", checkpoint=str(tmp_path))


def test_missing_package_names_the_extra(monkeypatch, tiny):
    monkeypatch.setitem(sys.modules, "speechtokenizer", None)
    with pytest.raises(TokenizerSetupError, match=r"tokbench\[speechtokenizer\]"):
        load_tokenizer("speechtokenizer", checkpoint=str(tiny))


@pytest.mark.slow
def test_cli_recon_run_on_the_tiny_checkpoint(tiny, tmp_path, monkeypatch):
    from tokbench.cli import app
    from tokbench.results.store import iter_records

    out = tmp_path / "results"
    r = CliRunner().invoke(app, ["run", "--tokenizer", "speechtokenizer", "--checkpoint", str(tiny),
                                 "--task", "recon", "--dataset", "sample", "--limit", "1",
                                 "--set", "asr=false", "--workers", "0", "--device", "cpu",
                                 "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    runs = [p.parent for p in out.rglob("run.json")]
    assert len(runs) == 1
    records = list(iter_records(runs[0]))
    assert len(records) == 1
    rec = records[0]
    assert rec["metrics"]["mel_l1"] is not None and rec["metrics"]["rtf_encode"] > 0
    assert 0 <= rec["extra"]["length_mismatch"] < 320
    info = json.loads((runs[0] / "run.json").read_text())
    assert info["tokenizer_meta"]["source"]["resolved"].startswith("local-sha256:")


def test_missing_torchaudio_says_how_to_install_it(monkeypatch, tiny):
    monkeypatch.setitem(sys.modules, "torchaudio", None)
    with pytest.raises(TokenizerSetupError, match=r"needs torchaudio.*install_torchaudio\.sh"):
        load_tokenizer("speechtokenizer", checkpoint=str(tiny))
