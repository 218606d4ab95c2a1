"""Tiny random kNN-VC parts for offline tests (tiny models keep the real rates and codebooks).

True to the real ones where it matters: 16 kHz, WavLM's conv stack (320-sample hop, 400-sample
receptive field, layer-norm convolutions, pre-LN blocks, 128-tap positional convolution), the
released HiFi-GAN's time structure (upsampling 10 x 8 x 2 x 2 = 320, its kernels and residual
blocks), and the checkpoint layout of the release (``{"generator": state_dict}`` with legacy
weight-norm parameters). Only widths and depths shrink: the vocoder takes the tiny WavLM's width.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from tokbench.adapters.ssl.kmeans import save_centroids
from tokbench.adapters.ssl.knn_vc import HiFiGANConfig, HiFiGANGenerator
from tokbench.adapters.ssl.units import TINY_WIDTH, build_tiny_model

DIM = TINY_WIDTH  # the tiny models' width (the vocoder takes it)
LAYERS = 6  # transformer blocks of the tiny models


def save_tiny_wavlm(folder: Path, seed: int = 0) -> str:
    return str(build_tiny_model("wavlm-large", folder, seed, num_layers=LAYERS))


def save_tiny_hubert(folder: Path, seed: int = 1) -> str:
    return str(build_tiny_model("hubert-base", folder, seed, num_layers=LAYERS))


def tiny_generator(seed: int = 0) -> HiFiGANGenerator:
    torch.manual_seed(seed)
    return HiFiGANGenerator(HiFiGANConfig(input_dim=DIM, hifi_dim=16, upsample_initial_channel=16)).eval()


def with_legacy_weight_norm(model: HiFiGANGenerator) -> HiFiGANGenerator:
    """Wrap every convolution in ``torch.nn.utils.weight_norm`` (as the released training code
    does), so that the state dict holds ``weight_g``/``weight_v`` like the release's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for m in model.modules():
            if isinstance(m, torch.nn.Conv1d | torch.nn.ConvTranspose1d):
                torch.nn.utils.weight_norm(m)
    return model


def save_official_layout(path: Path, seed: int = 0) -> tuple[Path, HiFiGANGenerator]:
    """A random generator saved as the release does; returns the path and the weight-normed
    reference model (whose outputs a correct loader must reproduce)."""
    ref = with_legacy_weight_norm(tiny_generator(seed))
    with torch.no_grad():  # make the gains differ from ||v|| so that folding matters
        for name, p in ref.named_parameters():
            if name.endswith("weight_g"):
                p.mul_(1.5)
    torch.save({"generator": ref.state_dict(), "steps": 0}, path)
    return path, ref


def save_tiny_centroids(path: Path, model: str, layer: int, k: int, normalize: bool,
                        seed: int = 0) -> str:
    """Random centroids for a tiny model, saved at ``path`` (passed as ``--set centroids=``)."""
    array = np.random.default_rng(seed).standard_normal((k, DIM)).astype(np.float32)
    save_centroids(path, array, {"model": model, "layer": layer, "normalize": normalize,
                                 "source": "test"})
    return str(path)
