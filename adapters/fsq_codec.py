"""X-Codec2 and NeuCodec: one FSQ codebook of 65,536 (levels 4^8) at 50 Hz over a joint
acoustic + semantic (w2v-BERT 2.0 on log-mel features) embedding, 16 kHz input. Served by
``transformers.Xcodec2Model`` and ``transformers.NeuCodecModel`` (transformers >= 5.24).

- X-Codec2 (Ye et al., 2025; ``HKUSTAudio/xcodec2-hf``): decodes at 16 kHz.
- NeuCodec (Neuphonic; ``neuphonic/neucodec``): decodes at **24 kHz** (the decoder's hop is 480
  output samples per 320 input samples). ``meta.output_sample_rate`` says so, ``decode``
  returns 24 kHz audio of ``round(len * 24000 / 16000)`` samples, and the scorer resamples it
  to the scoring rate like any other output.

Input features. The models take the waveform (``input_values``: the item plus one zero sample,
zero-padded to whole 320-sample frames) and 80-bin Kaldi log-mel filterbanks of it
(``input_features``), computed as the checkpoints' feature extractors compute them, except that
those need torchaudio (``torchaudio.compliance.kaldi.fbank``), which tokbench does not depend
on: the filterbanks here come from transformers' numpy Kaldi-compatible implementation (the one
``SeamlessM4TFeatureExtractor``, i.e. w2v-BERT 2.0's own extractor, uses: povey window, 0.97
pre-emphasis, DC removal, 20 Hz - 8 kHz, float-epsilon floor), then per-bin mean/variance
normalisation over the item and stacking of frame pairs, as the extractors do. X-Codec2 pads the
waveform by half a hop on each side first; NeuCodec feeds the acoustic-padded waveform as is.

Lengths: X-Codec2 ``frame_lengths = ceil(len / 320)`` (the model may return one code more, for
the appended zero sample, which is dropped); NeuCodec ``floor((len + 1) / 320)`` (see
:meth:`NeuCodecTokenizer.frames_for`). ``decode`` returns the input length at the output rate,
zero past what the codes cover. Batching: per item (the semantic encoder normalises over the
whole item and both transformers attend over every frame), so batched equals one-at-a-time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from tokbench.adapters.hf_codec import HFCodec
from tokbench.adapters.requirements import transformers_class
from tokbench.registry import preset
from tokbench.types import BatchTolerance, ModelSource, Tokens

FSQ_LEVELS = (4, 4, 4, 4, 4, 4, 4, 4)
CODEBOOK_SIZE = math.prod(FSQ_LEVELS)  # 65,536
HOP = 320  # input samples per frame at 16 kHz: downsampling ratios 2 * 2 * 4 * 4 * 5
MEL_BINS = 80
MEL_STRIDE = 2  # frame pairs are stacked: 160-dim features at 50 Hz


def kaldi_fbank(wav: np.ndarray) -> np.ndarray:
    """80-bin Kaldi log-mel filterbanks ``[frames, 80]`` of a 16 kHz float signal (25 ms / 10 ms,
    snip edges), via transformers' numpy implementation."""
    from transformers.audio_utils import spectrogram, window_function

    filters = _mel_filters()
    return spectrogram(np.asarray(wav, dtype=np.float32) * (2 ** 15), window_function(400, "povey", periodic=False),
                       frame_length=400, hop_length=160, fft_length=512, power=2.0, center=False,
                       preemphasis=0.97, mel_filters=filters, log_mel="log",
                       mel_floor=1.192092955078125e-07, remove_dc_offset=True).T


_FILTERS: list[np.ndarray] = []


def _mel_filters() -> np.ndarray:
    if not _FILTERS:
        from transformers.audio_utils import mel_filter_bank

        _FILTERS.append(mel_filter_bank(num_frequency_bins=257, num_mel_filters=MEL_BINS,
                                        min_frequency=20, max_frequency=8000, sampling_rate=16000,
                                        norm=None, mel_scale="kaldi", triangularize_in_mel_space=True))
    return _FILTERS[0]


