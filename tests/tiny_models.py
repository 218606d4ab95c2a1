"""Tiny randomly initialised codec checkpoints for offline tests (tiny models keep the real rates and codebooks).

Each builder keeps what the adapters rely on true to the real checkpoint (sample rate, strides
and hop length, frame rate, number and size of codebooks) and shrinks only widths and depths.
Hugging Face initialises the Mimi/EnCodec VQ codebook buffers to zeros (every code would be 0),
so they are filled with seeded random values before ``save_pretrained``.
"""

from __future__ import annotations

from pathlib import Path

import torch


def _fill_codebooks(model: torch.nn.Module, seed: int) -> int:
    """Fill zero-initialised Euclidean codebooks with random vectors; returns how many were filled."""
    gen = torch.Generator().manual_seed(seed)
    filled = 0
    with torch.no_grad():
        for name, buf in model.named_buffers():
            leaf = name.rsplit(".", 1)[-1]
            if leaf in ("embed", "embed_avg", "embed_sum"):
                # EnCodec stores `embed` (and `embed_avg`); Mimi stores `embed_sum` and divides by
                # `cluster_usage` (ones). Scale ~ the latents of a random encoder.
                buf.copy_(torch.randn(buf.shape, generator=gen) * 0.5)
                filled += 1
            elif leaf in ("cluster_usage",):
                buf.fill_(1.0)
    return filled


def _save(model: torch.nn.Module, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(out)
    return out


def build_mimi(out: str | Path, seed: int = 0, num_quantizers: int = 32) -> Path:
    """kyutai/mimi shape: 24 kHz, strides 8*6*5*4 x 2 (1920 samples) = 12.5 Hz, 32 x 2048 codes."""
    from transformers import MimiConfig, MimiModel

    torch.manual_seed(seed)
    config = MimiConfig(
        sampling_rate=24_000, hidden_size=64, num_filters=8, num_residual_layers=1,
        upsampling_ratios=[8, 6, 5, 4], num_hidden_layers=2, intermediate_size=128,
        num_attention_heads=4, num_key_value_heads=4, head_dim=16, codebook_size=2048,
        codebook_dim=16, vector_quantization_hidden_dimension=16, num_quantizers=num_quantizers,
        num_semantic_quantizers=1, upsample_groups=64,
    )
    model = MimiModel(config)
    if not _fill_codebooks(model, seed):
        raise RuntimeError("no Mimi codebook buffers found to fill")
    return _save(model, Path(out))


def build_encodec(out: str | Path, seed: int = 0) -> Path:
    """facebook/encodec_24khz shape: 24 kHz, strides 2*4*5*8 = 320 (75 Hz), 32 x 1024 codes."""
    from transformers import EncodecConfig, EncodecModel

    torch.manual_seed(seed)
    config = EncodecConfig(
        sampling_rate=24_000, target_bandwidths=[1.5, 3.0, 6.0, 12.0, 24.0], hidden_size=32,
        num_filters=8, num_residual_layers=1, num_lstm_layers=1, codebook_size=1024,
        codebook_dim=32, upsampling_ratios=[8, 5, 4, 2], normalize=False,
    )
    model = EncodecModel(config)
    if not _fill_codebooks(model, seed):
        raise RuntimeError("no EnCodec codebook buffers found to fill")
    return _save(model, Path(out))


#: (sampling rate, downsampling ratios, codebooks) of descript/dac_16khz, _24khz and _44khz.
DAC_SHAPES: dict[str, tuple[int, list[int], int]] = {
    "16k": (16_000, [2, 4, 5, 8], 12),
    "24k": (24_000, [2, 4, 5, 8], 32),
    "44k": (44_100, [2, 4, 8, 8], 9),
}


def build_dac(out: str | Path, variant: str = "16k", seed: int = 0) -> Path:
    """descript/dac_<variant> shape: real sample rate, hop (320/320/512) and codebooks of 1024 x 8-d."""
    from transformers import DacConfig, DacModel

    sampling_rate, ratios, n_codebooks = DAC_SHAPES[variant]
    torch.manual_seed(seed)
    config = DacConfig(
        encoder_hidden_size=4, downsampling_ratios=ratios, decoder_hidden_size=32,
        n_codebooks=n_codebooks, codebook_size=1024, codebook_dim=8, sampling_rate=sampling_rate,
    )
    model = DacModel(config)  # DAC codebooks are nn.Embedding weights: already random
    return _save(model, Path(out))
