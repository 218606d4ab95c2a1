"""Multi-layer SSL units (DASB's discrete HuBERT/WavLM) on tiny random checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from tests.test_semantic import _save_tiny, _speechlike
from tokbench.adapters.ssl.features import BATCH_TOLERANCE
from tokbench.adapters.ssl.kmeans import (
    CentroidsError,
    CentroidsNotFoundError,
    centroids_cache_path,
    load_centroids,
    save_centroids,
)
from tokbench.adapters.ssl.units import DASB_LAYERS, SSLMultiLayerOptions, SSLMultiLayerTokenizer
from tokbench.options import OptionError, build_options
from tokbench.resolve import load_tokenizer, resolve_tokenizer
from tokbench.types import Audio, Tokens

pytestmark = pytest.mark.usefixtures("one_torch_thread")
LAYERS = (1, 3, 5)  # the tiny models have 6 blocks


@pytest.fixture(scope="module")
def wavlm(tmp_path_factory):
    return _save_tiny("wavlm-large", tmp_path_factory.mktemp("ssl") / "wavlm-large", True)


def _fit(model: str, layers, k: int, normalize: bool = True) -> dict[int, np.ndarray]:
    out = {}
    for layer in layers:
        out[layer] = np.random.default_rng(layer).standard_normal((k, 32)).astype(np.float32)
        save_centroids(centroids_cache_path(model, layer, k), out[layer],
                       {"model": model, "layer": layer, "normalize": normalize, "source": "test"})
    return out


def test_dasb_presets_resolve_to_six_layers_of_1000():
    for model in ("wavlm-large", "hubert-large"):
        tok = resolve_tokenizer(f"{model}-dasb-km1000")
        assert tok.options == SSLMultiLayerOptions(model=model, layers=DASB_LAYERS, k=1000)
        assert DASB_LAYERS == (1, 3, 7, 12, 18, 23)
        meta = tok.meta
        assert meta.n_codebooks == 6 and meta.codebook_sizes == (1000,) * 6
        assert meta.frame_rate == 50.0 and meta.sample_rate == 16000 and meta.kind == "semantic"
        assert meta.bitrate_nominal == pytest.approx(6 * 50 * np.log2(1000))  # DATES: "3 kbps"
        assert meta.capabilities == frozenset({"embed"})
        assert meta.name == f"{model}-dasb-km1000" and "DASB" in meta.citation
    other = resolve_tokenizer("wavlm-large-dasb-km1000", {"layers": "3,7", "k": "500"}).meta
    assert other.name == "wavlm-large-l3-7-km500" and other.n_codebooks == 2


def test_options_are_validated():
    with pytest.raises(OptionError, match=r"must lie in \[1, 24\].*\[25\]"):
        build_options(SSLMultiLayerOptions, {}, {"layers": "1,25"})
    with pytest.raises(OptionError, match="distinct"):
        build_options(SSLMultiLayerOptions, {}, {"layers": "3,3"})
    assert build_options(SSLMultiLayerOptions, {}, {"layers": "2;9"}).layers == (2, 9)


def test_missing_centroids_name_every_layer_and_the_one_pass_fit(wavlm, tmp_path):
    _fit("wavlm-large", (1,), 50)
    with pytest.raises(CentroidsNotFoundError) as info:
        load_tokenizer("wavlm-large-dasb-km1000", {"layers": "1,3,5", "k": 50}, checkpoint=wavlm)
    text = str(info.value)
    assert "layers [3, 5] with K=50" in text
    assert "tokbench fit-kmeans --model wavlm-large --layer 1,3,5 --k 50" in text
    with pytest.raises(CentroidsNotFoundError, match="does not exist"):
        load_tokenizer("wavlm-large-dasb-km1000", {"centroids": str(tmp_path / "nope")})


def test_codes_are_one_codebook_per_layer_and_batch_like_single_items(wavlm):
    from transformers import WavLMModel

    centroids = _fit("wavlm-large", LAYERS, 64)
    tok = load_tokenizer("wavlm-large-dasb-km1000", {"layers": "1,3,5", "k": 64}, checkpoint=wavlm)
    assert isinstance(tok, SSLMultiLayerTokenizer)
    assert len(tok.features.net.encoder.layers) == 5  # blocks after the deepest are not run
    lengths = (24000, 7777, 401, 399)
    items = [_speechlike(n, i) for i, n in enumerate(lengths)]
    batch = Audio.from_list(items, 16000)
    tokens = tok.encode(batch.wav, batch.lengths)
    assert tokens.codes.shape == (4, 3, 74) and tokens.frame_lengths.tolist() == [74, 24, 1, 0]
    # codebook i = nearest centroid of layer LAYERS[i] (hidden_states[L] of the model itself)
    ref = WavLMModel.from_pretrained(wavlm).eval()
    x = items[0]
    xn = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)
    with torch.inference_mode():
        hidden = ref(xn[None], output_hidden_states=True).hidden_states
    for i, layer in enumerate(LAYERS):
        c = torch.from_numpy(centroids[layer])
        expect = torch.cdist(hidden[layer][0], c).argmin(1)
        assert (tokens.codes[0, i] == expect).float().mean() >= BATCH_TOLERANCE
    assert not torch.equal(tokens.codes[0, 0], tokens.codes[0, 2])  # the layers differ
    equal = total = 0
    for i, x in enumerate(items):
        one = tok.encode(x[None], torch.tensor([len(x)]))
        equal += int((one.item(0) == tokens.item(i)).sum())
        total += 3 * int(one.frame_lengths[0])
    assert equal / total >= BATCH_TOLERANCE
    emb = tok.embed(tokens)
    assert emb.shape == (4, 3, 74, 32)
    assert torch.equal(emb[0, 1], torch.from_numpy(centroids[3])[tokens.codes[0, 1]])
    assert not emb[1, :, 24:].any() and not emb[3].any()
    with pytest.raises(ValueError, match="has 3 codebooks"):
        tok.embed(Tokens(tokens.codes[:, :1], tokens.frame_lengths))
    assert tok.meta.options["layers"] == [1, 3, 5] and len(tok.meta.options["centroids_sha256"]) == 3


def test_centroids_of_another_layer_are_refused(wavlm, tmp_path):
    folder = tmp_path / "km"
    for layer in LAYERS:
        save_centroids(folder / f"wavlm-large-l{layer}-km16.npz", np.ones((16, 32), np.float32),
                       {"model": "wavlm-large", "layer": 1, "normalize": True})
    with pytest.raises(CentroidsError, match="fitted on layer 1, not 3"):
        load_tokenizer("wavlm-large-dasb-km1000", {"layers": "1,3,5", "k": 16,
                                                   "centroids": str(folder)}, checkpoint=wavlm)


def test_fit_kmeans_fits_all_layers_in_one_pass_and_the_tokenizer_reads_them(wavlm, tmp_path):
    from tokbench.cli import app

    data = tmp_path / "data"
    data.mkdir()
    for i in range(4):
        sf.write(data / f"u{i}.wav", _speechlike(16000, 10 + i).numpy(), 16000)
    out = tmp_path / "km"
    result = CliRunner().invoke(app, [
        "fit-kmeans", "--model", "wavlm-large", "--layer", "1,3,5", "--k", "8", "--dataset",
        str(data), "--seed", "0", "--checkpoint", wavlm, "--device", "cpu", "--out", str(out),
        "--kmeans-batch-size", "64", "--epochs", "3", "--no-progress"])
    assert result.exit_code == 0, result.output
    files = {layer: load_centroids(out / f"wavlm-large-l{layer}-km8.npz") for layer in LAYERS}
    for layer, c in files.items():
        p = c.provenance
        assert (p["layer"], p["k"], p["fitted_with_layers"]) == (layer, 8, [1, 3, 5])
        assert p["n_frames"] == 4 * 49 and p["data"]["n_utterances"] == 4  # one shared pass
    assert not np.allclose(files[1].array, files[5].array)
    bad = CliRunner().invoke(app, ["fit-kmeans", "--model", "wavlm-large", "--layer", "3,x",
                                   "--k", "8", "--dataset", str(data)])
    assert bad.exit_code != 0 and "distinct layers separated by commas" in bad.output
    tok = load_tokenizer("wavlm-large-dasb-km1000", {"layers": "1,3,5", "k": 8, "centroids": str(out)},
                         checkpoint=wavlm)
    wav = torch.from_numpy(sf.read(data / "u0.wav", dtype="float32")[0])[None]
    codes = tok.encode(wav, torch.tensor([wav.shape[1]])).codes
    assert codes.shape == (1, 3, 49) and int(codes.max()) < 8
    assert tok.meta.options["centroids_sha256"] == [files[layer].checksum() for layer in LAYERS]


def test_tiny_builder_serves_the_dasb_presets_and_bpe_sees_six_codebooks(tiny_checkpoint, tmp_path):
    """The family's tiny checkpoint (real depth 24, one folder per model) and seeded centroids
    serve the registered presets; the bpe task runs on the six-codebook tokens unchanged."""
    from tokbench.results import load_results
    from tokbench.run.runner import run

    folder, checkpoint = tiny_checkpoint(SSLMultiLayerTokenizer)
    resolved = resolve_tokenizer("hubert-large-dasb-km1000")
    overrides = SSLMultiLayerTokenizer.tiny_overrides(folder, resolved.options)
    tok = load_tokenizer("hubert-large-dasb-km1000", overrides, checkpoint=str(checkpoint))
    assert len(tok.features.net.encoder.layers) == 23 and tok.features.spec.arch == "hubert"
    x = _speechlike(16000, 0)
    tokens = tok.encode(x[None], torch.tensor([16000]))
    assert tokens.codes.shape == (1, 6, 49) and tok.frames_for(torch.tensor([16000])).tolist() == [49]
    data = tmp_path / "data"
    data.mkdir()
    for i in range(4):
        sf.write(data / f"u{i}.wav", _speechlike(16000 + 3200 * i, i).numpy(), 16000)
    result = run("wavlm-large-dasb-km1000", "bpe", str(data), out=tmp_path / "results",
                 checkpoint=str(checkpoint), device="cpu", batch_size=4,
                 overrides=[f"{k}={v}" for k, v in SSLMultiLayerTokenizer.tiny_overrides(
                     folder, resolve_tokenizer("wavlm-large-dasb-km1000").options).items()]
                 + ["multipliers=1,2"], log=lambda msg: None)
    assert result.status == "complete", result.reason
    df = load_results(result.path)
    assert set(df["tokenizer"]) == {"wavlm-large-dasb-km1000"}
    lossless = df[df["metric"] == "bpe_lossless"]["value"]
    assert len(lossless) and (lossless == 1).all()
