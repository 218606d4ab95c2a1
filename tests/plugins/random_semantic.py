"""A tiny random "semantic" tokenizer for tests (plug-in: --adapter this_file.py:RandomSemantic).

50 Hz units at 16 kHz like HuBERT k-means units, without weights: per 20 ms frame a log
magnitude spectrum (25 ms Hann window), a fixed random projection, and the nearest of K fixed
random unit vectors (cosine). Neighbouring frames of speech get the same unit often, so the
units repeat the way semantic units do. Each frame only sees its own item's samples (zero-padded
at the end), so batched results equal one-at-a-time results.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tokbench.types import ModelSource, TokenizerBase, TokenizerMeta, Tokens

SAMPLE_RATE = 16_000
HOP = 320  # 50 Hz
WINDOW = 400


@dataclass(frozen=True)
class RandomSemanticOptions:
    units: int = 100
    n_codebooks: int = 1  # not `codebooks`: that name is a bpe task option
    seed: int = 0


class RandomSemantic(TokenizerBase):
    """Random-projection nearest-centroid units at 50 Hz (test only)."""

    name = "random-semantic"
    Options = RandomSemanticOptions

    def __init__(self, options, *, device="cpu", checkpoint=None):
        super().__init__(options, device=device, checkpoint=checkpoint)
        rng = np.random.default_rng(options.seed)
        self.window = np.hanning(WINDOW)
        bins = WINDOW // 2 + 1
        self.proj = rng.standard_normal((options.n_codebooks, bins, 16))
        c = rng.standard_normal((options.n_codebooks, options.units, 16))
        self.centroids = c / np.linalg.norm(c, axis=-1, keepdims=True)

    @classmethod
    def describe(cls, options: RandomSemanticOptions) -> TokenizerMeta:
        return TokenizerMeta(
            name="random-semantic", family="test", kind="semantic", sample_rate=SAMPLE_RATE,
            frame_rate=SAMPLE_RATE / HOP, n_codebooks=options.n_codebooks,
            codebook_sizes=(options.units,) * options.n_codebooks, capabilities=frozenset(),
            source=ModelSource(), options={"units": options.units, "n_codebooks": options.n_codebooks,
                                           "seed": options.seed})

    def _units(self, x: np.ndarray) -> np.ndarray:
        n = len(x) // HOP
        padded = np.concatenate([x, np.zeros(WINDOW, dtype=x.dtype)])
        idx = np.arange(n)[:, None] * HOP + np.arange(WINDOW)[None, :]
        spec = np.log(np.abs(np.fft.rfft(padded[idx] * self.window, axis=-1)) + 1e-5)
        spec -= spec.mean(axis=-1, keepdims=True)
        out = np.zeros((self.options.n_codebooks, n), dtype=np.int64)
        for q in range(self.options.n_codebooks):
            z = spec @ self.proj[q]
            z /= np.linalg.norm(z, axis=-1, keepdims=True) + 1e-9
            out[q] = np.argmax(z @ self.centroids[q].T, axis=-1)
        return out

    def encode(self, wav: torch.Tensor, lengths: torch.Tensor) -> Tokens:
        self.check_input(wav, lengths)
        items = [self._units(wav[b, : int(lengths[b])].double().cpu().numpy())
                 for b in range(wav.shape[0])]
        return Tokens.from_list([torch.from_numpy(u) for u in items])
