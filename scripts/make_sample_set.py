#!/usr/bin/env python3
"""Synthesise tokbench's bundled ``sample`` speech set with espeak-ng and sox.

The set is small, synthetic English speech from several clearly different
espeak-ng voices, meant for smoke tests and quick demos of the benchmark
(reconstruction, WER, speaker similarity). Every step is deterministic: the
same espeak-ng and sox versions give the same manifest and, in practice, the
same FLAC bytes.

Per utterance:

    espeak-ng -v VOICE -p PITCH -s SPEED -w raw.wav "TEXT"
    sox -R -D raw.wav -r 16000 -c 1 -b 16 -C 8 ID.flac \\
        silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse \\
        rate -v 16000 gain -n -1 pad 0.1 0.1

i.e. trim leading and trailing silence, resample to 16 kHz, normalise the
peak to -1 dBFS, and leave 0.1 s of silence at each end.

Usage:

    python scripts/make_sample_set.py [--out tokbench/data/sample] [--check]

``--check`` also reports durations and (if resemblyzer is installed) the
speaker-similarity matrix of the written set.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SAMPLE_RATE = 16000
PEAK_DBFS = -1.0
PAD_S = 0.1
# sox `silence` threshold for trimming: amplitude as % of full scale.
TRIM_THRESHOLD = "0.5%"
TRIM_MIN_S = "0.02"


@dataclass(frozen=True)
class Voice:
    speaker: str
    voice: str  # espeak-ng voice name, optionally with +variant
    pitch: int  # espeak-ng -p, 0..99 (default 50)
    speed: int  # espeak-ng -s, words per minute (default 175)
    gender: str  # nominal: "female" or "male"
    description: str


# Chosen (from a sweep over espeak-ng variants and pitches) so that Resemblyzer
# tells every voice from every other with a clear margin, and the nominally
# female voices have clearly higher F0 (about 160-250 Hz vs 85-130 Hz); see
# tests/test_sample_set.py. Notes: `en-gb+f3` silently ignores the +f3 variant,
# so the British female voice uses `en-gb-x-rp`; `en-gb-scotland+m1` was too
# close to `en-us+john` for the speaker encoder.
VOICES: tuple[Voice, ...] = (
    Voice("spk01", "en-us+Alicia", 50, 165, "female", "US English, variant Alicia"),
    Voice("spk02", "en-gb-x-rp+f4", 40, 150, "female", "British RP English, variant f4, slow"),
    Voice("spk03", "en+f5", 70, 170, "female", "English, variant f5, high pitch"),
    Voice("spk04", "en-us+grandma", 50, 155, "female", "US English, variant grandma"),
    Voice("spk05", "en+m7", 70, 175, "male", "English, variant m7, raised pitch, fast"),
    Voice("spk06", "en-us+john", 30, 160, "male", "US English, variant john, low pitch"),
    Voice("spk07", "en-us+klatt3", 50, 150, "male", "US English, Klatt variant klatt3, slow"),
    Voice("spk08", "en-us+edward", 70, 165, "male", "US English, variant edward, raised pitch"),
)

# One sentence every voice says (same content, different speakers) ...
SHARED_SENTENCE = "The weather was fine, and the whole town came out to the fair."

# ... and three of its own per voice, in VOICES order. Plain sentence case,
# words only (no digits or abbreviations), so `text` is exactly what is spoken.
OWN_SENTENCES: tuple[tuple[str, str, str], ...] = (
    (
        "She folded the letter twice and hid it beneath her pillow.",
        "A cold wind swept across the moor as evening fell.",
        "The children ran laughing through the tall wet grass.",
    ),
    (
        "My father kept his books in a locked wooden chest.",
        "There was nothing to be done but wait for morning.",
        "Bright lamps were burning in every window of the inn.",
    ),
    (
        "The doctor listened carefully and then shook his head.",
        "We walked along the cliffs until the path disappeared.",
        "Her voice was low and steady, though her hands trembled.",
    ),
    (
        "The captain ordered the sails to be lowered at once.",
        "Nobody in the village remembered the stranger's name.",
        "The bread was still warm when she set it on the table.",
    ),
    (
        "He asked whether the road to the north was safe.",
        "Rain had fallen all night, and the streets were flooded.",
        "They found the key under a loose stone by the gate.",
    ),
    (
        "The king listened in silence while the messenger spoke.",
        "A single candle flickered on the desk beside the open book.",
        "The journey took three days and cost them forty shillings.",
    ),
    (
        "The horses were tired, so we stopped early for the night.",
        "His uncle owned a small farm on the far side of the hill.",
        "The garden was full of roses and the air smelled sweet.",
    ),
    (
        "At last the train pulled slowly out of the station.",
        "She counted seven birds sitting quietly on the fence.",
        "Why did you leave the door open when you went out?",
    ),
)


def utterances() -> list[dict[str, str]]:
    """The planned utterances, in manifest order."""
    assert len(OWN_SENTENCES) == len(VOICES)
    rows = []
    for voice, own in zip(VOICES, OWN_SENTENCES, strict=True):
        for k, text in enumerate((*own, SHARED_SENTENCE), start=1):
            rows.append({"id": f"{voice.speaker}-{k:03d}", "text": text, "speaker": voice.speaker})
    return rows


def tool_version(cmd: list[str]) -> str:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[0].strip()


def espeak_version() -> str:
    # "eSpeak NG text-to-speech: 1.51  Data at: ..." -> "1.51"
    line = tool_version(["espeak-ng", "--version"])
    return line.split(":", 1)[1].split("Data at")[0].strip()


def debian_package_version(package: str) -> str | None:
    """Exact Debian package version (e.g. "1.51+dfsg-10+deb12u2"), if dpkg knows it."""
    if shutil.which("dpkg-query") is None:
        return None
    res = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True
    )
    return (res.stdout.strip() or None) if res.returncode == 0 else None


def sox_version() -> str:
    # "sox:      SoX v14.4.2" -> "14.4.2"
    return tool_version(["sox", "--version"]).split()[-1].lstrip("v")


def synthesise(voice: Voice, text: str, out_path: Path, tmp: Path) -> None:
    raw = tmp / f"{out_path.stem}.wav"
    subprocess.run(
        [
            "espeak-ng",
            "-v",
            voice.voice,
            "-p",
            str(voice.pitch),
            "-s",
            str(voice.speed),
            "-w",
            str(raw),
            text,
        ],
        check=True,
    )
    subprocess.run(
        [
            "sox",
            "-R",
            "-D",
            "-V1",
            str(raw),
            "-r",
            str(SAMPLE_RATE),
            "-c",
            "1",
            "-b",
            "16",
            "-C",
            "8",
            str(out_path),
            # trim leading silence, then trailing (by reversing)
            "silence",
            "1",
            TRIM_MIN_S,
            TRIM_THRESHOLD,
            "reverse",
            "silence",
            "1",
            TRIM_MIN_S,
            TRIM_THRESHOLD,
            "reverse",
            "rate",
            "-v",
            str(SAMPLE_RATE),
            "gain",
            "-n",
            str(PEAK_DBFS),
            "pad",
            str(PAD_S),
            str(PAD_S),
        ],
        check=True,
    )
    raw.unlink()


def duration_s(path: Path) -> float:
    return float(tool_version(["soxi", "-D", str(path)]))


def readme_text(command: str, espeak: str, sox: str, n_utts: int) -> str:
    voice_rows = "\n".join(
        f"| {v.speaker} | `{v.voice}` | {v.pitch} | {v.speed} | {v.gender} | {v.description} |"
        for v in VOICES
    )
    return f"""# tokbench `sample` set

