"""Helpers for testing tokbench and its plug-ins offline: tiny random models in the real
layouts (only widths and depths shrink), and checks of the adapter contract.

Nothing here is used by a benchmark run; it lives in the library so that third-party adapters
and the benchmarks can use the same checks as tokbench's own tests.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    import whisper


def tiny_random_whisper(n_mels: int = 80, seed: int = 0) -> whisper.Whisper:
    """A random Whisper for offline tests and benchmarks (its transcripts are noise).

    True to the real models where the plumbing depends on it: ``n_mels`` (80, or 128 as in
    large-v3, which also has one more token: 100 languages), 1500 audio frames per 30 s, the full
    vocabulary and text context; only widths and depths shrink. Cross-attention is sharpened and
    amplified so that different inputs give different transcripts (with the plain init every
    input decodes to the same text, which would hide a mix-up of utterances).
    """
    import whisper

    if n_mels not in (80, 128):
        raise ValueError(f"Whisper models have 80 or 128 mel bins, not {n_mels}")
    generator = torch.Generator().manual_seed(seed)
    dims = whisper.ModelDimensions(
        n_mels=n_mels, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=1,
        n_vocab=51866 if n_mels == 128 else 51865, n_text_ctx=448, n_text_state=64,
        n_text_head=2, n_text_layer=1)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = whisper.Whisper(dims)
    with torch.no_grad():
        # whisper leaves the decoder's positional embedding as torch.empty (the checkpoint fills it)
        model.decoder.positional_embedding.normal_(0.0, 0.02, generator=generator)
        model.encoder.conv1.weight.mul_(5)
        for block in model.decoder.blocks:
            block.cross_attn.query.weight.mul_(30)
            block.cross_attn.value.weight.mul_(10)
            block.cross_attn.out.weight.mul_(10)
    return model.eval()


def save_whisper_checkpoint(model: whisper.Whisper, path: str | Path) -> Path:
    """Save in the official checkpoint layout that ``whisper.load_model`` reads."""
    path = Path(path)
    torch.save({"dims": asdict(model.dims), "model_state_dict": model.state_dict()}, path)
    return path
