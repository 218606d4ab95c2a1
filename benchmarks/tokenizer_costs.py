"""Parameters and MACs of full-size tokenizer models, per preset: what the adapters record in
their ``costs`` (tokbench.adapters.costs.ModelCost). Offline: the model is built from the
released config (recorded beside the adapter) with random weights.

    python benchmarks/tokenizer_costs.py speechtokenizer [higgs-audio-v2]   # prints JSON lines

MACs per second of audio = FLOPs / 2 from ``torch.utils.flop_counter.FlopCounterMode`` on one
second of audio at the model's rate (batch 1), in eval mode under ``inference_mode``, plus the
LSTM MACs the counter does not see (it gives 0 for ``nn.LSTM``): ``4 * H * (I + H)`` per step,
layer and direction, counted by a forward hook on every ``nn.LSTM`` from its input's length.
Attention is counted under the math SDPA kernel (the CPU fused kernel counts 0).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode


def lstm_macs(module: torch.nn.LSTM, steps: int, batch: int) -> int:
    """MACs of one forward of ``module`` over ``steps`` steps (gates: 4 * H * (I + H) per step,
    layer and direction; the projection-free LSTM the codecs use)."""
    if module.proj_size:
        raise NotImplementedError("LSTM with proj_size")
    h, dirs = module.hidden_size, 2 if module.bidirectional else 1
    total = 0
    for layer in range(module.num_layers):
        i = module.input_size if layer == 0 else h * dirs
        total += dirs * 4 * h * (i + h)
    return total * steps * batch


def count_macs(model: torch.nn.Module, fn: Callable[[], Any]) -> tuple[int, int]:
    """(MACs counted by FlopCounterMode + LSTM MACs, of which LSTM) of ``fn()``."""
    added = [0]

    def hook(mod: torch.nn.Module, args: tuple, _out: Any) -> None:
        x = args[0]
        assert isinstance(mod, torch.nn.LSTM)
        steps, batch = (x.shape[1], x.shape[0]) if mod.batch_first else (x.shape[0], x.shape[1])
        added[0] += lstm_macs(mod, int(steps), int(batch) if x.dim() == 3 else 1)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, torch.nn.LSTM)]
    try:
        counter = FlopCounterMode(display=False)
        with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), counter:
            fn()
    finally:
        for h in handles:
            h.remove()
    return counter.get_total_flops() // 2 + added[0], added[0]


def strip_parametrizations(model: torch.nn.Module) -> None:
    """Bake weight-norm parametrizations into plain weights (same values, same parameter count
    up to the norm/direction split; FlopCounterMode cannot run a parametrized weight under
    inference mode). Call after counting parameters."""
    from torch.nn.utils import parametrize

    for module in model.modules():
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations.keys()):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)


def n_params(module: torch.nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def speechtokenizer() -> list[dict[str, Any]]:
    from tokbench.adapters.speechtokenizer import (
        RELEASED_CONFIG,
        SpeechTokenizerTokenizer,
        build_model,
    )

    torch.manual_seed(0)
    model = build_model(RELEASED_CONFIG).eval()
    for layer in model.quantizer.vq.layers:  # as in the released checkpoint (no k-means init)
        layer._codebook.embed.data.normal_()
        layer._codebook.inited.data.fill_(1.0)
    x = torch.randn(1, 1, RELEASED_CONFIG["sample_rate"]) * 0.1
    rows = []
    for name, spec in SpeechTokenizerTokenizer.presets.items():
        n_q = spec.options["n_codebooks"]
        enc, enc_lstm = count_macs(model, lambda n_q=n_q: model.encode(x, n_q=n_q))
        with torch.inference_mode():
            codes = model.encode(x, n_q=n_q)
        dec, dec_lstm = count_macs(model, lambda codes=codes: model.decode(codes))
        rows.append({"preset": name, "params_encoder": n_params(model.encoder),
                     "params_quantizer": n_params(model.quantizer),
                     "params_decoder": n_params(model.decoder),
                     "params_unused": n_params(model.transform),
                     "params_total": n_params(model),
                     "encode_macs_per_s": enc, "decode_macs_per_s": dec,
                     "lstm_macs": [enc_lstm, dec_lstm]})
    return rows


#: the parts of HiggsAudioV2TokenizerModel that encode and decode use (decoder_semantic and fc1
#: reconstruct HuBERT features in training only)
HIGGS_PARTS = {"encoder": ("acoustic_encoder", "encoder_semantic", "semantic_model", "fc"),
               "quantizer": ("quantizer",), "decoder": ("acoustic_decoder", "fc2"),
               "unused": ("decoder_semantic", "fc1")}


def higgs_audio_v2() -> list[dict[str, Any]]:
    from tokbench.adapters.higgs_audio import HiggsAudioV2Tokenizer, model_config
    from tokbench.adapters.requirements import transformers_class

    torch.manual_seed(0)
    model = transformers_class("HiggsAudioV2TokenizerModel", "5.17")(model_config()).eval()
    with torch.no_grad():  # random codebooks (transformers initialises them to zeros)
        for vq in model.quantizer.quantizers:
            vq.codebook.embed.normal_()
    parts = {k: sum(n_params(getattr(model, n)) for n in names) for k, names in HIGGS_PARTS.items()}
    assert sum(parts.values()) == n_params(model), "HIGGS_PARTS misses a part of the model"
    total = n_params(model)
    strip_parametrizations(model)  # HuBERT's positional conv is weight-normed
    x = torch.randn(1, 1, 24_000) * 0.1
    rows = []
    for name, spec in HiggsAudioV2Tokenizer.presets.items():
        bw = float(spec.options["bandwidth"])
        enc, enc_lstm = count_macs(model, lambda bw=bw: model.encode(x, bandwidth=bw))
        with torch.inference_mode():
            codes = model.encode(x, bandwidth=bw).audio_codes
        dec, dec_lstm = count_macs(model, lambda codes=codes: model.decode(codes))
        rows.append({"preset": name, "params_encoder": parts["encoder"],
                     "params_quantizer": parts["quantizer"], "params_decoder": parts["decoder"],
                     "params_unused": parts["unused"], "params_total": total,
                     "n_codebooks": int(codes.shape[1]),
                     "encode_macs_per_s": enc, "decode_macs_per_s": dec,
                     "lstm_macs": [enc_lstm, dec_lstm]})
    return rows


FAMILIES: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "speechtokenizer": speechtokenizer, "higgs-audio-v2": higgs_audio_v2}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("families", nargs="*", default=list(FAMILIES), choices=list(FAMILIES))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(json.dumps({"torch": torch.__version__}), file=sys.stderr)
    for family in args.families:
        for row in FAMILIES[family]():
            print(json.dumps({"family": family, **row}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
