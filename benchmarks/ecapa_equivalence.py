"""tokbench's spk_sim_ecapa against UniSpeech's own speaker-verification code, on the bundled
sample set.

Run where the network is reachable (s3prl's torch.hub code fetches WavLM-Large's pre-training
checkpoint, which UniSpeech's ``ECAPA_TDNN`` builds its WavLM from before the fine-tuned weights
are loaded over it) and where UniSpeech's code runs (it imports torchaudio, s3prl and fire;
tokbench needs none of them):

    git clone https://github.com/microsoft/UniSpeech
    pip install torchaudio==<the version matching your torch> s3prl fire
    # wavlm_large_finetune.pth: the README's "WavLM large" row (pre-training not fixed), Google
    # Drive https://drive.google.com/file/d/18rekjal9NPo0VquVtali-80yy63252RX
    python benchmarks/ecapa_equivalence.py --unispeech UniSpeech --checkpoint wavlm_large_finetune.pth

It prints the checkpoint's size and SHA-256 (put the SHA-256 into ``CHECKPOINT_SHA256`` in
``tokbench/metrics/ecapa_speaker.py`` so that every later load is verified), its top-level
entries, whether it loads with ``weights_only=True``, and which keys UniSpeech's
``load_state_dict(strict=False)`` (as Seed-TTS-eval calls it) reports missing or unexpected —
so the key layout tokbench assumes is checked too. Then, for every sample utterance at 16 kHz,
one at a time, it embeds with both implementations and prints the cosine between the two
embeddings; then the similarity of every pair by both, the five largest differences and
the largest. Exit status 0 when every similarity agrees within ``--tolerance`` and no key was
missing. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np


def _official(unispeech: Path, checkpoint: Path, device: str):
    import torch

    sys.path.insert(0, str(unispeech / "downstreams" / "speaker_verification"))
    # UniSpeech's code, imported as its verification.py does
    from models.ecapa_tdnn import ECAPA_TDNN_SMALL

    model = ECAPA_TDNN_SMALL(feat_dim=1024, feat_type="wavlm_large", config_path=None)
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    print(f"top-level entries: {sorted(saved) if isinstance(saved, dict) else type(saved).__name__}")
    result = model.load_state_dict(saved["model"], strict=False)  # as verification.py loads it
    print(f"UniSpeech load_state_dict(strict=False): missing {sorted(result.missing_keys)}, "
          f"unexpected {sorted(result.unexpected_keys)}")
    return model.to(device).eval(), list(result.missing_keys)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--unispeech", type=Path, required=True, help="a clone of microsoft/UniSpeech")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="wavlm_large_finetune.pth (default: the tokbench cache's copy)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest |difference| of a cosine")
    args = parser.parse_args()

    import torch

    from tokbench.data import open_dataset
    from tokbench.io.audio import resample
    from tokbench.io.files import file_digest
    from tokbench.metrics import ecapa_speaker as ecapa

    try:
        path = args.checkpoint or ecapa.find_checkpoint()
    except ecapa.EcapaUnavailableError as exc:
        print(exc)
        return 1
    print(f"checkpoint {path}: {path.stat().st_size:,} bytes, SHA-256 {file_digest(path)}")
    try:
        torch.load(path, map_location="cpu", weights_only=True)
        print("loads with weights_only=True")
    except Exception as exc:  # report, then let tokbench's loader say the same
        print(f"does NOT load with weights_only=True: {type(exc).__name__}: {exc}")
    ours = ecapa.EcapaSpeaker(args.device, checkpoint=path)
    if not ours.available:
        print(f"tokbench could not load it: {ours.reason}")
        return 1
    official, missing = _official(args.unispeech, path, args.device)

    ds = open_dataset("sample")
    embeddings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    print(f"{'utterance':<28} {'cos(tokbench, UniSpeech)':>25}")
    for utt in ds.utterances:
        audio = ds.load(utt)
        wav = resample(audio.wav, audio.sample_rate, 16_000).astype(np.float32)
        a = ours.embed(wav, "reference")
        with torch.inference_mode():
            b = official(torch.from_numpy(wav)[None].to(args.device))[0].float()
        b = torch.nn.functional.normalize(b, dim=-1).cpu().numpy()
        embeddings[utt.id] = (a, b)
        print(f"{utt.id:<28} {float(np.dot(a, b)):25.6f}")
    pairs = sorted(((abs(float(np.dot(a1, a2)) - float(np.dot(b1, b2))), u, v, float(np.dot(a1, a2)),
                    float(np.dot(b1, b2)))
                   for (u, (a1, b1)), (v, (a2, b2)) in itertools.combinations(embeddings.items(), 2)),
                  reverse=True)
    worst = pairs[0][0] if pairs else 0.0
    print(f"{len(pairs)} pairs; the 5 largest differences:")
    print(f"{'pair':<48} {'tokbench':>9} {'UniSpeech':>9} {'|diff|':>9}")
    for diff, u, v, ours_sim, theirs in pairs[:5]:
        print(f"{u + ' / ' + v:<48} {ours_sim:9.5f} {theirs:9.5f} {diff:9.2e}")
    ok = worst <= args.tolerance and not missing
    verdict = "equal within" if worst <= args.tolerance else "DIFFERENT beyond"
    print(f"largest difference {worst:.2e}: {verdict} {args.tolerance:g}"
          + ("" if not missing else f"; {len(missing)} keys MISSING from the checkpoint"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
