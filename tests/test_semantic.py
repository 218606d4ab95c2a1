"""Semantic tokenizers (k-means units of HuBERT / WavLM) on tiny random checkpoints.

The tiny models keep what matters for tokens: 16 kHz input, the real conv stack (kernels
10,3,3,3,3,2,2 and strides 5,2,2,2,2,2,2: 400-sample receptive field, 320-sample hop, 50 Hz),
the real positional convolution (128 taps, 16 groups), group norm for HuBERT-base and layer
norm + pre-LN blocks for the large models; only widths and depths shrink.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from tokbench.adapters.ssl.features import BATCH_TOLERANCE, conv_frames
from tokbench.adapters.ssl.kmeans import (
    CentroidsError,
    CentroidsNotFoundError,
    centroids_cache_path,
    save_centroids,
)
from tokbench.adapters.ssl.units import SSLKMeansOptions, SSLKMeansTokenizer, build_tiny_model
from tokbench.options import OptionError, build_options
from tokbench.resolve import load_tokenizer, resolve_tokenizer
from tokbench.run.task import Task
from tokbench.types import Audio, Tokens

TINY_LAYERS = 6  # transformer blocks of the tiny models (units.build_tiny_model)


def _save_tiny(kind: str, folder, do_normalize: bool | None) -> str:
    build_tiny_model(kind, folder, seed=0, num_layers=TINY_LAYERS)
    assert json.loads((folder / "config.json").read_text())["conv_stride"] == [5, 2, 2, 2, 2, 2, 2]
    if do_normalize is not None:
        (folder / "preprocessor_config.json").write_text(json.dumps(
            {"do_normalize": do_normalize, "sampling_rate": 16000, "feature_size": 1,
             "padding_value": 0.0, "return_attention_mask": kind != "hubert-base"}))
    return str(folder)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ssl")
    return {
        "hubert-base": _save_tiny("hubert-base", root / "hubert-base", False),
        "hubert-large": _save_tiny("hubert-large", root / "hubert-large", None),
        "wavlm-large": _save_tiny("wavlm-large", root / "wavlm-large", True),
    }


def _centroids(model: str, layer: int, k: int, normalize: bool, seed: int = 0) -> np.ndarray:
    array = np.random.default_rng(seed).standard_normal((k, 32)).astype(np.float32)
    save_centroids(centroids_cache_path(model, layer, k), array,
                   {"model": model, "layer": layer, "normalize": normalize, "source": "test"})
    return array


def _speechlike(n: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    x = 0.3 * np.sin(2 * np.pi * (150 + 50 * rng.random()) * t) * (1 + np.sin(2 * np.pi * 3 * t))
    return torch.from_numpy((x + 0.05 * rng.standard_normal(n)).astype(np.float32))


def test_presets_describe_without_files():
    meta = resolve_tokenizer("hubert-base-l6-km100").meta
    assert meta.kind == "semantic" and meta.family == "hubert"
    assert meta.sample_rate == 16000 and meta.frame_rate == 50.0
    assert meta.n_codebooks == 1 and meta.codebook_sizes == (100,)
    assert meta.capabilities == frozenset({"embed"}) and not meta.can("decode")
    assert meta.source.repo_id == "facebook/hubert-base-ls960"
    assert meta.bitrate_nominal == pytest.approx(50 * np.log2(100))
    large = resolve_tokenizer("hubert-large-l22-km500")
    assert (large.options.model, large.options.layer, large.options.k) == ("hubert-large", 22, 500)
    assert large.meta.source.revision == "fa4264f8c20e848d45f9b3e5eea32b5cfab209c3"
    wavlm = resolve_tokenizer("wavlm-large-l6-km1000")
    assert wavlm.meta.name == "wavlm-large-l6-km1000" and wavlm.meta.codebook_sizes == (1000,)
    assert wavlm.meta.family == "wavlm" and wavlm.options.normalize is None
    # GSLM presets state the input normalisation the published centroids were fitted with
    assert resolve_tokenizer("hubert-base-l6-km50").options.normalize is False


def test_options_are_validated():
    with pytest.raises(OptionError, match=r"layer must lie in \[1, 12\]"):
        build_options(SSLKMeansOptions, {"model": "hubert-base"}, {"layer": "13"})
    with pytest.raises(OptionError, match="must be one of"):
        build_options(SSLKMeansOptions, {}, {"model": "hubert-xl"})
    with pytest.raises(OptionError, match=r"must be one of \['knn-vc'\]"):
        build_options(SSLKMeansOptions, {}, {"vocoder": "hifigan"})
    with pytest.raises(OptionError, match="need a vocoder"):
        build_options(SSLKMeansOptions, {}, {"vocoder_checkpoint": "g.pt"})
    assert build_options(SSLKMeansOptions, {}, {"layer": "24", "model": "wavlm-large"}).layer == 24


def test_list_tokenizers_needs_no_centroids():
    from tokbench.cli import app

    result = CliRunner().invoke(app, ["list", "tokenizers"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "hubert-base-l6-km100" in result.output and "wavlm-large-l6-km1000" in result.output
    assert "unavailable" not in result.output


def test_missing_centroids_say_how_to_make_them(checkpoints):
    with pytest.raises(CentroidsNotFoundError) as info:
        load_tokenizer("hubert-base-l6-km100", checkpoint=checkpoints["hubert-base"])
    text = str(info.value)
    assert "tokbench fit-kmeans --model hubert-base --layer 6 --k 100" in text
    assert "https://dl.fbaipublicfiles.com/textless_nlp/gslm/hubert/km100/km.bin" in text
    assert str(centroids_cache_path("hubert-base", 6, 100)) in text
    with pytest.raises(CentroidsNotFoundError) as info:
        load_tokenizer("wavlm-large-l6-km1000", checkpoint=checkpoints["wavlm-large"])
    assert "fit-kmeans --model wavlm-large" in str(info.value) and "GSLM" not in str(info.value)


def test_offline_without_checkpoint_is_a_clear_error(monkeypatch, tmp_path):
    from tokbench.io.hub import ModelNotAvailableError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    _centroids("hubert-base", 9, 500, normalize=False)
    with pytest.raises(ModelNotAvailableError,
                       match=r"facebook/hubert-base-ls960 is not cached and the Hub is unreachable"
                             r".*run `tokbench prefetch`.*online, or pass --checkpoint DIR"):
        load_tokenizer("hubert-base-l9-km500")


@pytest.mark.parametrize("kind,preset,k", [
    ("hubert-base", "hubert-base-l6-km100", 100),
    ("wavlm-large", "wavlm-large-l6-km1000", 1000),
])
def test_batched_tokens_equal_one_at_a_time(checkpoints, kind, preset, k):
    normalize = kind != "hubert-base"  # what each tiny checkpoint's preprocessor config says
    centroids = _centroids(kind, 6, k, normalize)
    tok = load_tokenizer(preset, checkpoint=checkpoints[kind])
    assert tok.meta.options["normalize"] is normalize
    assert tok.meta.options["normalize_from"] == ("option" if kind == "hubert-base" else "preprocessor_config.json")
    items = [_speechlike(n, i) for i, n in enumerate((24000, 16000, 7777, 401, 399))]
    batch = Audio.from_list(items, 16000)
    tokens = tok.encode(batch.wav, batch.lengths)
    # frames = floor((len - 400) / 320) + 1, as the model itself computes them
    expected = [(n - 400) // 320 + 1 if n >= 400 else 0 for n in (24000, 16000, 7777, 401, 399)]
    assert tokens.frame_lengths.tolist() == expected == [74, 49, 24, 1, 0]
    model_lengths = tok.features.net._get_feat_extract_output_lengths(batch.lengths[:4])
    assert model_lengths.tolist() == expected[:4]
    assert tokens.codes.shape == (5, 1, 74) and tokens.codes.dtype == torch.long
    assert int(tokens.codes.min()) >= 0 and int(tokens.codes.max()) < k
    assert len(torch.unique(tokens.codes)) > 3  # the random model does not collapse to one unit
    equal = total = 0
    feats_b, _ = tok.features(batch.wav, batch.lengths)
    for i, x in enumerate(items):
        one = tok.encode(x[None], torch.tensor([len(x)]))
        assert one.frame_lengths.tolist() == [expected[i]]
        equal += int((one.item(0) == tokens.item(i)).sum())
        total += expected[i]
        feats_1, _ = tok.features(x[None], torch.tensor([len(x)]))
        assert torch.allclose(feats_b[i, : expected[i]], feats_1[0], atol=1e-4)
        assert not feats_b[i, expected[i]:].any()  # padding frames are zero
    assert equal / total >= BATCH_TOLERANCE
    emb = tok.embed(tokens)
    assert emb.shape == (5, 1, 74, 32)
    assert torch.equal(emb[0, 0, :74], torch.from_numpy(centroids)[tokens.codes[0, 0]])
    assert not emb[2, 0, 24:].any() and not emb[4].any()


def test_features_are_layer_l_hidden_states(checkpoints):
    """Layer L = output of transformer block L = transformers' hidden_states[L] (L < N)."""
    from transformers import WavLMModel

    _centroids("wavlm-large", 4, 50, True)
    tok = load_tokenizer("wavlm-large-l6-km1000", {"layer": 4, "k": 50},
                         checkpoint=checkpoints["wavlm-large"])
    assert len(tok.features.net.encoder.layers) == 4  # blocks after L are not run
    x = _speechlike(16000, 3)
    feats, _ = tok.features(x[None], torch.tensor([16000]))
    ref = WavLMModel.from_pretrained(checkpoints["wavlm-large"]).eval()
    xn = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)
    with torch.inference_mode():
        hidden = ref(xn[None], output_hidden_states=True).hidden_states
    assert torch.allclose(feats[0], hidden[4][0], atol=1e-5)
    assert not torch.allclose(feats[0], hidden[3][0], atol=1e-3)