def semantic_features(wav: np.ndarray) -> np.ndarray:
    """Normalised, pair-stacked filterbanks ``[frames // 2, 160]`` of ``wav`` (float64 math as
    the extractors, returned as float32)."""
    feats = kaldi_fbank(wav).astype(np.float64)
    if feats.shape[0] == 0:
        return np.zeros((0, MEL_BINS * MEL_STRIDE), np.float32)
    std = np.sqrt(feats.var(0, ddof=1) + 1e-7) if feats.shape[0] > 1 else np.sqrt(1e-7)
    feats = (feats - feats.mean(0)) / std
    n = feats.shape[0] - feats.shape[0] % MEL_STRIDE
    return feats[:n].reshape(n // MEL_STRIDE, MEL_BINS * MEL_STRIDE).astype(np.float32)


@dataclass(frozen=True)
class FSQCodecOptions:
    """One FSQ codebook and no bitrate setting: nothing to choose."""


class FSQSpeechCodec(HFCodec):
    """Shared adapter of X-Codec2 and NeuCodec, every item computed alone (``per_item``).

    ``decode`` and ``embed`` are the framed base's, through its hooks (``_decode_frames``,
    ``_embed_codes``: FSQ codes have no table). ``encode`` is this class's own: the model takes
    two inputs built from the item's exact samples (one zero sample appended, mel features
    normalised over the item), which the base's zero-padded frames would change."""

    Options = FSQCodecOptions
    kind = "hybrid"
    sample_rate = 16_000
    hop_length = HOP
    codebook_size = CODEBOOK_SIZE
    class_name: ClassVar[str]
    mel_half_hop_padding: ClassVar[bool]  # X-Codec2 pads the mel input by hop/2 on each side
    per_item = True
    batch_tolerance: ClassVar[BatchTolerance] = BatchTolerance()  # per item: exact

    @classmethod
    def model_class(cls) -> type:
        return transformers_class(cls.class_name, "5.24")

    @classmethod
    def n_codebooks_for(cls, options: Any) -> int:
        return 1

    def check_config(self, config: Any, source: ModelSource) -> None:
        where = source.local_path or f"{source.repo_id}@{source.revision}"
        problems = []
        sr_in, sr_out = self._config_rates(config)
        if sr_in != self.sample_rate:
            problems.append(f"input sampling rate {sr_in} != {self.sample_rate}")
        if sr_out != self.meta.decoded_rate:
            problems.append(f"output sampling rate {sr_out} != {self.meta.decoded_rate}")
        hop = int(np.prod(config.downsampling_ratios))
        if hop != self.hop_length:
            problems.append(f"hop length {hop} != {self.hop_length}")
        if tuple(config.quantization_levels) != FSQ_LEVELS:
            problems.append(f"FSQ levels {list(config.quantization_levels)} != {list(FSQ_LEVELS)}")
        if problems:
            raise ValueError(f"{self.name}: the checkpoint at {where} does not match the adapter: "
                             + "; ".join(problems) + ". Use the official checkpoint or fix its config.")

    def _config_rates(self, config: Any) -> tuple[int, int]:
        raise NotImplementedError

    # --- encode --------------------------------------------------------------------------
    def _model_inputs(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_values ``[1, 1, T]``, input_features ``[1, F, 160]``) of one item, as the
        checkpoint's feature extractor builds them."""
        x = np.concatenate([wav.detach().cpu().numpy().astype(np.float32), np.zeros(1, np.float32)])
        x = np.pad(x, (0, -len(x) % self.hop_length))
        mel_in = np.pad(x, (self.hop_length // 2,) * 2) if self.mel_half_hop_padding else x
        dev = self._device()
        return (torch.from_numpy(x)[None, None].to(dev),
                torch.from_numpy(semantic_features(mel_in))[None].to(dev))

    @torch.inference_mode()
    def encode(self, wav: torch.Tensor, lengths: torch.Tensor) -> Tokens:
        self.check_input(wav, lengths)
        dev = self._device()
        lengths = lengths.to(torch.long).cpu()
        frames = self.frames_for(lengths)
        batch = wav.shape[0]
        codes = torch.zeros(batch, 1, int(frames.max()) if batch else 0, dtype=torch.long, device=dev)
        for b in range(batch):
            f = int(frames[b])
            if f == 0:
                continue
            values, features = self._model_inputs(wav[b, : int(lengths[b])])
            out = self.model.encode(values, features, return_dict=True).audio_codes
            if out.shape[-1] < f:
                raise RuntimeError(f"{self.name}: model returned {out.shape[-1]} codes for {f} frames")
            codes[b, 0, :f] = out[0, 0, :f]
        return Tokens(codes, frames.to(dev), lengths.to(dev))

    # --- decode and embed: the framed base's, per item; these are the family's hooks --------
    def _decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(audio_codes=codes, return_dict=True).audio_values.reshape(codes.shape[0], -1)

    def _embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """The FSQ code's vector after the quantiser's output projection: ``[B, 1, F, D]``."""
        q = self.model.quantizer
        return q.project_out(q.quantizer.codebook[codes[:, 0]].to(q.project_out.weight.dtype))[:, None]

    # --- tiny checkpoints ------------------------------------------------------------------
    @classmethod
    def build_tiny_checkpoint(cls, folder: Path, seed: int = 0) -> Path:
        """A random model with the real rates, hop (320), FSQ levels (65,536 codes) and mel
        front end (160-dim features); small widths and depths. FSQ has no learned codebook."""
        from transformers import Wav2Vec2BertConfig

        from tokbench.adapters.tiny import seeded

        semantic = Wav2Vec2BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                      intermediate_size=64, feature_projection_input_dim=160,
                                      output_hidden_size=32, conv_depthwise_kernel_size=3,
                                      position_embeddings_type="relative_key",
                                      left_max_position_embeddings=8, right_max_position_embeddings=8)
        config = cls._tiny_config(semantic.to_dict())
        model = seeded(cls.model_class(), config, seed).eval()
        cls._spread_fsq(model, seed)
        model.save_pretrained(folder)
        return Path(folder)

    @classmethod
    def _tiny_config(cls, semantic: dict[str, Any]) -> Any:
        raise NotImplementedError

    @classmethod
    def _spread_fsq(cls, model: Any, seed: int) -> None:
        """Scale the random FSQ input projection so its outputs span the levels (at random init
        they sit near 0 and nearly every frame gets the same code)."""
        seen: list[torch.Tensor] = []
        hook = model.quantizer.project_in.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
        tok = cls.__new__(cls)
        tok.model = model
        noise = 0.1 * torch.randn(16000, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            values, features = tok._model_inputs(noise)
            model.encode(values, features)
        hook.remove()
        x = seen[0].reshape(-1, seen[0].shape[-1])
        proj = model.quantizer.project_in
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            w = torch.randn(proj.weight.shape, generator=gen) / (x.std(0).clamp_min(1e-6) * x.shape[1] ** 0.5)
            proj.weight.copy_(2.0 * w)
            proj.bias.copy_(-(proj.weight @ x.mean(0)))


_TINY_SIZES: dict[str, Any] = dict(hidden_size=64, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                   num_key_value_heads=2, head_dim=32, encoder_hidden_size=4, quantization_dim=96,  # = hidden + semantic hidden
                   downsampling_ratios=[2, 2, 4, 4, 5], quantization_levels=list(FSQ_LEVELS))


class Xcodec2Tokenizer(FSQSpeechCodec):
    presets = {"xcodec2": preset(
        "X-Codec2 (Llasa), 16 kHz, one FSQ codebook of 65,536 at 50 Hz: 0.8 kbps")}
    name = "xcodec2"
    family = "xcodec2"
    class_name = "Xcodec2Model"
    repo_id = "HKUSTAudio/xcodec2-hf"
    revision = "main"  # no full commit hash could be verified; the resolved commit is recorded
    mel_half_hop_padding = True
    license = "CC-BY-NC-4.0 (the original HKUSTAudio/xcodec2 model card; assumed for the -hf port)"
    citation = ("Ye et al., Llasa: Scaling Train-Time and Inference-Time Compute for Llama-based "
                "Speech Synthesis, arXiv:2502.04128, 2025")

    def _config_rates(self, config: Any) -> tuple[int, int]:
        return int(config.sampling_rate), int(config.sampling_rate)

    @classmethod
    def _tiny_config(cls, semantic: dict[str, Any]) -> Any:
        from transformers import Xcodec2Config

        return Xcodec2Config(semantic_model_config=semantic, sampling_rate=16_000, **_TINY_SIZES)


class NeuCodecTokenizer(FSQSpeechCodec):
    presets = {"neucodec": preset(
        "NeuCodec, 16 kHz in / 24 kHz out, one FSQ codebook of 65,536 at 50 Hz: 0.8 kbps")}
    name = "neucodec"
    family = "neucodec"
    class_name = "NeuCodecModel"
    repo_id = "neuphonic/neucodec"
    revision = "main"  # no full commit hash could be verified; the resolved commit is recorded
    output_sample_rate = 24_000
    mel_half_hop_padding = False
    license = "Apache-2.0 (neuphonic/neucodec model card metadata)"
    citation = ("Finite Scalar Quantization Enables Redundant and Transmission-Robust Neural Audio "
                "Compression at Low Bit-rates, arXiv:2509.09550, 2025 (Neuphonic NeuCodec)")

    def _config_rates(self, config: Any) -> tuple[int, int]:
        return int(config.input_sampling_rate), int(config.output_sampling_rate)

    def frames_for(self, lengths: torch.Tensor) -> torch.Tensor:
        """NeuCodec's own count, ``floor((len + 1) / 320)`` (its feature extractor appends one
        zero sample; the semantic branch, fed no half-hop padding, yields one frame fewer than
        ``ceil`` for a partial last frame and the model keeps the shorter branch). The audio of
        that partial frame (< 20 ms) is not represented: decode returns zeros there."""
        return (lengths.to(torch.long) + 1) // self.hop_length

    def covered_lengths(self, frame_lengths: torch.Tensor) -> torch.Tensor:
        """The longest input with ``frame_lengths`` frames: ``(frames + 1) * 320 - 2`` (the
        inverse of :meth:`frames_for`); decode returns zeros past ``frames * 480``."""
        return (frame_lengths.to(torch.long) + 1) * self.hop_length - 2

    @classmethod
    def _tiny_config(cls, semantic: dict[str, Any]) -> Any:
        from transformers import NeuCodecConfig

        return NeuCodecConfig(semantic_model_config=semantic, input_sampling_rate=16_000,
                              output_sampling_rate=24_000, **_TINY_SIZES)
