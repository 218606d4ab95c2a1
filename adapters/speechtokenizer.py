"""SpeechTokenizer (Zhang et al., ICLR 2024), from its authors' package ``speechtokenizer`` (the
``speechtokenizer`` extra): 16 kHz, a SEANet encoder/decoder (hop 320, 50 Hz) with residual VQ of
8 codebooks of 1024. The first RVQ layer is distilled from HuBERT (the semantic layer); layers
2-8 add the acoustic detail. Presets are numbers of RVQ layers, always counted from the first:
``speechtokenizer-1`` is the semantic layer alone (0.5 kbps), ``speechtokenizer`` all 8 (4 kbps).

Weights: ``speechtokenizer_hubert_avg/{config.json,SpeechTokenizer.pt}`` of the Hub repo
``fnlp/SpeechTokenizer`` (no commit of it is cited in public code that we could find: revision
``main``, the resolved commit is recorded), the state dict loaded with ``weights_only=True``;
``--checkpoint DIR`` takes a folder holding that sub-folder.

Batching: the encoder's 2-layer LSTM is bidirectional and its convolutions look ahead, so
padding after an item would change its codes: items are computed one at a time (``per_item``),
which makes batched equal to one at a time exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from tokbench.adapters.costs import ModelCost, PublishedParams
from tokbench.adapters.framed import FirstCodebooks, FramedCodec, require
from tokbench.adapters.requirements import require_torchaudio
from tokbench.adapters.tiny import fill_codebook
from tokbench.io.hub import hub_files
from tokbench.registry import preset
from tokbench.types import BatchTolerance, ModelSource, TokenizerSetupError

SUBFOLDER = "speechtokenizer_hubert_avg"
FILES = [f"{SUBFOLDER}/config.json", f"{SUBFOLDER}/SpeechTokenizer.pt"]

#: The released model's architecture: ``config/spt_base_cfg.json`` of github.com/ZhangXInFD/
#: SpeechTokenizer at commit fe5a680224396c93f563fda9a2493d3a482cdaa1 (the training config the
#: released checkpoint was trained with; the Hub's speechtokenizer_hubert_avg/config.json holds
#: the same architecture fields plus training settings). Only the fields the model reads.
RELEASED_CONFIG: dict[str, Any] = {
    "n_filters": 64, "strides": [8, 5, 4, 2], "dimension": 1024, "semantic_dimension": 768,
    "bidirectional": True, "dilation_base": 2, "residual_kernel_size": 3,
    "n_residual_layers": 1, "lstm_layers": 2, "activation": "ELU", "codebook_size": 1024,
    "n_q": 8, "sample_rate": 16000,
}

#: Measured by benchmarks/tokenizer_costs.py (see tokbench.adapters.costs); per preset (the
#: number of RVQ layers changes only the quantiser's share of encode). The codebooks are buffers,
#: not parameters (8 x 1024 x 1024 values), so the quantiser has 0 parameters.
_MEASURED = "torch 2.13.0 CPU FlopCounterMode, 1 s at 16 kHz, random weights, LSTM added analytically"


def _speechtokenizer() -> Any:
    require_torchaudio("the SpeechTokenizer tokenizer")  # its package imports torchaudio
    return require("speechtokenizer", "speechtokenizer", needed_by="the SpeechTokenizer tokenizer")


def build_model(config: dict[str, Any]) -> Any:
    """The authors' ``SpeechTokenizer`` for ``config`` (random weights)."""
    return _speechtokenizer().SpeechTokenizer(config)


@dataclass(frozen=True)
class SpeechTokenizerOptions(FirstCodebooks):
    """The first ``n_codebooks`` RVQ layers (1 = the semantic layer alone)."""

    n_codebooks: int = 8
    maximum: ClassVar[int] = 8