def test_normalisation_follows_the_checkpoint_then_the_pretraining_default(checkpoints):
    _centroids("hubert-large", 22, 500, True)
    with pytest.raises(ValueError, match="layer 22 does not exist"):
        load_tokenizer("hubert-large-l22-km500", checkpoint=checkpoints["hubert-large"])
    _centroids("hubert-large", 2, 500, True)
    tok = load_tokenizer("hubert-large-l22-km500", {"layer": 2}, checkpoint=checkpoints["hubert-large"])
    # the tiny hubert-large checkpoint has no preprocessor_config.json: pre-training setting
    assert tok.meta.options["normalize"] is True
    assert tok.meta.options["normalize_from"] == "pre-training default"
    assert tok.meta.source.local_path == checkpoints["hubert-large"]
    # a local checkpoint is identified by its files, standing in for a Hub commit
    assert tok.meta.source.resolved.startswith("local-sha256:") and tok.meta.source.revision is None
    x = _speechlike(8000, 1)
    a = tok.encode(x[None], torch.tensor([8000]))
    b = tok.encode(4 * x[None], torch.tensor([8000]))  # normalised input: scale does not matter
    assert torch.equal(a.codes, b.codes)


def test_centroids_must_match_the_variant(checkpoints, tmp_path):
    path = tmp_path / "c.npz"
    save_centroids(path, np.zeros((100, 32), np.float32) + np.arange(100)[:, None],
                   {"model": "hubert-base", "layer": 9, "normalize": False})
    with pytest.raises(CentroidsError, match="fitted on layer 9, not 6"):
        load_tokenizer("hubert-base-l6-km100", {"centroids": str(path)}, checkpoint=checkpoints["hubert-base"])
    save_centroids(path, np.ones((100, 32), np.float32) * np.arange(100)[:, None],
                   {"model": "hubert-base", "layer": 6, "normalize": True})
    with pytest.raises(CentroidsError, match="pass --set normalize=true"):
        load_tokenizer("hubert-base-l6-km100", {"centroids": str(path)}, checkpoint=checkpoints["hubert-base"])
    tok = load_tokenizer("hubert-base-l6-km100", {"centroids": str(path), "normalize": "true"},
                         checkpoint=checkpoints["hubert-base"])
    assert tok.meta.options["centroids_sha256"] and tok.meta.options["normalize"] is True
    with pytest.raises(CentroidsNotFoundError, match="does not exist"):
        load_tokenizer("hubert-base-l6-km100", {"centroids": str(tmp_path / "nope.npz")})


