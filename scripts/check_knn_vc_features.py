#!/usr/bin/env python3
"""Check that tokbench's kNN-VC features match the official WavLM-Large (where both download).

The released kNN-VC vocoder was trained on layer-6 features of the original WavLM-Large
checkpoint (raw waveform zero-padded to a multiple of 320 samples). tokbench extracts them with
transformers' ``WavLMModel`` (``microsoft/wavlm-large`` at the pinned revision, or
``--checkpoint DIR``). This script extracts both on the same audio and compares them frame by
frame (:func:`tokbench.adapters.ssl.knn_vc.compare_features`); it exits 0 when every utterance
passes (equal frame counts, per-frame cosine >= 0.999, relative L2 error <= 1e-2).

The official model is loaded with ``torch.hub`` from ``bshall/knn-vc`` (its ``wavlm_large``
entry point downloads ``WavLM-Large.pt`` from the kNN-VC release). That runs the repository's
own code, so it needs ``--trust-knn-vc-repo``; ``--knn-vc-repo DIR`` uses a local clone instead.

    python scripts/check_knn_vc_features.py --trust-knn-vc-repo [--dataset sample] [--limit 8]
        [--device cuda] [--checkpoint DIR]

Needs network access (or both models in their caches) and an importable torchaudio (the
repository's hubconf imports it); it cannot run on the offline build machines, where the tests
check the comparison itself on synthetic features.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from tokbench.adapters.ssl.features import SSLFeatures
from tokbench.adapters.ssl.knn_vc import FEATURE_LAYER, FEATURE_MODEL, compare_features, pad_to_hop
from tokbench.data import open_dataset
from tokbench.io.audio import resample


def official_features(wavlm, wav: torch.Tensor) -> torch.Tensor:
    """Layer-6 features ``[F, D]`` as knn-vc's prematch_dataset.py extracts them."""
    with torch.inference_mode():
        _, layers = wavlm.extract_features(wav[None], output_layer=wavlm.cfg.encoder_layers,
                                           ret_layer_results=True)[0]
    return layers[FEATURE_LAYER][0].transpose(0, 1)[0].float()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="sample")
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--checkpoint", default=None, help="local microsoft/wavlm-large folder")
    ap.add_argument("--trust-knn-vc-repo", action="store_true",
                    help="allow torch.hub to run github.com/bshall/knn-vc's code")
    ap.add_argument("--knn-vc-repo", default=None, help="a local clone of bshall/knn-vc")
    args = ap.parse_args()
    if not (args.trust_knn_vc_repo or args.knn_vc_repo):
        ap.error("loading the official WavLM runs bshall/knn-vc's code: pass --trust-knn-vc-repo "
                 "(torch.hub from GitHub) or --knn-vc-repo DIR (a local clone)")
    torch.backends.cuda.matmul.allow_tf32 = False  # compare float32 with float32
    torch.backends.cudnn.allow_tf32 = False
    if args.knn_vc_repo:
        wavlm = torch.hub.load(args.knn_vc_repo, "wavlm_large", source="local", device=args.device)
    else:
        wavlm = torch.hub.load("bshall/knn-vc", "wavlm_large", trust_repo=True, device=args.device)
    ours = SSLFeatures(FEATURE_MODEL, FEATURE_LAYER, normalize=False, device=args.device,
                       checkpoint=args.checkpoint)
    ds = open_dataset(args.dataset).subset(args.limit)
    results = []
    for utt in ds.utterances:
        audio = ds.load(utt)
        wav = pad_to_hop(torch.from_numpy(resample(audio.wav, audio.sample_rate, 16000)))
        mine, frames = ours(wav[None].to(args.device), torch.tensor([wav.shape[0]]))
        theirs = official_features(wavlm, wav.to(args.device))
        r = {"utterance": utt.id, **compare_features(mine[0, : int(frames[0])].cpu(), theirs.cpu())}
        results.append(r)
        print(json.dumps(r))
    ok = all(r["ok"] for r in results)
    print(json.dumps({"extractor": "transformers WavLMModel", "source": ours.describe(),
                      "utterances": len(results), "all_ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
