"""Higgs Audio v2 tokenizer: tokbench's adapter (transformers' HiggsAudioV2TokenizerModel on the
transformers layout of the weights) against the authors' own code (``boson_multimodal``'s
``HiggsAudioTokenizer`` on the authors' layout), on the released weights. Not part of the tests:
it needs the network (both layouts of the weights from the Hub) and two environments, because
``boson-multimodal`` 0.1.1 pins ``transformers<4.47`` while the adapter needs transformers >= 5.17.
The authors' loader also fetches ``bosonai/hubert_base`` with ``trust_remote_code=True`` (their
code, in their environment; tokbench never switches it on).

NOT RUN against the authors' code yet: written where the Hub is unreachable. The ``inputs`` and
``compare`` steps were exercised offline on the tiny checkpoint (``--checkpoint``) against a
reference made by calling transformers' model directly (EQUAL; one flipped code: NOT EQUAL,
exit 1); the ``authors`` step has never run. Steps on a connected machine:

    # 1. in tokbench's environment: inputs (the bundled sample set at 24 kHz, whole frames)
    python benchmarks/higgs_equivalence.py inputs --out /tmp/higgs_in.npz
    # 2. in an environment with `pip install boson-multimodal==0.1.1` (and its requirements):
    python benchmarks/higgs_equivalence.py authors /tmp/higgs_in.npz --out /tmp/higgs_ref.npz \\
        --revision 9d4988fbd4ad      # the last commit of bosonai/higgs-audio-v2-tokenizer in the
                                     # authors' layout (cited in public code; check it)
    # 3. in tokbench's environment again: compare (exit status 1 if not equal)
    python benchmarks/higgs_equivalence.py compare /tmp/higgs_in.npz /tmp/higgs_ref.npz

Equal means: codes identical on every frame, and decoded audio within ``--snr-db`` (default
60 dB) of the authors' decode of the same codes. transformers' port notes one known difference
in its semantic branch (it pads HuBERT's input by 160 samples where the original pads by
hop / 2); a mismatch found here is reported as the share of equal codes per codebook.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

SAMPLE_RATE, HOP = 24_000, 960


def make_inputs(out: str, limit: int) -> None:
    from tokbench.data import open_dataset
    from tokbench.io.audio import resample

    ds = open_dataset("sample")
    arrays = {}
    for i, utt in enumerate(ds):
        if i >= limit:
            break
        audio = ds.load(utt)
        wav = resample(audio.wav, audio.sample_rate, SAMPLE_RATE).astype(np.float32)
        arrays[f"wav{i}"] = wav[: len(wav) // HOP * HOP]  # whole frames: no padding question
    np.savez(out, **arrays)
    print(f"{len(arrays)} inputs -> {out}")


def run_authors(inputs: str, out: str, revision: str, device: str) -> None:
    import torch
    from boson_multimodal.audio_processing.higgs_audio_tokenizer import load_higgs_audio_tokenizer
    from huggingface_hub import snapshot_download

    path = snapshot_download("bosonai/higgs-audio-v2-tokenizer", revision=revision)
    model = load_higgs_audio_tokenizer(path, device=device)
    result = {}
    with np.load(inputs) as data:
        for key in data.files:
            codes = model.encode(data[key], sr=SAMPLE_RATE)  # [Q, F]
            result[f"codes_{key}"] = codes.cpu().numpy()
            result[f"audio_{key}"] = model.decode(torch.as_tensor(codes)[None])[0, 0]
    np.savez(out, **result)
    print(f"authors' codes and audio of {len(result) // 2} inputs -> {out}")


def compare(inputs: str, reference: str, snr_db: float, device: str,
            checkpoint: str | None = None) -> int:
    import torch

    from tokbench.resolve import load_tokenizer
    from tokbench.types import Tokens

    tok = load_tokenizer("higgs-audio-v2", device=device, checkpoint=checkpoint)
    print(f"adapter: {tok.meta.source}")
    ok = True
    with np.load(inputs) as data, np.load(reference) as ref:
        for key in data.files:
            wav = torch.as_tensor(data[key])[None]
            tokens = tok.encode(wav, torch.tensor([wav.shape[-1]]))
            ours = tokens.item(0).cpu().numpy()
            theirs = ref[f"codes_{key}"]
            if ours.shape != theirs.shape:
                print(f"{key}: code shapes differ: ours {ours.shape}, authors' {theirs.shape}")
                ok = False
                continue
            agree = (ours == theirs).mean(axis=1)
            # decode the authors' codes with the adapter: the decoders are compared on equal input
            codes = torch.as_tensor(theirs)[None]
            audio = tok.decode(Tokens(codes, torch.tensor([codes.shape[-1]]))).wav[0].cpu().numpy()
            target = ref[f"audio_{key}"][: len(audio)]
            audio = audio[: len(target)]
            snr = 10 * np.log10(np.sum(target**2) / max(np.sum((audio - target) ** 2), 1e-30))
            print(f"{key}: equal codes per codebook {np.round(agree, 4).tolist()}, "
                  f"decode SNR {snr:.1f} dB")
            ok &= bool((agree == 1.0).all()) and snr >= snr_db
    print("EQUAL" if ok else "NOT EQUAL")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("inputs")
    p.add_argument("--out", required=True)
    p.add_argument("--limit", type=int, default=8)
    p = sub.add_parser("authors")
    p.add_argument("inputs")
    p.add_argument("--out", required=True)
    p.add_argument("--revision", required=True)
    p.add_argument("--device", default="cpu")
    p = sub.add_parser("compare")
    p.add_argument("inputs")
    p.add_argument("reference")
    p.add_argument("--snr-db", type=float, default=60.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--checkpoint", help="a local transformers-layout copy (default: the pinned Hub commit)")
    args = parser.parse_args(argv)
    if args.step == "inputs":
        make_inputs(args.out, args.limit)
        return 0
    if args.step == "authors":
        run_authors(args.inputs, args.out, args.revision, args.device)
        return 0
    return compare(args.inputs, args.reference, args.snr_db, args.device, args.checkpoint)


if __name__ == "__main__":
    sys.exit(main())