{n_utts} short English utterances from {len(VOICES)} synthetic voices, bundled with tokbench for
smoke tests and quick demos (reconstruction metrics, WER, speaker similarity).

- Audio: `<id>.flac`, 16 kHz, mono, 16-bit, 2 to 5 s each; leading/trailing silence trimmed to
  {PAD_S} s, peak normalised to {PEAK_DBFS:g} dBFS.
- `manifest.jsonl`: one JSON object per line,
  `{{"id": ..., "path": "<id>.flac", "text": ..., "speaker": ...}}`; `path` is relative to
  the manifest. `text` is exactly what was synthesised (plain sentence case with punctuation,
  no digits), so it can serve as the reference transcript for WER.
- Each voice says three sentences of its own plus one sentence shared by all voices
  (`<speaker>-004`: "{SHARED_SENTENCE}").

## How it was made

Generated by `scripts/make_sample_set.py` (deterministic; re-running it with the same tools
rewrites the same files):

    {command}

with eSpeak NG (`espeak-ng`) {espeak} and SoX (`sox`) {sox}. Per utterance:

    espeak-ng -v VOICE -p PITCH -s SPEED -w raw.wav "TEXT"
    sox -R -D raw.wav -r 16000 -c 1 -b 16 -C 8 ID.flac \\
        silence 1 {TRIM_MIN_S} {TRIM_THRESHOLD} reverse silence 1 {TRIM_MIN_S} {TRIM_THRESHOLD} reverse \\
        rate -v 16000 gain -n {PEAK_DBFS:g} pad {PAD_S} {PAD_S}

Voices (espeak-ng voice+variant, `-p` pitch, `-s` words per minute):

| speaker | voice | pitch | speed | nominal gender | description |
|---|---|---|---|---|---|
{voice_rows}

The voices were chosen so that a speaker encoder (Resemblyzer) tells each voice apart from
every other one: each voice's mean within-voice cosine similarity is above its mean
similarity to any other voice (checked by `tests/test_sample_set.py`).

## Licence

