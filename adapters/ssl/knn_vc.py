"""kNN-VC (Baas, van Niekerk and Kamper, Interspeech 2023) as the prompt-driven vocoder of
semantic tokens.

kNN-VC is training-free apart from its vocoder: WavLM-Large layer-6 features of the prompt form a
*matching set*; every frame to decode is replaced by the mean of its ``k = 4`` nearest matching
frames (cosine distance); the "prematched" HiFi-GAN released with kNN-VC turns the features into
16 kHz audio (320 samples per frame). It lives in ``adapters/`` because a vocoder is part of a
tokenizer: :class:`~tokbench.adapters.ssl.units.SSLKMeansTokenizer` builds one for
``--set vocoder=knn-vc``; nothing here is specific to one tokenizer.

**What is decoded.** A unit token has no WavLM feature of its own. When the tokenizer quantises
WavLM-Large layer 6 itself (``wavlm-large`` and ``layer=6``) the frame to decode is the token's
centroid. Otherwise (HuBERT units, other layers) the prompt is labelled with the tokenizer's own
units, and the frame to decode is the mean matching-set feature of the prompt frames carrying
the same unit; a unit absent from the prompt borrows the frames of the present unit whose
centroid is nearest to its own (in the tokenizer's feature space), and the number of such frames
is counted. Both then go through the same k-NN step. (Centroids fitted on normalised input, as
the ``wavlm-large-l6-km1000`` preset resolves by default, are used as they are: WavLM-Large's
convolutions have no bias and are layer-normalised, so zero-mean unit-variance input changes its
features only through the DC offset and in near-silent frames, where the layer-norm epsilon
matters. ``--set normalize=false`` with centroids fitted that way removes even that.)

**Faithfulness to the release.** The vocoder was trained on features of the original WavLM-Large
checkpoint: raw waveform (no input normalisation), padded with zeros to a multiple of 320 samples
(``prematch_dataset.py``: always 1 to 320 samples), output of transformer block 6. The features
here come from transformers' ``WavLMModel`` (``microsoft/wavlm-large``) through
:class:`~tokbench.adapters.ssl.features.SSLFeatures` with ``normalize=False`` on inputs padded the
same way; ``scripts/check_knn_vc_features.py`` compares them with the official implementation
where both sets of weights can be downloaded. The extractor is recorded with every run.

**Prompt processing** (kNN-VC trims silence and normalises loudness with torchaudio, which cannot
be imported here): each prompt utterance's leading and trailing silence is trimmed with
``webrtcvad`` (aggressiveness :data:`VAD_MODE`, 30 ms frames; the kept span runs from the first to
the last run of at least :data:`VAD_MIN_RUN` voiced frames, so clicks neither start nor end it;
an utterance with no such run is kept whole); the output is normalised to :data:`TARGET_LUFS`
integrated loudness (ITU-R BS.1770, ``pyloudnorm``), as kNN-VC's ``match(tgt_loudness_db=-16)``;
output too short to measure (< 0.4 s) or silent keeps its level. Decoding is per item (the
generator never sees another item's padding) and gives ``320 x frames`` samples, or exactly
``Tokens.sample_lengths`` when encode recorded them (the last partial frame is zero-padded).

**Checkpoint.** The official generator checkpoint (``{"generator": state_dict}``, weight-norm
parameters ``weight_g``/``weight_v``) is read with ``torch.load(weights_only=True)`` from
``--set vocoder_checkpoint=PATH`` or from the tokbench cache, where it is downloaded from the
release URL on first use. The release publishes no checksum; the SHA-256 of the file used is
recorded with every run.
"""

from __future__ import annotations

import hashlib
import math
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tokbench.io.files import file_digest
from tokbench.types import Audio, Tokens

SAMPLE_RATE = 16_000
HOP = 320  # samples per WavLM frame and per vocoder input frame
FEATURE_MODEL = "wavlm-large"
FEATURE_LAYER = 6  # output of transformer block 6
TOPK = 4
TARGET_LUFS = -16.0
VAD_MODE = 3
VAD_FRAME = 480  # 30 ms at 16 kHz
VAD_MIN_RUN = 3  # voiced frames in a row that count as speech (90 ms)
LRELU_SLOPE = 0.1

RELEASE = "https://github.com/bshall/knn-vc/releases/download/v0.1/"
PREMATCHED_URL = RELEASE + "prematch_g_02500000.pt"  # hubconf.py: hifigan_wavlm(prematched=True)
CITATION = ("M. Baas, B. van Niekerk, H. Kamper. Voice Conversion With Just Nearest Neighbors. "
            "Interspeech 2023")
