"""Speaker similarity with WavLM x-vectors (``spk_sim_wavlm``), as DASB and DATES report it.

``microsoft/wavlm-base-plus-sv`` through transformers ``WavLMForXVector``: the 16 kHz signal goes
through the model's own feature extractor (``Wav2Vec2FeatureExtractor`` from the repository's
``preprocessor_config.json``), the x-vector ``embeddings`` are L2-normalised and
``spk_sim_wavlm`` is their cosine (output vs reference). Resemblyzer's ``secs`` keeps its
meaning; this is a different model and a different name.

The model loads once per process per (model, device) and runs in the calling process on the
run's device (the GPU when there is one; each torchrun rank on its own), one utterance at a
time: x-vectors of padded batches are not equal to those of single utterances. Without the
weights (offline, not cached) the metric is null with the reason; ``checkpoint`` takes a local
folder written by ``save_pretrained`` (model + feature extractor) instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tokbench.io.hub import ModelNotAvailableError
from tokbench.metrics.base import NotComputable
from tokbench.metrics.inputs import as_signal, require_sound
from tokbench.metrics.kit import MetricSpec, ModelContext, Needs, declare
from tokbench.metrics.lazy_model import LazyModel
from tokbench.metrics.reference_features import check_vector, package_version, register_feature
from tokbench.protocol import SCORING_SAMPLE_RATE

# The commit as two independent public projects pin it (not verifiable from this machine: no Hub).
WAVLM_SV: dict[str, Any] = {"model": "microsoft/wavlm-base-plus-sv",
            "revision": "feb593a6c23c1cc3d9510425c29b0a14d2b07b1e",
            "class": "transformers WavLMForXVector", "similarity": "cosine of x-vector embeddings",
            "input": "16 kHz, feature extractor normalisation"}

REPO_ID: str = WAVLM_SV["model"]
REVISION: str = WAVLM_SV["revision"]
MIN_SECONDS = 0.5  # shorter signals give x-vectors of a few frames: not a speaker embedding

_MODELS: dict[tuple[str, str], tuple[Any, Any, str]] = {}


def load(device: str = "cpu", checkpoint: str | Path | None = None) -> tuple[Any, Any, str]:
    """(model, feature extractor, resolved revision) of this process, loaded on first use.
    Raises :class:`ModelNotAvailableError` offline without cached weights."""
    key = (str(checkpoint or REPO_ID), str(device))
    if key not in _MODELS:
        from transformers import Wav2Vec2FeatureExtractor, WavLMForXVector

        from tokbench.io.hub import load_hf_model, load_hf_processor

        model, source = load_hf_model(WavLMForXVector, REPO_ID, REVISION, checkpoint, device)
        fx = load_hf_processor(Wav2Vec2FeatureExtractor, REPO_ID, REVISION, checkpoint,
                               "the feature extractor")
        _MODELS[key] = (model, fx, source.resolved or str(source.revision))
    return _MODELS[key]


class WavLMSpeaker(LazyModel):
    """x-vector embeddings for ``spk_sim_wavlm``; degrades to null-with-reason without weights."""

    label = "WavLM speaker model"
    unavailable = (ModelNotAvailableError,)

    def _fetch(self) -> tuple[Any, Any, str]:
        return load(self.device, self.checkpoint)

    @property
    def revision(self) -> str | None:
        self._load()
        return self.loaded[2] if self.available else None

    @property
    def weights(self) -> str | None:
        """The exact weights (resolved revision): part of the reference embedding's cache key."""
        return self.revision

    def embed(self, wav16: np.ndarray, role: str = "output") -> np.ndarray:
        """The L2-normalised x-vector (float32) of a 16 kHz signal; NotComputable for silence,
        a too-short signal, or a non-finite result."""
        import torch

        x = as_signal(wav16, role, np.float32)
        require_sound(x, role)
        if len(x) < MIN_SECONDS * SCORING_SAMPLE_RATE:
            raise NotComputable(f"the {role} lasts {len(x) / SCORING_SAMPLE_RATE:.2f} s; WavLM "
                                f"speaker similarity needs at least {MIN_SECONDS} s")
        if not self.available:
            raise NotComputable(self.reason)
        model, fx, _ = self.loaded
        inputs = fx(x, sampling_rate=SCORING_SAMPLE_RATE, return_tensors="pt")
        inputs = {k: v.to(model.device) for k, v in inputs.items()}
        with torch.inference_mode():
            emb = model(**inputs).embeddings[0].float()
        emb = torch.nn.functional.normalize(emb, dim=-1).cpu().numpy()
        if not np.all(np.isfinite(emb)):
            raise NotComputable(f"the WavLM speaker embedding of the {role} is not finite")
        return emb.astype(np.float32)


# WavLM x-vector of the reference; the model revision is added by the caller
register_feature("wavlm_sv", lambda: {**WAVLM_SV, "transformers": package_version("transformers")},
                 check_vector)


def _assets(needed_by: str) -> list[Any]:
    from tokbench.suites.assets import hub_asset

    return [hub_asset("metric model", f"{needed_by} (spk_sim_wavlm)", REPO_ID, REVISION)]


def _scorer(ctx: ModelContext) -> Any:
    from tokbench.metrics.model_scoring import Similarity

    return Similarity("spk_sim_wavlm", "wavlm_sv", WavLMSpeaker(ctx.device, ctx.checkpoint))


declare(
    MetricSpec("spk_sim_wavlm", "cosine of WavLM x-vectors (microsoft/wavlm-base-plus-sv) of "
               "output and input", "higher", "cosine", lo=0.0, hi=1.0, valid_lo=-1.0,
               groups=("speaker",)),
    where="model", compute=_scorer,
    needs=Needs(reference=True, speech=True, sample_rate=SCORING_SAMPLE_RATE),
    protocol={"spk_sim_wavlm": WAVLM_SV}, packages=("transformers",), weights=_assets,
    citation="Chen et al., IEEE JSTSP 2022 (WavLM); the DASB and DATES speaker similarity",
    implementation="transformers WavLMForXVector with the repository's feature extractor",
    license="microsoft/wavlm-base-plus-sv: the model card's licence",
)