Synthetic speech generated for this project; no recordings of real people are included.
Released under the same licence as tokbench (MIT).
"""


def check(out: Path) -> None:
    """Print durations and, if resemblyzer is available, the speaker-similarity matrix."""
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    durs = [duration_s(out / r["path"]) for r in rows]
    print(f"durations: min {min(durs):.2f} s, max {max(durs):.2f} s, total {sum(durs):.1f} s")
    try:
        import librosa
        import numpy as np
        import soundfile as sf
    except ImportError as exc:  # optional
        print(f"skipping F0 check ({exc})")
    else:
        gender = {v.speaker: v.gender for v in VOICES}
        for v in VOICES:
            f0s = []
            for r in rows:
                if r["speaker"] != v.speaker:
                    continue
                x, sr = sf.read(out / r["path"], dtype="float32")
                f0 = librosa.yin(x, fmin=60, fmax=500, sr=sr, frame_length=1024, hop_length=256)
                rms = librosa.feature.rms(y=x, frame_length=1024, hop_length=256)[0][: len(f0)]
                f0s.append(float(np.median(f0[rms > 0.1 * rms.max()])))
            print(f"  {v.speaker} ({gender[v.speaker]:<6}) median F0 {np.median(f0s):5.0f} Hz")
    try:
        import numpy as np
        from resemblyzer import VoiceEncoder, preprocess_wav
    except ImportError as exc:  # optional
        print(f"skipping speaker check ({exc})")
        return
    import torch

    torch.set_num_threads(1)  # 2 threads on a busy 2-core machine: ~40x slower (contention)
    enc = VoiceEncoder("cpu", verbose=False)
    emb = np.stack([enc.embed_utterance(preprocess_wav(out / r["path"])) for r in rows])
    spk = [r["speaker"] for r in rows]
    names = sorted(set(spk))
    idx = {s: [i for i, x in enumerate(spk) if x == s] for s in names}
    sim = emb @ emb.T
    mat = np.zeros((len(names), len(names)))
    for a, sa in enumerate(names):
        for b, sb in enumerate(names):
            block = sim[np.ix_(idx[sa], idx[sb])]
            if a == b:
                n = len(idx[sa])
                mat[a, b] = (block.sum() - np.trace(block)) / (n * (n - 1))
            else:
                mat[a, b] = block.mean()
    print("mean cosine similarity (rows/cols: " + " ".join(names) + ")")
    for a, sa in enumerate(names):
        print(f"  {sa} " + " ".join(f"{x:5.3f}" for x in mat[a]))
    margins = [mat[a, a] - np.delete(mat[a], a).max() for a in range(len(names))]
    for sa, m in zip(names, margins, strict=True):
        print(f"  {sa}: within minus max between = {m:+.3f}")
    print(f"min margin {min(margins):+.3f}")


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--out",
        type=Path,
        default=repo / "tokbench" / "data" / "sample",
        help="output directory (default: tokbench/data/sample)",
    )
    ap.add_argument(
        "--check",
        action="store_true",
        help="afterwards print durations and the Resemblyzer similarity matrix",
    )
    args = ap.parse_args(argv)

    for tool in ("espeak-ng", "sox", "soxi"):
        if shutil.which(tool) is None:
            print(f"error: `{tool}` not found (apt-get install espeak-ng sox)", file=sys.stderr)
            return 1
    espeak, sox = espeak_version(), sox_version()
    if deb := debian_package_version("espeak-ng"):
        espeak += f" (Debian package {deb})"
    if deb := debian_package_version("sox"):
        sox += f" (Debian package {deb})"
    out: Path = args.out
    print(f"espeak-ng {espeak}, sox {sox}; writing to {out}")
    out.mkdir(parents=True, exist_ok=True)
    # Remove what an earlier run wrote, so that the set is exactly what this run makes.
    for old in [*out.glob("*.flac"), out / "manifest.jsonl"]:
        old.unlink(missing_ok=True)

    voices = {v.speaker: v for v in VOICES}
    rows = utterances()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            v = voices[row["speaker"]]
            path = out / f"{row['id']}.flac"
            synthesise(v, row["text"], path, Path(tmp))
            print(
                f"  {row['id']}  {v.voice:<18} -p {v.pitch:<2} -s {v.speed}  "
                f"{duration_s(path):.2f} s  {row['text']}"
            )

    with open(out / "manifest.jsonl", "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            rec = {
                "id": row["id"],
                "path": f"{row['id']}.flac",
                "text": row["text"],
                "speaker": row["speaker"],
            }
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    try:
        shown = out.resolve().relative_to(repo)
    except ValueError:
        shown = out
    command = "python scripts/make_sample_set.py" + (
        "" if shown == Path("tokbench/data/sample") else f" --out {shown}"
    )
    (out / "README.md").write_text(readme_text(command, espeak, sox, len(rows)), encoding="utf-8")

    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(
        f"wrote {len(rows)} utterances from {len(VOICES)} voices, manifest.jsonl, README.md "
        f"({size / 1e6:.2f} MB) in {time.perf_counter() - t0:.1f} s"
    )
    if args.check:
        check(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
