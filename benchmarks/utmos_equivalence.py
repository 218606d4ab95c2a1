"""tokbench's UTMOS22 strong against the SpeechMOS torch.hub model, on the bundled sample set.

Run where the network is reachable (GitHub for the hub code and the release's checkpoint) and
torchaudio is installed (SpeechMOS's own forward resamples with it; tokbench does not need it):

    pip install torchaudio==<the version matching your torch>
    python benchmarks/utmos_equivalence.py [--hub tarepan/SpeechMOS:v1.2.0] [--device cuda]

It downloads the checkpoint into the tokbench cache (``tokbench.metrics.utmos.fetch_checkpoint``),
prints its size and SHA-256 (put the SHA-256 into ``CHECKPOINT_SHA256`` in
``tokbench/metrics/utmos.py`` so that every later load is verified), then scores every sample
utterance at 16 kHz with both implementations, one at a time, and prints each pair and the
largest difference. Exit status 0 when every difference is below ``--tolerance``. Not part of
``make test``.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hub", default="tarepan/SpeechMOS:v1.2.0", help="torch.hub repo:tag")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="largest |difference| in MOS")
    args = parser.parse_args()

    import torch

    from tokbench.data import open_dataset
    from tokbench.io.audio import resample
    from tokbench.io.files import file_digest
    from tokbench.metrics import utmos

    path = utmos.fetch_checkpoint()
    print(f"checkpoint {path}: {path.stat().st_size:,} bytes, SHA-256 {file_digest(path)}")
    ours = utmos.UTMOSPredictor(args.device, checkpoint=path)
    if not ours.available:
        print(f"tokbench could not load it: {ours.reason}")
        return 1
    official = torch.hub.load(args.hub, "utmos22_strong", trust_repo=True).to(args.device).eval()

    ds = open_dataset("sample")
    worst = 0.0
    print(f"{'utterance':<28} {'tokbench':>9} {'SpeechMOS':>9} {'|diff|':>9}")
    for utt in ds.utterances:
        audio = ds.load(utt)
        wav = resample(audio.wav, audio.sample_rate, 16_000).astype(np.float32)
        a = ours.predict(wav)
        with torch.inference_mode():
            b = float(official(torch.from_numpy(wav)[None].to(args.device), 16_000)[0])
        worst = max(worst, abs(a - b))
        print(f"{utt.id:<28} {a:9.4f} {b:9.4f} {abs(a - b):9.2e}")
    verdict = "equal within" if worst <= args.tolerance else "DIFFERENT beyond"
    print(f"largest difference {worst:.2e}: {verdict} {args.tolerance:g}")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