def test_embed_and_decode_contract(checkpoints):
    _centroids("hubert-base", 6, 100, False)
    tok = load_tokenizer("hubert-base-l6-km100", checkpoint=checkpoints["hubert-base"])
    assert isinstance(tok, SSLKMeansTokenizer)
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 100\)"):
        tok.embed(Tokens(torch.full((1, 1, 3), 100), torch.tensor([3])))
    with pytest.raises(NotImplementedError, match="need a vocoder"):
        tok.decode(Tokens(torch.zeros(1, 1, 3, dtype=torch.long), torch.tensor([3])))
    assert conv_frames(torch.tensor([0, 399, 400, 719, 720]), (10, 3, 3, 3, 3, 2, 2),
                       (5, 2, 2, 2, 2, 2, 2)).tolist() == [0, 0, 1, 1, 2]


class NeedsDecode(Task):
    """A task that needs decode, like recon, registered for the runner test below."""

    name = "needs-decode-test"
    requires = frozenset({"decode"})


def _one_file_dataset(tmp_path) -> str:
    data = tmp_path / "data"
    data.mkdir()
    sf.write(data / "a.wav", _speechlike(8000, 0).numpy(), 16000)
    return str(data)


def test_decode_tasks_report_that_semantic_tokens_need_a_vocoder(tmp_path):
    from tokbench import registry
    from tokbench.registry import Entry
    from tokbench.run.runner import run

    registry.tasks.add(NeedsDecode.name, Entry(NeedsDecode.name, f"{__name__}:NeedsDecode"),
                       replace=True)
    # no checkpoint and no centroids here: an unsupported run must not try to load anything
    result = run("hubert-base-l6-km100", NeedsDecode.name, _one_file_dataset(tmp_path),
                 out=tmp_path / "results", log=lambda msg: None)
    assert result.status == "unsupported"
    assert "semantic tokens need a vocoder to be decoded (--set vocoder=" in result.reason
    summary = json.loads((result.path / "summary.json").read_text())
    assert "needs a vocoder" in summary["unsupported"]
    from tokbench.cli import app

    cli = CliRunner().invoke(app, ["run", "--tokenizer", "wavlm-large-l6-km1000", "--task",
                                   NeedsDecode.name, "--dataset", str(tmp_path / "data"),
                                   "--out", str(tmp_path / "r2")], env={"COLUMNS": "300"})
    assert cli.exit_code == 0, cli.output
    assert "not supported" in cli.output and "needs a vocoder" in cli.output
    # a non-semantic tokenizer lacking decode keeps the generic message
    meta = dataclasses.replace(resolve_tokenizer("mulaw").meta, capabilities=frozenset())
    assert NeedsDecode(None).unsupported_reason(meta) == (
        "mulaw lacks the capability decode that task needs-decode-test needs")


