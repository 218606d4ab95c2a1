"""SNAC, the Multi-Scale Neural Audio Codec (Siuzdak et al.), from its own package ``snac``
(the ``snac`` extra): residual codebooks of 4096 at different frame rates.

- ``snac-24k`` (speech): 24 kHz, hop 512, 3 codebooks at strides (4, 2, 1) of 46.875 Hz, i.e.
  11.7 / 23.4 / 46.9 Hz: 0.98 kbps. No attention.
- ``snac-32k`` / ``snac-44k`` (music and sound): hop 384, 4 codebooks at strides (8, 4, 2, 1) of
  83.3 / 114.8 Hz: 1.9 / 2.6 kbps. Local attention over windows of 32 frames.

Codes use the multi-rate layout of ``TokenizerMeta.codebook_strides`` (a slow code repeated over
its stride). The model is given whole windows (``frame_multiple`` = lcm(largest stride, attention
window), as SNAC's own ``preprocess`` pads); its convolutions and windowed attention see the
padding, so items are computed one at a time (``per_item``): batched equals alone exactly. The
decoder output (``frames x hop``, longer than the input, as users of the package report) is
trimmed to the input length by the base. SNAC's decoder adds noise (``torch.randn`` in its
NoiseBlocks): each item is decoded under a fixed seed (the global RNG is left as it was), so
decoding is deterministic and does not depend on batching.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from tokbench.adapters.framed import FramedCodec, align_codebooks, require, split_codebooks
from tokbench.io.hub import hub_files
from tokbench.registry import preset
from tokbench.types import ModelSource, TokenizerSetupError

FILES = ["config.json", "pytorch_model.bin"]
#: hubertsiuzdak/snac_24khz commit pinned by public projects that use SNAC with Orpheus-style TTS.
SNAC_24K_REVISION = "d73ad176a12188fcf4f360ba3bf2c2fbbe8f58ec"
DECODE_SEED = 0


def _snac() -> Any:
    return require("snac", "snac", needed_by="the SNAC tokenizer")


@dataclass(frozen=True)
class SnacOptions:
    """SNAC has no variants within a checkpoint: all its codebooks are used."""


class _SnacTokenizer(FramedCodec):
    family, kind = "snac", "acoustic"
    codebook_size = 4096
    codebook_dim: ClassVar[int] = 8
    attn_window: ClassVar[int | None] = None
    #: the released model's widths; the tiny checkpoint shrinks only these
    encoder_dim: ClassVar[int] = 64
    decoder_dim: ClassVar[int] = 1536
    encoder_rates: ClassVar[tuple[int, ...]] = ()
    Options = SnacOptions
    packages = {"snac": "snac"}
    per_item = True
    capabilities = frozenset({"decode", "embed"})
    license = "MIT"
    citation = ("Siuzdak, Gröger, Šimonytė. SNAC: Multi-Scale Neural Audio Codec. "
                "arXiv:2410.14411, 2024")

    @classmethod
    def n_codebooks_for(cls, options: Any) -> int:
        return len(cls.codebook_strides)

    @classmethod
    def config(cls, **overrides: Any) -> dict[str, Any]:
        """The released model's config.json (``overrides`` shrink widths for tests)."""
        cfg = {"sampling_rate": cls.sample_rate, "encoder_dim": cls.encoder_dim,
               "encoder_rates": list(cls.encoder_rates), "latent_dim": None,
               "decoder_dim": cls.decoder_dim, "decoder_rates": list(reversed(cls.encoder_rates)),
               "attn_window_size": cls.attn_window, "codebook_size": cls.codebook_size,
               "codebook_dim": cls.codebook_dim, "vq_strides": list(cls.codebook_strides),
               "noise": True, "depthwise": True}
        cfg.update(overrides)
        return cfg

    def _load(self, checkpoint: str | None, device: str) -> ModelSource:
        snac = _snac()
        assert self.repo_id is not None
        files, source = hub_files(self.repo_id, self.revision or "main", FILES, checkpoint)
        config = json.loads(files["config.json"].read_text(encoding="utf-8"))
        self._check_config(config, source)
        model = snac.SNAC(**config)
        state = torch.load(files["pytorch_model.bin"], map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        self.model = model.to(device).eval()
        return source

    def _check_config(self, config: dict[str, Any], source: ModelSource) -> None:
        hop = math.prod(config.get("encoder_rates", []))
        got = (config.get("sampling_rate"), hop, config.get("codebook_size"),
               tuple(config.get("vq_strides", ())), config.get("attn_window_size"))
        want = (self.sample_rate, self.hop_length, self.codebook_size, self.codebook_strides,
                self.attn_window)
        if got != want:
            where = source.local_path or f"{source.repo_id}@{source.resolved or source.revision}"
            raise TokenizerSetupError(
                f"{self.name}: the checkpoint {where} has (sampling rate, hop, codebook size, "
                f"strides, attention window) = {got}, this adapter expects {want}: pass a "
                f"checkpoint of {self.repo_id}")

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[-1] // self.hop_length
        codes = self.model.encode(x)  # [B, F / stride] per codebook
        return align_codebooks(codes, self.codebook_strides, frames)

    def _decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):  # SNAC's decoder adds noise: seed it per call
            torch.manual_seed(DECODE_SEED)
            wav = self.model.decode(split_codebooks(codes, self.codebook_strides))
        return wav[:, 0, :]

    def _codebook_tables(self) -> list[Any]:
        # The codebook vectors as the decoder adds them (after each quantizer's out_proj).
        tables = []
        for vq in self.model.quantizer.quantizers:
            entries = vq.codebook.weight[:, :, None]  # [K, codebook_dim, 1]
            tables.append(vq.out_proj(entries)[:, :, 0])
        return tables

    @classmethod
    def build_tiny_checkpoint(cls, folder: Path) -> Path:
        """The real rates, strides, attention window and 4096-entry codebooks; narrow widths."""
        snac = _snac()
        config = cls.config(encoder_dim=4, decoder_dim=64)  # attention needs 64-wide heads
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = snac.SNAC(**config)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
        return folder


