"""Hand-made result folders for the reporter tests, written through the real results store.

The values are invented (they test plumbing, not tokenizers) but stored exactly as a run stores
them: run.json with tokenizer meta and provenance, per-utterance records with nulls and reasons,
corpus records, and for one run kept audio examples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from tokbench.protocol import protocol_settings
from tokbench.records import make_record
from tokbench.results.store import RunSpec, RunStore
from tokbench.types import ModelSource, TokenizerMeta

XSS_NAME = "<script>alert(1)</script>"
PROTOCOL_A = protocol_settings(asr={"model": "large-v3"})
PROTOCOL_B = protocol_settings(asr={"model": "tiny"})  # another protocol: never mixed with A
N_UTT = 6


def make_meta(name: str, kind: str, frame_rate: float, sizes: tuple[int, ...], repo: str | None = None):
    return TokenizerMeta(name=name, family=name, kind=kind, sample_rate=16000,
                         frame_rate=frame_rate, n_codebooks=len(sizes), codebook_sizes=sizes,
                         source=ModelSource(repo_id=repo, revision="main" if repo else None,
                                            resolved="0123abcd" if repo else None))


def run_spec(meta: TokenizerMeta, variant: str, protocol: dict, dataset: str = "sample") -> RunSpec:
    return RunSpec(dataset=dataset, dataset_revision="rev1", task="recon", task_version="1",
                   task_options={"keep_audio": 0}, tokenizer=meta.name, variant=variant,
                   tokenizer_options=dict(meta.options), tokenizer_revision=meta.source.resolved,
                   protocol=protocol, kind=meta.kind)


def write_run(root: Path, meta: TokenizerMeta, variant: str, values: dict[str, list[float | None]],
              protocol: dict = PROTOCOL_A, reasons: dict[str, str] | None = None,
              wer: list[tuple[int, int]] | None = None, examples: int = 0,
              dataset: str = "sample", codebook_stats: list[dict] | None = None) -> Path:
    """A complete run; ``values[metric][i]`` for utterance i (None = not computable)."""
    spec = run_spec(meta, variant, protocol, dataset)
    store = RunStore(root, spec).open({
        "tokbench_version": "0.1.0", "git_revision": "feedbeef", "created": "2025-01-02T03:04:05+00:00",
        "tokenizer_meta": meta.to_dict(), "dataset": {"name": dataset, "revision": "rev1"},
        "device": "cpu", "packages": {"torch": "2.13.0", "pesq": "0.0.4"},
    })
    n = max(len(v) for v in values.values())
    for i in range(n):
        metrics = {m: v[i] for m, v in values.items()}
        extra = {}
        if wer is not None:
            e, words = wer[i]
            metrics["wer"] = 100.0 * e / words
            extra = {"ratio": {"wer": [e, words]}}
        why = {m: (reasons or {}).get(m, "not computable") for m, v in metrics.items() if v is None}
        store.append(make_record(f"utt{i}", metrics, reasons=why, extra=extra))
    # token_rate is a ratio metric (tokens / seconds), as the recon task records it
    corpus = [make_record(None, {"bitrate_nominal": meta.bitrate_nominal,
                                 "token_rate": meta.token_rate},
                          extra={"ratio": {"token_rate": [meta.token_rate, 1.0]}})]
    # per-codebook statistics (param = codebook index), as the recon task records them
    corpus += [make_record(None, v, param=q) for q, v in enumerate(codebook_stats or [])]
    store.write_corpus(corpus)
    rng = np.random.default_rng(0)
    for i in range(examples):
        folder = store.path / "examples" / f"utt{i}"
        folder.mkdir(parents=True, exist_ok=True)
        wav = (0.1 * rng.standard_normal(1600)).astype(np.float32)
        sf.write(folder / "original.wav", wav, 16000)
        sf.write(folder / "reconstruction.wav", wav * 0.5, 16000)
    store.finish({"run_id": spec.run_id, "metrics": []}, {"finished": "2025-01-02T03:05:00+00:00"})
    return store.path


def write_unsupported(root: Path, meta: TokenizerMeta, variant: str, reason: str) -> Path:
    spec = run_spec(meta, variant, PROTOCOL_A)
    store = RunStore(root, spec).open({"tokbench_version": "0.1.0"})
    store.finish({"run_id": spec.run_id, "metrics": [], "unsupported": reason},
                 {"status_reason": reason}, status="unsupported")
    return store.path


def make_results(root: Path) -> Path:
    """Six runs on `sample` (recon): ground truth, three tokenizers, one unsupported, and one
    more under a second protocol; mulaw also has per-codebook statistics (a by-param table).
    Known answers are documented beside each."""
    root = Path(root)
    ones = [1.0] * N_UTT
    # ground truth (kind reference): best everywhere, but excluded from "best" marks
    write_run(root, make_meta("identity", "reference", 16000.0, (65536,)), "identity",
              {"pesq_wb": [4.64] * N_UTT, "stoi": ones, "secs": ones, "mel_l1": [0.0] * N_UTT},
              wer=[(0, 10)] * N_UTT)
    # mu-law: pesq mean 4.0, stoi 0.95, wer 2/60 -> 3.33 %, keeps 2 audio examples, and the
    # statistics of its one codebook (param 0)
    write_run(root, make_meta("mulaw", "acoustic", 16000.0, (256,)), "mulaw",
              {"pesq_wb": [3.9, 4.1, 3.8, 4.2, 4.0, 4.0], "stoi": [0.95] * N_UTT,
               "secs": [0.9] * N_UTT, "mel_l1": [0.2] * N_UTT},
              wer=[(1, 10), (0, 10), (1, 10), (0, 10), (0, 10), (0, 10)], examples=2,
              codebook_stats=[{"token_entropy": 7.6, "codebook_utilisation": 0.98}])
    # the hostile name: lower quality, and no secs at all (a gap, not an average)
    write_run(root, make_meta(XSS_NAME, "acoustic", 75.0, (1024,) * 8, repo="evil/<b>repo</b>"), XSS_NAME,
              {"pesq_wb": [2.0, 2.5, 3.0, 2.5, 2.0, 3.0], "stoi": [0.85] * N_UTT,
               "mel_l1": [0.8] * N_UTT},
              wer=[(2, 10)] * N_UTT)
    # semantic units whose decoded audio was silent: PESQ all null, with the reason
    write_run(root, make_meta("hubert-km", "semantic", 50.0, (500,), repo="facebook/hubert-base-ls960"),
              "hubert-km500",
              {"pesq_wb": [None] * N_UTT, "stoi": [0.7] * N_UTT, "secs": [0.6] * N_UTT,
               "mel_l1": [1.5] * N_UTT},
              reasons={"pesq_wb": "decoded audio is silent"}, wer=[(3, 10)] * N_UTT)
    write_unsupported(root, make_meta("nodec", "semantic", 50.0, (100,)), "nodec",
                      "nodec lacks the capability decode that task recon needs")
    # a second protocol: must land in its own table
    write_run(root, make_meta("mulaw", "acoustic", 16000.0, (16,)), "mulaw-4bit",
              {"pesq_wb": [1.5] * N_UTT, "stoi": [0.6] * N_UTT}, protocol=PROTOCOL_B)
    return root
