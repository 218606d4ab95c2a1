"""k-means fitting, the centroid file format, the GSLM converter and `tokbench fit-kmeans`."""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from tokbench.adapters.ssl.gslm import (
    GSLM_KMEANS_URLS,
    UnsafePickleError,
    convert_gslm_kmeans,
    read_kmeans_centers,
)
from tokbench.adapters.ssl.kmeans import (
    CentroidsError,
    assign,
    centroids_cache_path,
    fit_kmeans,
    kmeans_plusplus,
    load_centroids,
    save_centroids,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _blobs(seed: int = 1, k: int = 8, n: int = 4000, dim: int = 16, spread: float = 10.0):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(k, dim, generator=g) * spread
    labels = torch.randint(k, (n,), generator=g)
    return means[labels] + 0.5 * torch.randn(n, dim, generator=g), labels, means


def test_recovers_well_separated_clusters():
    x, labels, means = _blobs()
    result = fit_kmeans(x, 8, seed=3, batch_size=500)
    dist = torch.cdist(means, result.centroids)
    match = dist.argmin(1)
    assert sorted(match.tolist()) == list(range(8))  # one centroid per true cluster
    assert float(dist.min(1).values.max()) < 0.2
    found, _ = assign(x, result.centroids)
    assert torch.equal(match[labels], found)  # every point lands in its own cluster
    # inertia: 16 dimensions of variance 0.25 per point
    assert result.inertia_per_frame == pytest.approx(4.0, rel=0.1)
    assert result.converged and result.n_frames == 4000 and result.frames_per_second > 0


def test_fit_is_reproducible_with_a_seed():
    x, _, _ = _blobs(seed=2, k=20, dim=8, spread=2.0)  # overlapping: the seed matters
    a = fit_kmeans(x, 20, seed=7, batch_size=256, max_epochs=3)
    b = fit_kmeans(x, 20, seed=7, batch_size=256, max_epochs=3)
    c = fit_kmeans(x, 20, seed=8, batch_size=256, max_epochs=3)
    assert torch.equal(a.centroids, b.centroids) and a.inertia == b.inertia
    assert not torch.equal(a.centroids, c.centroids)


def test_kmeans_plusplus_picks_distinct_data_points():
    x, _, means = _blobs(seed=4, k=5, n=500, dim=4, spread=20.0)
    centres = kmeans_plusplus(x, 5, torch.Generator().manual_seed(0))
    assert all(bool((x == c).all(1).any()) for c in centres)
    assert sorted(torch.cdist(means, centres).argmin(1).tolist()) == list(range(5))


def test_assign_breaks_ties_to_the_lowest_index():
    c = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 3.0]])
    labels, d2 = assign(torch.tensor([[0.0, 0.0], [0.9, 0.1], [0.0, 2.0]]), c)
    assert labels.tolist() == [0, 0, 2]
    assert d2.tolist() == pytest.approx([1.0, 0.02, 1.0], abs=1e-6)


def test_centroid_file_round_trip_and_rejections(tmp_path):
    array = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    path = save_centroids(tmp_path / "c.npz", array, {"model": "m", "layer": 2, "seed": 1})
    loaded = load_centroids(path)
    assert np.array_equal(loaded.array, array) and loaded.k == 5 and loaded.dim == 3
    assert loaded.provenance["format"] == "tokbench-kmeans/1" and loaded.provenance["layer"] == 2
    assert loaded.checksum() == load_centroids(path).checksum()
    with pytest.raises(CentroidsError, match="NaN"):
        save_centroids(tmp_path / "bad.npz", np.full((2, 2), np.nan), {})
    np.savez(tmp_path / "obj.npz", centroids=np.array([object()], dtype=object))
    with pytest.raises(CentroidsError, match="not a tokbench centroid file"):
        load_centroids(tmp_path / "obj.npz")  # object arrays would need pickle: refused
    np.savez(tmp_path / "foreign.npz", centroids=array, provenance=np.array("{}"))
    with pytest.raises(CentroidsError, match="unknown centroid format"):
        load_centroids(tmp_path / "foreign.npz")