class Snac24kTokenizer(_SnacTokenizer):
    """SNAC 24 kHz (speech), 3 codebooks at 12, 23 and 47 Hz."""

    presets = {"snac-24k": preset("SNAC 24 kHz (speech): 3 x 4096 codes at 11.7/23.4/46.9 Hz, "
                                  "0.98 kbps")}
    name = "snac-24k"
    repo_id, revision = "hubertsiuzdak/snac_24khz", SNAC_24K_REVISION
    sample_rate, hop_length = 24_000, 512
    encoder_rates = (2, 4, 8, 8)
    encoder_dim, decoder_dim = 48, 1024
    codebook_strides = (4, 2, 1)
    frame_multiple = 4


class Snac32kTokenizer(_SnacTokenizer):
    """SNAC 32 kHz (music and sound), 4 codebooks at 10 to 83 Hz."""

    presets = {"snac-32k": preset("SNAC 32 kHz (music/sound): 4 x 4096 codes at 10.4 to 83.3 Hz, "
                                  "1.9 kbps (Hub revision: main, resolved commit recorded)")}
    name = "snac-32k"
    repo_id, revision = "hubertsiuzdak/snac_32khz", None
    sample_rate, hop_length = 32_000, 384
    encoder_rates = (2, 3, 8, 8)
    codebook_strides = (8, 4, 2, 1)
    attn_window = 32
    frame_multiple = 32


class Snac44kTokenizer(_SnacTokenizer):
    """SNAC 44.1 kHz (music and sound), 4 codebooks at 14 to 115 Hz."""

    presets = {"snac-44k": preset("SNAC 44.1 kHz (music/sound): 4 x 4096 codes at 14.4 to "
                                  "114.8 Hz, 2.6 kbps (Hub revision: main, resolved commit recorded)")}
    name = "snac-44k"
    repo_id, revision = "hubertsiuzdak/snac_44khz", None
    sample_rate, hop_length = 44_100, 384
    encoder_rates = (2, 3, 8, 8)
    codebook_strides = (8, 4, 2, 1)
    attn_window = 32
    frame_multiple = 32