LICENSE = "MIT (github.com/bshall/knn-vc)"


class VocoderUnavailableError(FileNotFoundError):
    """The vocoder checkpoint is neither given, cached nor downloadable."""


# --- HiFi-GAN generator (the architecture of knn-vc's hifigan/models.py) ---------------------

@dataclass(frozen=True)
class HiFiGANConfig:
    """The released ``config_v1_wavlm.json``; widths may shrink (tests), the time structure not."""

    input_dim: int = 1024  # "hubert_dim": WavLM-Large width
    hifi_dim: int = 512
    upsample_initial_channel: int = 512
    upsample_rates: tuple[int, ...] = (10, 8, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (20, 16, 4, 4)
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    sampling_rate: int = SAMPLE_RATE

    @property
    def hop(self) -> int:
        return math.prod(self.upsample_rates)


def _padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class ResBlock(nn.Module):
    """HiFi-GAN residual block type 1 (three dilated convolutions, each followed by a plain one)."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, 1, dilation=d, padding=_padding(kernel, d))
            for d in dilations)
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, 1, dilation=1, padding=_padding(kernel))
            for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class HiFiGANGenerator(nn.Module):
    """Features ``[B, F, D]`` -> waveform ``[B, 1, F * hop]`` in [-1, 1]. Parameter names follow
    the release, so its state dict (weight norm folded) loads with ``strict=True``."""

    def __init__(self, config: HiFiGANConfig = HiFiGANConfig()):
        super().__init__()
        self.config = config
        c = config
        self.lin_pre = nn.Linear(c.input_dim, c.hifi_dim)
        self.conv_pre = nn.Conv1d(c.hifi_dim, c.upsample_initial_channel, 7, 1, padding=3)
        self.ups = nn.ModuleList(
            nn.ConvTranspose1d(c.upsample_initial_channel // 2**i,
                               c.upsample_initial_channel // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(c.upsample_rates, c.upsample_kernel_sizes, strict=True)))
        self.resblocks = nn.ModuleList()
        ch = c.upsample_initial_channel
        for i in range(len(self.ups)):
            ch = c.upsample_initial_channel // 2 ** (i + 1)
            for k, d in zip(c.resblock_kernel_sizes, c.resblock_dilation_sizes, strict=True):
                self.resblocks.append(ResBlock(ch, k, tuple(d)))
        self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(self.lin_pre(x).transpose(1, 2))
        n = len(self.config.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            x = sum(self.resblocks[i * n + j](x) for j in range(n)) / n
        # The release ends with torch's default slope (0.01), not LRELU_SLOPE.
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace weight-norm pairs by plain weights: ``w = g * v / ||v||`` with the norm over all
    dimensions but the first (what ``remove_weight_norm`` computes). Handles the legacy
    ``weight_g``/``weight_v`` names of the release and the ``parametrizations`` names of newer
    torch; other entries pass through."""
    out: dict[str, torch.Tensor] = {}
    pairs = {"weight_g": "weight_v", "parametrizations.weight.original0": "parametrizations.weight.original1"}
    for key, value in state.items():
        for g_name, v_name in pairs.items():
            if key.endswith(v_name):
                break
            if key.endswith(g_name):
                prefix = key[: -len(g_name)]
                v = state[prefix + v_name].to(torch.float32)
                norm = v.reshape(v.shape[0], -1).norm(dim=1).reshape(-1, *([1] * (v.dim() - 1)))
                out[prefix + "weight"] = v * (value.to(torch.float32) / norm)
                break
        else:
            out[key] = value
    return out


def config_from_state(state: dict[str, torch.Tensor], where: str) -> HiFiGANConfig:
    """The generator's widths from a (folded) state dict; its time structure must be the
    release's (upsampling rates and kernels, residual kernels), since no file states them."""
    official = HiFiGANConfig()
    try:
        hifi_dim, input_dim = state["lin_pre.weight"].shape
        initial = state["conv_pre.weight"].shape[0]
        kernels = tuple(int(state[f"ups.{i}.weight"].shape[2]) for i in range(len(official.upsample_rates)))
        res = tuple(int(state[f"resblocks.{j}.convs1.0.weight"].shape[2])
                    for j in range(len(official.resblock_kernel_sizes)))
    except KeyError as exc:
        raise ValueError(f"{where} is not a kNN-VC HiFi-GAN generator: no {exc.args[0]!r}") from None
    if f"ups.{len(official.upsample_rates)}.weight" in state:
        raise ValueError(f"{where}: more upsampling layers than the released generator")
    if kernels != official.upsample_kernel_sizes or res != official.resblock_kernel_sizes:
        raise ValueError(f"{where}: upsampling kernels {kernels} / residual kernels {res} differ "
                         f"from the released {official.upsample_kernel_sizes} / "
                         f"{official.resblock_kernel_sizes}")
    return HiFiGANConfig(input_dim=int(input_dim), hifi_dim=int(hifi_dim),
                         upsample_initial_channel=int(initial))


def load_generator(path: str | Path, device: str = "cpu") -> tuple[HiFiGANGenerator, dict[str, Any]]:
    """The generator from a checkpoint in the release's layout (``{"generator": state_dict}``),
    read with ``weights_only=True``. Returns the model (eval mode) and its provenance."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise VocoderUnavailableError(f"vocoder checkpoint {path} (--set vocoder_checkpoint=...) "
                                      "does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for non-checkpoint files
        raise ValueError(f"{path} is not a readable torch checkpoint ({type(exc).__name__}: "
                         f"{exc})") from None
    if not isinstance(ckpt, dict) or "generator" not in ckpt:
        raise ValueError(f"{path} is not in the kNN-VC release layout: expected a dict with the "
                         "key 'generator' (e.g. prematch_g_02500000.pt)")
    state = fold_weight_norm(dict(ckpt["generator"]))
    config = config_from_state(state, str(path))
    model = HiFiGANGenerator(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: the generator weights do not fit the kNN-VC HiFi-GAN ({exc})") from None
    info = {"path": str(path.resolve()), "sha256": file_digest(path), "config": asdict(config)}
    return model.eval().to(device), info


def checkpoint_cache_path(url: str = PREMATCHED_URL) -> Path:
    from tokbench.io.cache import cache_root

    return cache_root() / "vocoders" / "knn-vc" / url.rsplit("/", 1)[-1]


def fetch_checkpoint(url: str = PREMATCHED_URL,
                     opener: Callable[..., Any] = urllib.request.urlopen) -> Path:
    """The released checkpoint in the tokbench cache, downloaded on first use."""
    from tokbench.io.download import DownloadError, download

    dest = checkpoint_cache_path(url)
    if dest.is_file():
        return dest
    try:
        return download(url, dest, opener=opener)
    except DownloadError as exc:
        raise VocoderUnavailableError(
            f"the kNN-VC vocoder checkpoint is not cached and could not be downloaded: {exc}; "
            f"or pass --set vocoder_checkpoint=PATH (a local copy of {url})") from None


# --- prompt processing -----------------------------------------------------------------------

def voiced_span(wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[int, int]:
    """``(start, end)`` samples of ``wav`` without leading and trailing silence (webrtcvad, see
    the module docstring); the whole signal when no speech run is found."""
    import webrtcvad

    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"silence trimming runs at {SAMPLE_RATE} Hz, got {sample_rate}")
    n = len(wav) // VAD_FRAME
    if n == 0:
        return 0, len(wav)
    pcm = (np.clip(np.asarray(wav[: n * VAD_FRAME], np.float64), -1.0, 1.0) * 32767).astype("<i2")
    vad = webrtcvad.Vad(VAD_MODE)
    voiced = np.array([vad.is_speech(pcm[i * VAD_FRAME:(i + 1) * VAD_FRAME].tobytes(), sample_rate)
                       for i in range(n)], dtype=bool)
    # frames that belong to a voiced run of at least VAD_MIN_RUN frames
    runs = np.convolve(voiced.astype(int), np.ones(VAD_MIN_RUN, int), mode="valid") == VAD_MIN_RUN
    starts = np.flatnonzero(runs)
    if len(starts) == 0:
        return 0, len(wav)
    first, last = int(starts[0]), int(starts[-1]) + VAD_MIN_RUN
    end = len(wav) if last == n else last * VAD_FRAME
    return first * VAD_FRAME, end


def pad_to_hop(wav: torch.Tensor) -> torch.Tensor:
    """Zero-pad to the next multiple of 320 samples, always adding 1 to 320 (as the features the
    released vocoder was trained on)."""
    return F.pad(wav, (0, HOP - wav.shape[-1] % HOP))


def normalize_loudness(wav: np.ndarray, sample_rate: int = SAMPLE_RATE,
                       target: float = TARGET_LUFS) -> tuple[np.ndarray, float | None]:
    """Scale to ``target`` LUFS integrated loudness; returns the signal and the gain in dB
    (None, signal unchanged, when it is too short or silent to measure)."""
    import pyloudnorm

    meter = pyloudnorm.Meter(sample_rate)
    if len(wav) < int(meter.block_size * sample_rate) + 1:
        return wav, None
    loudness = meter.integrated_loudness(np.asarray(wav, np.float64))
    if not np.isfinite(loudness):
        return wav, None
    gain = target - loudness
    return (wav * 10.0 ** (gain / 20.0)).astype(np.float32), float(gain)


# --- matching --------------------------------------------------------------------------------

def knn_average(query: torch.Tensor, matching: torch.Tensor, k: int = TOPK) -> torch.Tensor:
    """Each row of ``query [F, D]`` replaced by the mean of its ``k`` nearest rows of
    ``matching [N, D]`` by cosine distance (``k`` is capped at N)."""
    if matching.shape[0] == 0:
        raise ValueError("the matching set is empty: the prompt gave no feature frames")
    if query.shape[0] == 0:
        return query.new_zeros(0, matching.shape[1])
    q = F.normalize(query.to(torch.float32), dim=-1)
    m = F.normalize(matching.to(torch.float32), dim=-1)
    idx = (q @ m.T).topk(min(k, matching.shape[0]), dim=-1).indices  # largest cosine similarity
    return matching.to(torch.float32)[idx].mean(dim=1)


def unit_queries(codes: torch.Tensor, prompt_units: torch.Tensor, prompt_feats: torch.Tensor,
                 centroids: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Frames to decode for unit tokens outside the matching set's feature space (module
    docstring): for each code, the mean prompt feature of the frames carrying it, or, if the
    prompt never carries it, those of the present unit with the nearest centroid. Returns the
    queries ``[F, D]`` and the number of frames that needed that fallback."""
    k = centroids.shape[0]
    units = prompt_units.to(torch.long)
    if units.numel() == 0:
        raise ValueError("the prompt gave no frames to label with units")
    sums = torch.zeros(k, prompt_feats.shape[1], dtype=torch.float32, device=prompt_feats.device)
    sums.index_add_(0, units, prompt_feats.to(torch.float32))
    counts = torch.bincount(units, minlength=k)
    present = counts > 0
    means = sums / counts.clamp_min(1)[:, None]
    c = centroids.to(torch.float32)
    dist = torch.cdist(c, c[present])  # [K, n_present]
    nearest = torch.nonzero(present).flatten()[dist.argmin(dim=1)]
    source = torch.where(present, torch.arange(k, device=present.device), nearest)
    codes = codes.to(torch.long)
    fallback = int((~present[codes]).sum())
    return means[source[codes]], fallback


def compare_features(ours: torch.Tensor, official: torch.Tensor, *, min_cosine: float = 0.999,
                     max_rel_error: float = 1e-2) -> dict[str, Any]:
    """How closely two ``[F, D]`` feature sequences of one utterance agree (the check of the
    transformers extractor against the official WavLM, ``scripts/check_knn_vc_features.py``):
    frame counts, per-frame cosine, relative L2 error, and whether all are within bounds."""
    n = min(ours.shape[0], official.shape[0])
    a, b = ours[:n].double(), official[:n].double()
    cos = F.cosine_similarity(a, b, dim=-1) if n else a.new_ones(1)
    rel = float((a - b).norm() / b.norm().clamp_min(1e-12)) if n else 0.0
    out = {"frames": n, "frame_mismatch": int(ours.shape[0] - official.shape[0]),
           "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()), "rel_error": rel,
           "max_abs_error": float((a - b).abs().max()) if n else 0.0}
    out["ok"] = (out["frame_mismatch"] == 0 and n > 0 and out["min_cosine"] >= min_cosine
                 and rel <= max_rel_error)
    return out


# --- the vocoder -----------------------------------------------------------------------------

class KnnVC:
    """Matching sets of prompts and k-NN conversion + vocoding of feature sequences.

    ``features`` is a WavLM-Large layer-6 extractor on raw input
    (:class:`~tokbench.adapters.ssl.features.SSLFeatures` with ``normalize=False``). Matching-set
    features of each prompt utterance are kept in a bounded cache keyed by its samples' hash, so
    a speaker's prompt is analysed once however many sources it serves.
    """

    def __init__(self, features: Any, generator: HiFiGANGenerator, generator_info: dict[str, Any],
                 *, k: int = TOPK, device: str = "cpu", cache_frames: int = 200_000):
        if features.dim != generator.config.input_dim:
            raise ValueError(f"the vocoder takes {generator.config.input_dim}-d features but the "
                             f"feature model gives {features.dim}-d")
        if features.normalize:
            raise ValueError("kNN-VC features come from the raw waveform: build the extractor "
                             "with normalize=False")
        self.features = features
        self.generator = generator.to(device).eval()
        self.generator_info = generator_info
        self.k = k
        self.device = device
        self.cache_frames = cache_frames
        self._cache: OrderedDict[str, tuple[torch.Tensor, Any]] = OrderedDict()
        self._cached_frames = 0

    @classmethod
    def load(cls, *, checkpoint: str | None = None, features_checkpoint: str | None = None,
             revision: str | None = None, device: str = "cpu", features: Any = None) -> KnnVC:
        """The released vocoder (``checkpoint`` or the cached download) with WavLM-Large layer-6
        features (``features_checkpoint``: a local folder; else the Hub at the pinned revision;
        or ``features``, an extractor already loaded, e.g. the tokenizer's own)."""
        from tokbench.adapters.ssl.features import SSLFeatures

        path = Path(checkpoint) if checkpoint else fetch_checkpoint()
        generator, info = load_generator(path, device)
        info["url"] = None if checkpoint else PREMATCHED_URL
        if features is None:
            features = SSLFeatures(FEATURE_MODEL, FEATURE_LAYER, normalize=False,
                                   revision=revision, device=device, checkpoint=features_checkpoint)
        elif (features.model_name, features.layer) != (FEATURE_MODEL, FEATURE_LAYER):
            raise ValueError(f"kNN-VC needs {FEATURE_MODEL} layer {FEATURE_LAYER} features, got "
                             f"{features.model_name} layer {features.layer}")
        return cls(features, generator, info, device=device)

    def describe(self) -> dict[str, Any]:
        """Provenance recorded in the tokenizer's meta options."""
        f = self.features
        return {
            "vocoder_checkpoint": {k: self.generator_info.get(k) for k in ("url", "path", "sha256")},
            "vocoder_features": {
                "extractor": "transformers WavLMModel", "repo_id": f.source.repo_id,
                "revision": f.source.revision, "resolved": f.source.resolved,
                "checkpoint": f.source.local_path, "layer": FEATURE_LAYER,
                "input": "raw waveform zero-padded by 1-320 samples to a multiple of 320"},
            "vocoder_k": self.k, "vocoder_trim": f"webrtcvad mode {VAD_MODE}, 30 ms frames, "
                                                 f"runs >= {VAD_MIN_RUN} frames",
            "vocoder_loudness": f"{TARGET_LUFS} LUFS (pyloudnorm, BS.1770)",
        }

    def prepare(self, wav: torch.Tensor) -> torch.Tensor:
        """A prompt utterance as the matching set sees it: silence trimmed, padded to the hop."""
        start, end = voiced_span(wav.detach().float().cpu().numpy())
        return pad_to_hop(wav[start:end])

    def segment_features(self, wav: torch.Tensor, labeller: Callable[[torch.Tensor], torch.Tensor] | None = None,
                         ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Matching-set features ``[N, D]`` of one prompt utterance (and, with ``labeller``, the
        unit of each of its frames), from the cache when this exact audio was seen before."""
        x = wav.detach().to(torch.float32).cpu().contiguous()
        key = hashlib.sha1(x.numpy().tobytes()).hexdigest() + (":units" if labeller else "")
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        seg = self.prepare(x)
        feats, frames = self.features(seg[None].to(self.device), torch.tensor([seg.shape[0]]))
        feats = feats[0, : int(frames[0])]
        units = None
        if labeller is not None:
            units = labeller(seg).to(feats.device)
            n = min(len(units), feats.shape[0])  # same conv stack: equal unless the models differ
            feats, units = feats[:n], units[:n]
        value = (feats, units)
        self._cache[key] = value
        self._cached_frames += feats.shape[0]
        while self._cached_frames > self.cache_frames and len(self._cache) > 1:
            _, (old, _) = self._cache.popitem(last=False)
            self._cached_frames -= old.shape[0]
        return value

    def matching_set(self, segments: list[torch.Tensor],
                     labeller: Callable[[torch.Tensor], torch.Tensor] | None = None,
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
        parts = [self.segment_features(s, labeller) for s in segments if s.numel() > 0]
        if not parts:
            raise ValueError("the prompt holds no audio")
        feats = torch.cat([p[0] for p in parts])
        units = torch.cat([p[1] for p in parts]) if labeller is not None else None  # type: ignore[misc]
        if feats.shape[0] == 0:
            raise ValueError("the prompt is too short to give a single feature frame (400 samples)")
        return feats, units

    @torch.inference_mode()
    def vocode(self, feats: torch.Tensor) -> np.ndarray:
        """Features ``[F, D]`` -> loudness-normalised 16 kHz waveform of ``F * 320`` samples."""
        if feats.shape[0] == 0:
            return np.zeros(0, np.float32)
        wav = self.generator(feats[None].to(self.device, torch.float32))[0, 0]
        out, _ = normalize_loudness(wav.float().cpu().numpy())
        return out


class UnitDecoder:
    """``decode(tokens, prompt)`` of a k-means unit tokenizer through kNN-VC.

    ``same_space``: the tokenizer's centroids are WavLM-Large layer-6 vectors, used as the frames
    to decode; otherwise ``encode`` (the tokenizer's own) labels the prompt with units.
    """

    def __init__(self, knn: KnnVC, centroids: torch.Tensor, same_space: bool,
                 encode: Callable[[torch.Tensor, torch.Tensor], Tokens]):
        if same_space and centroids.shape[1] != knn.features.dim:
            raise ValueError(f"centroids are {centroids.shape[1]}-d but the vocoder's features "
                             f"are {knn.features.dim}-d")
        self.knn = knn
        self.centroids = centroids
        self.same_space = same_space
        self.encode = encode
        self.fallback_frames = 0  # frames decoded through a nearest present unit (cumulative)

    @property
    def query(self) -> str:
        return "centroid" if self.same_space else "mean of prompt frames with the same unit"

    def _label(self, seg: torch.Tensor) -> torch.Tensor:
        tokens = self.encode(seg[None], torch.tensor([seg.shape[0]], device=seg.device))
        return tokens.item(0)[0]

    @torch.inference_mode()
    def decode(self, tokens: Tokens, prompt: Audio | None) -> Audio:
        from tokbench.types import PromptAudio

        if prompt is None:
            raise ValueError("kNN-VC decodes with a speaker prompt: pass prompt=Audio (16 kHz "
                             "speech of the target speaker, one item per token sequence)")
        if prompt.batch_size != tokens.batch_size:
            raise ValueError(f"{tokens.batch_size} token sequences but {prompt.batch_size} prompts")
        if prompt.sample_rate != SAMPLE_RATE:
            raise ValueError(f"the prompt must be at {SAMPLE_RATE} Hz, got {prompt.sample_rate}")
        if tokens.n_codebooks != 1:
            raise ValueError(f"unit tokens have one codebook, got {tokens.n_codebooks}")
        outs = []
        for b in range(tokens.batch_size):
            segments = (prompt.item_segments(b) if isinstance(prompt, PromptAudio)
                        else [prompt.item(b)])
            codes = tokens.item(b)[0].to(self.centroids.device)
            if self.same_space:
                matching, _ = self.knn.matching_set(segments)
                query = self.centroids[codes]
            else:
                matching, units = self.knn.matching_set(segments, self._label)
                query, fallback = unit_queries(codes, units.to(matching.device), matching,  # type: ignore[union-attr]
                                               self.centroids.to(matching.device))
                self.fallback_frames += fallback
            feats = knn_average(query.to(matching.device), matching, self.knn.k)
            wav = torch.from_numpy(self.knn.vocode(feats))
            if tokens.sample_lengths is not None:  # the input length, as codec decoders return
                n = int(tokens.sample_lengths[b])
                wav = F.pad(wav[:n], (0, max(0, n - wav.shape[0])))
            outs.append(wav)
        return Audio.from_list(outs, SAMPLE_RATE).to(tokens.codes.device)


__all__ = ["CITATION", "HiFiGANConfig", "compare_features", "HiFiGANGenerator", "KnnVC", "PREMATCHED_URL",
           "UnitDecoder", "VocoderUnavailableError", "checkpoint_cache_path", "config_from_state",
           "fetch_checkpoint", "fold_weight_norm", "knn_average", "load_generator",
           "normalize_loudness", "pad_to_hop", "unit_queries", "voiced_span"]