def test_gslm_converter_reads_only_the_cluster_centres(tmp_path):
    import joblib
    from sklearn.cluster import MiniBatchKMeans

    x = np.random.default_rng(0).standard_normal((400, 6))
    km = MiniBatchKMeans(n_clusters=50, random_state=0, n_init=1, batch_size=64).fit(x)
    src = tmp_path / "km.bin"
    with src.open("wb") as fh:  # as GSLM's cluster_kmeans.py saves it
        joblib.dump(km, fh)
    assert np.array_equal(read_kmeans_centers(src), km.cluster_centers_.astype(np.float32))
    out = convert_gslm_kmeans(src, 50)
    assert out == centroids_cache_path("hubert-base", 6, 50)
    loaded = load_centroids(out)
    assert np.array_equal(loaded.array, km.cluster_centers_.astype(np.float32))
    p = loaded.provenance
    assert (p["model"], p["layer"], p["k"], p["normalize"], p["source"]) == ("hubert-base", 6, 50, False, "gslm")
    assert p["url"] == GSLM_KMEANS_URLS[50] and len(p["source_sha256"]) == 64
    with pytest.raises(CentroidsError, match="has 50 centres, not K=100"):
        convert_gslm_kmeans(src, 100, tmp_path / "x.npz")


class _Boom:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_gslm_converter_refuses_foreign_pickles(tmp_path):
    evil = tmp_path / "evil.bin"
    evil.write_bytes(pickle.dumps({"cluster_centers_": _Boom()}, protocol=4))
    with pytest.raises(UnsafePickleError, match=r"refusing to unpickle (posix|os)\.system"):
        read_kmeans_centers(evil)
    import joblib

    buf = io.BytesIO()
    joblib.dump({"x": np.array([1, "a"], dtype=object)}, buf)  # joblib would unpickle it freely
    (tmp_path / "obj.bin").write_bytes(buf.getvalue())
    with pytest.raises(UnsafePickleError, match="array of Python objects"):
        read_kmeans_centers(tmp_path / "obj.bin")


def test_fit_kmeans_cli_end_to_end(tmp_path):
    """`tokbench fit-kmeans` on a tiny HuBERT checkpoint; the adapter then finds the centroids."""
    from transformers import HubertConfig, HubertModel

    from tokbench.cli import app
    from tokbench.resolve import load_tokenizer

    torch.manual_seed(0)
    ckpt = tmp_path / "ckpt"
    HubertModel(HubertConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                             intermediate_size=64, conv_dim=(32,) * 7, num_conv_pos_embeddings=128,
                             num_conv_pos_embedding_groups=16)).save_pretrained(ckpt)
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        t = np.arange(16000) / 16000
        wav = 0.3 * np.sin(2 * np.pi * (120 + 40 * i) * t) + 0.02 * rng.standard_normal(16000)
        sf.write(data / f"u{i}.wav", wav.astype(np.float32), 16000)
    args = ["fit-kmeans", "--model", "hubert-base", "--layer", "2", "--k", "8", "--dataset",
            str(data), "--hours", str(4.5 / 3600), "--seed", "0", "--checkpoint", str(ckpt),
            "--device", "cpu", "--kmeans-batch-size", "64", "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    path = centroids_cache_path("hubert-base", 2, 8)
    assert f"saved {path}" in result.output.replace("\n", "")
    c = load_centroids(path)
    p = c.provenance
    assert c.array.shape == (8, 32)
    assert (p["model"], p["layer"], p["k"], p["seed"], p["normalize"]) == ("hubert-base", 2, 8, 0, False)
    assert p["normalize_from"] == "pre-training default" and p["init"] == "greedy k-means++"
    assert p["data"]["hours_used"] * 3600 == pytest.approx(4.5)  # 4 whole files + half of one
    assert p["data"]["n_utterances"] == 5 and p["n_frames"] == 4 * 49 + 24
    assert p["inertia"] > 0 and p["fit"]["frames_per_second"] > 0
    assert p["checkpoint"] == str(ckpt) and json.dumps(p)  # JSON-clean provenance
    again = CliRunner().invoke(app, args + ["--out", str(tmp_path / "again.npz")])
    assert again.exit_code == 0, again.output
    assert np.array_equal(load_centroids(tmp_path / "again.npz").array, c.array)  # seeded

    tok = load_tokenizer("hubert-base-l9-km500", {"layer": 2, "k": 8}, checkpoint=str(ckpt))
    wav = torch.from_numpy(sf.read(data / "u0.wav", dtype="float32")[0])[None]
    tokens = tok.encode(wav, torch.tensor([wav.shape[1]]))
    assert tokens.codes.shape == (1, 1, 49) and int(tokens.codes.max()) < 8
    assert tok.meta.options["centroids_sha256"] == c.checksum()