def test_tokbench_run_recon_on_a_semantic_tokenizer_says_it_needs_a_vocoder(tmp_path):
    from tokbench.cli import app

    cli = CliRunner().invoke(app, ["run", "--tokenizer", "wavlm-large-l6-km1000", "--task", "recon",
                                   "--dataset", _one_file_dataset(tmp_path),
                                   "--out", str(tmp_path / "results")], env={"COLUMNS": "300"})
    assert cli.exit_code == 0, cli.output
    assert "not supported" in cli.output and "needs a vocoder" in cli.output


def test_token_pipeline_caches_semantic_tokens(checkpoints, tmp_path):
    """Tasks (bpe, token statistics, probing) get tokens through encode_dataset: it must work
    unchanged, and the cache key must change with the centroids."""
    from tokbench.data import open_dataset
    from tokbench.io.cache import Cache
    from tokbench.run.token_cache import encode_dataset

    data = tmp_path / "data"
    data.mkdir()
    for i, n in enumerate((16000, 9000, 12000)):
        sf.write(data / f"u{i}.wav", _speechlike(n, i).numpy(), 16000)
    ds = open_dataset(str(data))
    _centroids("hubert-base", 6, 100, False, seed=0)
    tok = load_tokenizer("hubert-base-l6-km100", checkpoint=checkpoints["hubert-base"])
    first = encode_dataset(tok, ds, ds.utterances, Cache(), batch_size=2)
    assert not first.errors and sorted(first.codes) == ["u0", "u1", "u2"]
    for utt in ds.utterances:
        wav = torch.from_numpy(sf.read(utt.path, dtype="float32")[0])[None]
        one = tok.encode(wav, torch.tensor([wav.shape[1]]))
        assert torch.equal(first.codes[utt.id], one.item(0))
    again = encode_dataset(tok, ds, ds.utterances, Cache(), batch_size=2)
    assert again.encode_seconds == 0.0  # all from the cache
    _centroids("hubert-base", 6, 100, False, seed=1)  # refitted centroids, same options
    other = load_tokenizer("hubert-base-l6-km100", checkpoint=checkpoints["hubert-base"])
    fresh = encode_dataset(other, ds, ds.utterances, Cache(), batch_size=2)
    assert fresh.encode_seconds > 0.0  # not served the old centroids' tokens


def test_bpe_task_runs_unchanged_on_semantic_tokens(checkpoints, tmp_path):
    """The bpe task (token statistics included) sees only the adapter contract."""
    from tokbench.results import load_results
    from tokbench.run.runner import run

    data = tmp_path / "data"
    data.mkdir()
    for i in range(6):
        sf.write(data / f"u{i}.wav", _speechlike(16000 + 1600 * i, i).numpy(), 16000)
    _centroids("hubert-base", 6, 100, False)
    result = run("hubert-base-l6-km100", "bpe", str(data), out=tmp_path / "results",
                 checkpoint=checkpoints["hubert-base"], device="cpu", batch_size=4,
                 overrides=["multipliers=1,2"], log=lambda msg: None)
    assert result.status == "complete", result.reason
    df = load_results(result.path)
    assert set(df["tokenizer"]) == {"hubert-base-l6-km100"}
    assert {"bpe_reduction", "bpe_lossless", "token_entropy", "codebook_utilisation",
            "bitrate_entropy"} <= set(df["metric"])
    lossless = df[df["metric"] == "bpe_lossless"]["value"]
    assert len(lossless) and (lossless == 1).all()  # BPE over these units decodes back exactly