class SpeechTokenizerTokenizer(FramedCodec):
    """SpeechTokenizer (speechtokenizer_hubert_avg): 8 x 1024 codes at 50 Hz, 16 kHz."""

    Options = SpeechTokenizerOptions
    presets = {
        "speechtokenizer": preset("SpeechTokenizer, all 8 RVQ layers (1 semantic + 7 acoustic): "
                                  "4 kbps", n_codebooks=8),
        "speechtokenizer-1": preset("SpeechTokenizer, RVQ layer 1 only (the HuBERT-distilled "
                                    "semantic layer): 0.5 kbps", n_codebooks=1),
        "speechtokenizer-2": preset("SpeechTokenizer, RVQ layers 1-2: 1 kbps", n_codebooks=2),
        "speechtokenizer-4": preset("SpeechTokenizer, RVQ layers 1-4: 2 kbps", n_codebooks=4),
    }
    name, family, kind = "speechtokenizer", "speechtokenizer", "hybrid"
    repo_id, revision = "fnlp/SpeechTokenizer", None
    sample_rate, hop_length, codebook_size = 16_000, 320, 1024
    per_item = True
    # per_item makes batched and one-at-a-time the same computation
    batch_tolerance = BatchTolerance(code_agreement=1.0, snr_db=float("inf"))
    license = "Apache-2.0"
    citation = ("Zhang, Zhang, Li, Zhou, Qiu. SpeechTokenizer: Unified Speech Tokenizer for Speech "
                "Large Language Models. ICLR 2024, arXiv:2308.16692")
    #: not published by the authors (paper, README, model card); see docs/speechtokenizer.md
    published_params: ClassVar[PublishedParams | None] = None
    costs: ClassVar[dict[str, ModelCost]] = {
        name: ModelCost(params_encoder=67_705_856, params_quantizer=0, params_decoder=35_182_530,
                        params_unused=787_200,  # the 1024 -> 768 distillation head (training)
                        encode_macs_per_s=enc, decode_macs_per_s=4_240_793_600,
                        lstm_macs=(2_097_152_000, 838_860_800), measured=_MEASURED)
        for name, enc in (("speechtokenizer", 6_285_516_800), ("speechtokenizer-1", 5_918_515_200),
                          ("speechtokenizer-2", 5_970_944_000),
                          ("speechtokenizer-4", 6_075_801_600))
    }
    model: Any

    @classmethod
    def call_kwargs(cls, options: Any) -> dict[str, Any]:
        return {"n_q": options.n_codebooks}

    def _load(self, checkpoint: str | None, device: str) -> ModelSource:
        _speechtokenizer()  # the package first: a missing extra is named before any download
        files, source = hub_files(self.repo_id or "", self.revision or "main", FILES, checkpoint)
        config = json.loads(files[FILES[0]].read_text(encoding="utf-8"))
        self._check_config(config, source)
        model = build_model(config)
        state = torch.load(files[FILES[1]], map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        self.model = model.to(device).eval()
        return source

    def _check_config(self, config: dict[str, Any], source: ModelSource) -> None:
        strides = config.get("strides") or []
        hop = 1
        for s in strides:
            hop *= int(s)
        got = (config.get("sample_rate"), hop, config.get("codebook_size"), config.get("n_q"))
        want = (self.sample_rate, self.hop_length, self.codebook_size, SpeechTokenizerOptions.maximum)
        if got != want:
            where = source.local_path or f"{source.repo_id}@{source.resolved or source.revision}"
            raise TokenizerSetupError(
                f"{self.name}: the checkpoint {where} has (sample_rate, hop, codebook_size, n_q) = "
                f"{got}, this adapter expects {want}: pass a checkpoint of {self.repo_id}")

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        codes = self.model.encode(x, **self.encode_kwargs())  # [Q, B, F]
        return codes.permute(1, 0, 2)

    def _decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(codes.permute(1, 0, 2))[:, 0, :]  # [B, 1, T] -> [B, T]

    def _codebook_tables(self) -> list[torch.Tensor]:
        return [layer._codebook.embed for layer in self.model.quantizer.vq.layers]

    @classmethod
    def build_tiny_checkpoint(cls, folder: Path) -> Path:
        """The real rate, strides (hop 320) and 8 codebooks of 1024; narrow widths, one LSTM
        layer. The codebooks (zeros until k-means initialisation in training) get seeded random
        vectors and are marked initialised, as in the released checkpoint."""
        config = tiny_config()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = build_model(config).eval()
            # Each codebook spread like what it quantises (the encoder's frames of seeded
            # noise, then their residuals), so that frames land on many different codes.
            x = torch.randn(4, 1, 16_000) * 0.1
            with torch.no_grad():
                residual = model.encoder(x).transpose(1, 2).reshape(-1, config["dimension"])
                for i, layer in enumerate(model.quantizer.vq.layers):
                    cb = layer._codebook
                    fill_codebook(cb.embed, residual, seed=i)
                    cb.embed_avg.data.copy_(cb.embed)
                    cb.inited.data.fill_(1.0)
                    residual = residual - cb.decode(cb.encode(residual))
        sub = folder / SUBFOLDER
        sub.mkdir(parents=True, exist_ok=True)
        (sub / "config.json").write_text(json.dumps(config), encoding="utf-8")
        torch.save(model.state_dict(), sub / "SpeechTokenizer.pt")
        return folder


def tiny_config() -> dict[str, Any]:
    """The released config with narrow widths (rates, strides and codebooks unchanged)."""
    return {**RELEASED_CONFIG, "n_filters": 4, "dimension": 32, "semantic_dimension": 16,
            "lstm_layers": 1}
