"""Higgs Audio v2 tokenizer through transformers: presets -> call arguments, the released
config's architecture and parameter count, the adapter against a direct call of the model on the
same weights, loading errors, and an end-to-end recon run on the tiny checkpoint (the contract
itself is checked for every preset by test_conformance)."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from tokbench.resolve import load_tokenizer, resolve_tokenizer

pytest.importorskip("torchaudio")  # its model module imports torchaudio (docs/torchaudio.md)
transformers = pytest.importorskip("transformers")
if not hasattr(transformers, "HiggsAudioV2TokenizerModel"):
    pytest.skip("transformers has no HiggsAudioV2TokenizerModel (needs >= 5.17)", allow_module_level=True)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PRESETS = {"higgs-audio-v2": (2.0, 8), "higgs-audio-v2-0.5kbps": (0.5, 2),
           "higgs-audio-v2-1kbps": (1.0, 4), "higgs-audio-v2-1.5kbps": (1.5, 6)}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tokbench.adapters.higgs_audio import HiggsAudioV2Tokenizer

    return HiggsAudioV2Tokenizer.build_tiny_checkpoint(tmp_path_factory.mktemp("higgs"))


@pytest.mark.parametrize("preset,expected", PRESETS.items())
def test_preset_resolves_to_explicit_call_arguments(preset, expected):
    bandwidth, n_q = expected
    r = resolve_tokenizer(preset)
    assert r.cls.call_kwargs(r.options) == {"bandwidth": bandwidth}
    meta = r.meta
    assert (meta.sample_rate, meta.frame_rate, meta.n_codebooks) == (24_000, 25.0, n_q)
    assert meta.codebook_sizes == (1024,) * n_q and meta.bitrate_nominal == bandwidth * 1000
    assert meta.source.revision == "403fbacf2f60caaa102f893fdfabb694619b2417"


def test_unknown_bandwidth_is_refused():
    with pytest.raises(ValueError, match=r"bandwidth must be one of \[0.5, 1.0, 1.5, 2.0\]"):
        resolve_tokenizer("higgs-audio-v2", {"bandwidth": 4.0})


def test_default_config_is_not_the_released_model():
    """Why RELEASED_CONFIG exists: transformers' default config has hop 320 and 16 codebooks."""
    from transformers import HiggsAudioV2TokenizerConfig

    from tokbench.adapters.higgs_audio import model_config

    default = HiggsAudioV2TokenizerConfig()
    assert (default.hop_length, default.num_quantizers) != (960, 8)
    released = model_config()
    assert (released.sample_rate, released.hop_length, released.frame_rate,
            released.num_quantizers, released.codebook_size,
            released.semantic_downsample_factor) == (24_000, 960, 25, 8, 1024, 2)


def test_released_architecture_has_the_recorded_parameters():
    from transformers import HiggsAudioV2TokenizerModel

    from tokbench.adapters.higgs_audio import HiggsAudioV2Tokenizer, model_config

    with torch.device("meta"):  # shapes only: the count needs no weights (8 s -> 0.4 s)
        model = HiggsAudioV2TokenizerModel(model_config())
    total = sum(p.numel() for p in model.parameters())
    assert total == 200_343_777  # 200.3 M
    assert set(HiggsAudioV2Tokenizer.costs) == set(HiggsAudioV2Tokenizer.presets)
    for cost in HiggsAudioV2Tokenizer.costs.values():
        assert cost.params == total
        assert cost.params_quantizer == sum(p.numel() for p in model.quantizer.parameters())
        assert cost.encode_macs_per_s > cost.decode_macs_per_s > 0


@pytest.mark.parametrize("bandwidth", [0.5, 2.0])
def test_adapter_equals_the_model_called_directly(tiny, bandwidth):
    """The same weights: codes identical to the model's own ``encode`` on the same whole frames,
    audio equal to its ``decode`` (1e-5: the same float32 kernels, one item at a time)."""
    from transformers import HiggsAudioV2TokenizerModel

    model = HiggsAudioV2TokenizerModel.from_pretrained(str(tiny)).eval()
    tok = load_tokenizer("higgs-audio-v2", {"bandwidth": bandwidth}, checkpoint=str(tiny))
    gen = torch.Generator().manual_seed(3)
    lengths = torch.tensor([24_000, 10_000])  # 25 frames, and 10.4 -> 11 frames
    wav = torch.randn(2, 24_000, generator=gen) * 0.1
    tokens = tok.encode(wav, lengths)
    out = tok.decode(tokens)
    for b, n in enumerate(lengths.tolist()):
        frames = -(-n // 960)
        x = torch.zeros(1, 1, frames * 960)
        x[0, 0, :n] = wav[b, :n]
        with torch.inference_mode():
            ref = model.encode(x, bandwidth=bandwidth).audio_codes[0]
            ref_wav = model.decode(ref[None]).audio_values[0, 0]
        assert torch.equal(tokens.item(b).cpu(), ref)
        assert len(torch.unique(ref[0])) > 1  # the tiny model's codes vary
        assert torch.allclose(out.wav[b, :n], ref_wav[:n], atol=1e-5, rtol=0)


def test_a_checkpoint_with_other_rates_is_refused(tiny, tmp_path):
    import shutil

    shutil.copytree(tiny, tmp_path / "ckpt")
    cfg_path = tmp_path / "ckpt" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["sample_rate"] = 16_000  # e.g. a 16 kHz sibling: same weights' shapes, other rates
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="sample_rate 16000 != 24000"):
        load_tokenizer("higgs-audio-v2", checkpoint=str(tmp_path / "ckpt"))


def test_missing_weights_offline_name_both_fixes(tmp_path, monkeypatch):
    from tokbench.io.hub import ModelNotAvailableError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelNotAvailableError, match="bosonai/higgs-audio-v2-tokenizer.*--checkpoint"):
        load_tokenizer("higgs-audio-v2")


@pytest.mark.slow
def test_cli_recon_run_on_the_tiny_checkpoint(tiny, tmp_path):
    from tokbench.cli import app
    from tokbench.results.store import iter_records

    out = tmp_path / "results"
    r = CliRunner().invoke(app, ["run", "--tokenizer", "higgs-audio-v2", "--checkpoint", str(tiny),
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
    assert 0 <= rec["extra"]["length_mismatch"] < 960
    info = json.loads((runs[0] / "run.json").read_text())
    assert info["tokenizer_meta"]["source"]["resolved"].startswith("local-sha256:")


def test_missing_torchaudio_says_how_to_install_it(monkeypatch, tiny):
    import sys

    from tokbench.types import TokenizerSetupError

    monkeypatch.setitem(sys.modules, "torchaudio", None)
    with pytest.raises(TokenizerSetupError, match=r"needs torchaudio.*install_torchaudio\.sh"):
        load_tokenizer("higgs-audio-v2", checkpoint=str(tiny))
