"""Shared base for the neural codecs served by ``transformers`` (Mimi, EnCodec, DAC).

What the three have in common lives here: loading through :mod:`tokbench.io.hub`, checking the
loaded config against the rates the adapter declares, padding and trimming, batching rules and
the codebook-vector ``embed``. Each family module supplies the model calls.

Lengths and batching (docs/adapter-contract.md). ``encode`` zero-pads every item to whole frames
(``ceil(len / hop) * hop`` samples), ignoring whatever the caller left past ``lengths``;
``frame_lengths = ceil(len / hop)``. Whole-frame input keeps the models' own right-edge padding
out of play (Mimi and EnCodec pad a partial last frame internally, EnCodec by reflection, which
in a batch would read the neighbours' padding). Two class settings then make an item's codes and
audio independent of the rest of the batch, padding it the same way alone and batched:
``context_frames`` zero frames after every item for models that look ahead (DAC's convolutions
are not causal and it has no padding mask), and ``min_frames`` for models whose left-edge
padding reads ahead (EnCodec reflects). With them, batched equals one-at-a-time up to float
rounding for all three families (tests/test_codecs.py checks ``batch_tolerance``).

``decode`` returns exactly the input length (``Tokens.sample_lengths``, set by ``encode``, or
an explicit ``lengths``), or ``frame_lengths * hop`` samples (the whole frames the codes stand
for) when the input length is unknown, trimming or zero-padding the model
output (DAC's decoder returns 8 samples fewer than ``frames * hop`` for hop 320); samples past an
item's length are zero. Codes on padding frames are 0, on both paths.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import torch

from tokbench.io.hub import load_hf_model
from tokbench.types import Audio, ModelSource, TokenizerBase, TokenizerMeta, Tokens


class HFCodecTokenizer(TokenizerBase):
    """Base of the Hugging Face codec adapters. Subclasses set the class constants below and
    implement ``model_class``, ``n_codebooks_for``, ``call_kwargs``, ``_encode_frames``,
    ``_decode_frames``, ``_codebook_tables`` and (optionally) ``_check_family_config``."""

    name: ClassVar[str]  # model-level name, e.g. "encodec-24k"
    family: ClassVar[str]
    kind: ClassVar[str] = "acoustic"
    repo_id: ClassVar[str]
    revision: ClassVar[str]
    sample_rate: ClassVar[int]
    hop_length: ClassVar[int]  # input samples per frame
    codebook_size: ClassVar[int]
    max_codebooks: ClassVar[int]
    streamable: ClassVar[bool] = False
    license: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    #: How close batched results are to one-at-a-time results (each item padded the same way):
    #: ``code_agreement`` = share of equal codes on valid frames; ``snr_db`` = SNR of the batched
    #: decode of the same tokens against the one-at-a-time decode, on valid samples.
    batch_tolerance: ClassVar[dict[str, float]] = {"code_agreement": 0.999, "snr_db": 60.0}
    #: Zero frames appended to every item, on both paths, and dropped from the output: the
    #: right-hand receptive field of a non-causal model, so that what lies past an item never
    #: depends on the rest of the batch.
    context_frames: ClassVar[int] = 0
    #: Every item is computed over at least this many frames (zero-padded), on both paths: for
    #: models whose left-edge padding reads ahead (EnCodec reflects), a short item would
    #: otherwise read its batch neighbours' padding.
    min_frames: ClassVar[int] = 1

    # --- static description -------------------------------------------------------------
    @classmethod
    def frame_rate(cls) -> float:
        return cls.sample_rate / cls.hop_length

    @classmethod
    def n_codebooks_for(cls, options: Any) -> int:
        raise NotImplementedError

    @classmethod
    def call_kwargs(cls, options: Any) -> dict[str, Any]:
        """The explicit arguments the model's encode call receives for these options."""
        raise NotImplementedError

    @classmethod
    def describe(cls, options: Any) -> TokenizerMeta:
        n = cls.n_codebooks_for(options)
        return TokenizerMeta(
            name=cls.name, family=cls.family, kind=cls.kind, sample_rate=cls.sample_rate,
            frame_rate=cls.frame_rate(), n_codebooks=n, codebook_sizes=(cls.codebook_size,) * n,
            streamable=cls.streamable, capabilities=frozenset({"decode", "embed"}),
            source=ModelSource(repo_id=cls.repo_id, revision=cls.revision),
            license=cls.license, citation=cls.citation,
            options=dataclasses.asdict(options))

    def encode_kwargs(self) -> dict[str, Any]:
        """The dict passed to the model's encode call (e.g. ``{"num_quantizers": 8}``)."""
        return self.call_kwargs(self.options)

    # --- loading -------------------------------------------------------------------------
    @classmethod
    def model_class(cls) -> type:
        raise NotImplementedError

    def __init__(self, options: Any, *, device: str = "cpu", checkpoint: str | None = None):
        super().__init__(options, device=device, checkpoint=checkpoint)
        # float32 whatever the checkpoint's storage dtype: scores must not depend on it
        self.model, source = load_hf_model(self.model_class(), self.repo_id, self.revision,
                                           checkpoint, device, dtype=torch.float32)
        self.check_config(self.model.config, source)
        self.meta = dataclasses.replace(self.meta, source=source)

    def check_config(self, config: Any, source: ModelSource) -> None:
        """Refuse a checkpoint whose config disagrees with the rates this adapter declares
        (e.g. an old dac_44khz revision that declared a 16 kHz sampling rate)."""
        where = source.local_path or f"{source.repo_id}@{source.revision}"
        sr = int(config.sampling_rate)
        hop = int(self._config_hop(config))
        problems = []
        if sr != self.sample_rate:
            problems.append(f"sampling_rate {sr} != {self.sample_rate}")
        if hop != self.hop_length:
            problems.append(f"hop length {hop} != {self.hop_length}")
        if not math.isclose(sr, hop * self.meta.frame_rate, rel_tol=1e-9):
            problems.append(f"sampling_rate {sr} != hop {hop} x frame rate {self.meta.frame_rate:g}")
        if int(config.codebook_size) != self.codebook_size:
            problems.append(f"codebook_size {config.codebook_size} != {self.codebook_size}")
        problems += self._check_family_config(config)
        if problems:
            raise ValueError(f"{self.name}: the checkpoint at {where} does not match the adapter: "
                             + "; ".join(problems) + ". Use the official checkpoint or fix its config.")

    def _config_hop(self, config: Any) -> int:
        return int(config.hop_length)

    def _check_family_config(self, config: Any) -> list[str]:
        return []

    # --- the contract --------------------------------------------------------------------
    def frames_for(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames the codes of ``lengths`` samples have: ``ceil(len / hop)``."""
        return (lengths.to(torch.long) + self.hop_length - 1) // self.hop_length

    def padded_frames(self, frame_lengths: torch.Tensor) -> int:
        """Frames the model computes for a batch: every item gets ``context_frames`` more and
        at least ``min_frames``, so it is padded the same way alone and in any batch."""
        if not len(frame_lengths) or int(frame_lengths.max()) == 0:
            return 0
        return max(int(frame_lengths.max()) + self.context_frames, self.min_frames)

    @torch.inference_mode()
    def encode(self, wav: torch.Tensor, lengths: torch.Tensor) -> Tokens:
        self.check_input(wav, lengths)
        dev = self._device()
        lengths = lengths.to(torch.long).cpu()
        frames = self.frames_for(lengths)
        batch, n_q = wav.shape[0], self.meta.n_codebooks
        n_frames, total = (int(frames.max()) if batch else 0), self.padded_frames(frames)
        if total == 0:
            return Tokens(torch.zeros(batch, n_q, 0, dtype=torch.long, device=dev), frames.to(dev),
                          lengths.to(dev))
        x = torch.zeros(batch, 1, total * self.hop_length, dtype=torch.float32, device=dev)
        for b in range(batch):
            x[b, 0, : int(lengths[b])] = wav[b, : int(lengths[b])].to(dev, torch.float32)
        codes = self._encode_frames(x)
        if tuple(codes.shape) != (batch, n_q, total):
            raise RuntimeError(f"{self.name}: model returned codes of shape {tuple(codes.shape)}, "
                               f"expected {(batch, n_q, total)}")
        codes = codes[:, :, :n_frames].to(torch.long)
        return Tokens(self._zero_padding(codes, frames.to(dev)), frames.to(dev), lengths.to(dev))

    @torch.inference_mode()
    def decode(self, tokens: Tokens, prompt: Audio | None = None, *,
               lengths: torch.Tensor | None = None) -> Audio:
        """Audio for ``tokens``: the input length of each item (``lengths``, else the
        ``sample_lengths`` that encode recorded), or ``frame_lengths * hop`` samples when neither
        is known (tokens from a cache or a language model)."""
        if prompt is not None:
            raise ValueError(f"{self.name} takes no speaker prompt (capability 'speaker_prompt')")
        self._check_codes(tokens)
        dev = self._device()
        frame_lengths = tokens.frame_lengths.to(torch.long).cpu()
        natural = frame_lengths * self.hop_length
        if lengths is None:
            lengths = tokens.sample_lengths
        out_lengths = natural if lengths is None else lengths.to(torch.long).cpu()
        if out_lengths.shape != frame_lengths.shape:
            raise ValueError(f"lengths must have shape {tuple(frame_lengths.shape)}")
        if len(out_lengths) and bool((out_lengths > natural).any()):
            raise ValueError(f"{self.name}: lengths {out_lengths.tolist()} exceed what the codes "
                             f"cover ({natural.tolist()} samples)")
        batch = tokens.batch_size
        total = int(out_lengths.max()) if batch else 0
        out = torch.zeros(batch, total, dtype=torch.float32, device=dev)
        total = self.padded_frames(frame_lengths)
        if total > 0:
            n_frames = int(frame_lengths.max())
            codes = torch.zeros(batch, tokens.n_codebooks, total, dtype=torch.long, device=dev)
            codes[:, :, :n_frames] = self._zero_padding(tokens.codes[:, :, :n_frames].to(dev),
                                                        frame_lengths.to(dev))
            wav = self._decode_frames(codes).to(torch.float32)
            for b in range(batch):
                keep = min(int(out_lengths[b]), int(natural[b]), wav.shape[-1])
                out[b, :keep] = wav[b, :keep]
        return Audio(out, out_lengths.to(dev), self.sample_rate)

    @torch.inference_mode()
    def embed(self, tokens: Tokens) -> torch.Tensor:
        """The codebook vector of every token, ``[B, Q, F, D]``; zero on padding frames."""
        self._check_codes(tokens)
        dev = self._device()
        codes = tokens.codes.to(dev)
        tables = self._codebook_tables()[: tokens.n_codebooks]
        out = torch.stack([torch.nn.functional.embedding(codes[:, q], table)
                           for q, table in enumerate(tables)], dim=1)
        valid = torch.arange(codes.shape[-1], device=dev)[None, :] < tokens.frame_lengths.to(dev)[:, None]
        return out * valid[:, None, :, None].to(out.dtype)

    # --- family hooks --------------------------------------------------------------------
    def _encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, Q, F]`` of ``x`` ``[B, 1, F * hop]`` (whole frames, zero-padded)."""
        raise NotImplementedError

    def _decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        """Waveforms ``[B, T]`` of ``codes`` ``[B, Q, F]`` (code 0 on padding frames)."""
        raise NotImplementedError

    def _codebook_tables(self) -> list[torch.Tensor]:
        """The codebook of each quantizer, in code order: ``[codebook_size, D]`` each."""
        raise NotImplementedError

    # --- helpers -------------------------------------------------------------------------
    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    @staticmethod
    def _zero_padding(codes: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
        valid = torch.arange(codes.shape[-1], device=codes.device)[None, :] < frame_lengths[:, None]
        return codes.masked_fill(~valid[:, None, :], 0)

    def _check_codes(self, tokens: Tokens) -> None:
        if tokens.n_codebooks != self.meta.n_codebooks:
            raise ValueError(f"{self.name}: expected {self.meta.n_codebooks} codebooks "
                             f"(options {dict(self.meta.options)}), got {tokens.n_codebooks}")
        if tokens.codes.numel() and (int(tokens.codes.min()) < 0
                                     or int(tokens.codes.max()) >= self.codebook_size):
            raise ValueError(f"{self.name}: codes must lie in [0, {self.codebook_size})")

