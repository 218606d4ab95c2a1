"""The ``score`` task: outputs made elsewhere, found on disk, scored like recon's outputs.

A run of it has no tokenizer (kind ``external``): :func:`tokbench.run.runner.run_external` runs
it with the same store, identity rules, lock, resume and summary as every run. Files are matched
by stem (``ref/abc.wav`` with ``hyp/abc.flac``), at any sample rate; both sides are resampled to
16 kHz; lengths follow :mod:`tokbench.run.decode_score` with a 20 ms tolerance.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokbench.data import Dataset, Utterance, read_folder
from tokbench.data.base import content_revision
from tokbench.io.audio import AudioError, load_audio, resample
from tokbench.protocol import SCORING_SAMPLE_RATE
from tokbench.run.decode_score import Produced, fit_output, length_fields
from tokbench.run.decode_task import DecodeTask
from tokbench.run.scoring import ScoreItem, Scorer, check_output
from tokbench.run.task import RunContext

TASK = "score"
TASK_VERSION = "2"  # 2: output lengths follow the decode-and-score rule
SCORE_CHUNK = 32  # pairs loaded at once; scored while the next chunk loads
# Outputs made elsewhere have no known frame: within 20 ms they are trimmed or padded.
SCORE_LENGTH_TOLERANCE_S = 0.02


@dataclass(frozen=True)
class ScoreOptions:
    ref: str = ""  # the folder of references (the run's dataset)
    hyp: str = ""  # the folder of outputs, matched to the references by stem
    asr: bool = True
    asr_model: str = "large-v3"
    asr_checkpoint: str | None = None
    asr_batch_size: int = 16
    asr_backend: str = "whisper"
    # a selection (tokbench.metrics.selection; None: the default set), not part of the identity:
    # scoring the same folders again with more metrics adds only those the records lack
    metrics: str | None = None


@dataclass(frozen=True)
class Matching:
    """The outputs found for the references, by stem."""

    outputs: dict[str, str]  # utterance id -> output file
    missing: list[str]  # references without an output
    unmatched: list[str]  # outputs without a reference
    revision: str  # the outputs' content revision (it stands for a tokenizer's in the identity)


def match_outputs(refs: Dataset, hyp: str | Path) -> Matching:
    hyp_set = read_folder(hyp)
    hyp_by_id = {u.id: u.path for u in hyp_set.utterances}
    ref_ids = {u.id for u in refs.utterances}
    return Matching(hyp_by_id, sorted(ref_ids - set(hyp_by_id)), sorted(set(hyp_by_id) - ref_ids),
                    content_revision([Path(u.path) for u in hyp_set.utterances], Path(hyp)))


class ScoreFiles(DecodeTask):
    """Outputs found on disk, scored with recon's metrics. Not in the task registry: it needs
    folders, not a tokenizer (``tokbench score``, :func:`tokbench.tasks.score.score_folders`)."""

    name = TASK
    version = TASK_VERSION
    Options = ScoreOptions

    def __init__(self, options: ScoreOptions, matching: Matching, device: str | None = None):
        super().__init__(options, device)
        self.matching = matching

    def identity_options(self) -> dict[str, Any]:
        # the ASR settings only, as before score went through the runner: those runs resume
        o = self.options
        return {"asr": o.asr, "asr_model": self.protocol()["asr"]["model"],
                **({"asr_backend": o.asr_backend} if o.asr_backend != "whisper" else {})}

    def provenance(self, dataset: Dataset) -> dict[str, Any]:
        return {"ref_dir": str(Path(self.options.ref).resolve()),
                "hyp_dir": str(Path(self.options.hyp).resolve()),
                "missing_outputs": self.matching.missing,
                "unmatched_outputs": self.matching.unmatched,
                "metrics_selected": list(self.selected_metrics())}

    def selected_metrics(self) -> tuple[str, ...]:
        from tokbench.metrics.selection import resolve_metrics

        return resolve_metrics(self.options.metrics)

    def warm_up(self, ctx: RunContext) -> None:
        pass  # no model

    def progress_label(self, ctx: RunContext) -> str:
        return f"score {Path(self.options.hyp).name}"

    def chunks(self, ctx: RunContext, scorer: Scorer, todo: Sequence[Utterance]) -> Iterator[list[Produced]]:
        outputs = self.matching.outputs
        # A missing output is a failure to record, not a gap to average over.
        failed = [Produced.failed(u.id, f"no output file in {self.options.hyp}", ("length_ratio",))
                  for u in todo if u.id not in outputs]
        if failed:
            yield failed
        found = [u for u in todo if u.id in outputs]
        for start in range(0, len(found), SCORE_CHUNK):  # load one chunk while the last is scored
            yield [_load_pair(u.id, u.path, outputs[u.id], u.text)
                   for u in found[start:start + SCORE_CHUNK]]


def _load_pair(utt_id: str, ref_path: str, hyp_path: str, text: str | None) -> Produced:
    """One reference/output pair ready to score (lengths as in :mod:`tokbench.run.decode_score`,
    with a tolerance of ``SCORE_LENGTH_TOLERANCE_S``)."""
    try:
        r = load_audio(ref_path)
    except AudioError as exc:
        return Produced.failed(utt_id, f"reference: {exc}", ("length_ratio",), text=text)
    ref16 = resample(r.wav, r.sample_rate, SCORING_SAMPLE_RATE)
    try:
        h = load_audio(hyp_path)
    except AudioError as exc:
        return Produced(ScoreItem(utt_id, ref16, None, text, f"output: {exc}"), {"length_ratio": None})
    reason = check_output(h.wav)
    if reason:
        return Produced(ScoreItem(utt_id, ref16, None, text, reason), {"length_ratio": None})
    raw16 = resample(h.wav, h.sample_rate, SCORING_SAMPLE_RATE)
    tolerance = round(SCORE_LENGTH_TOLERANCE_S * SCORING_SAMPLE_RATE)
    hyp16, mismatch = fit_output(raw16, len(ref16), tolerance)
    lengths = length_fields(len(raw16), len(ref16), mismatch)
    extra = {"length_mismatch_16k": lengths["length_mismatch_16k"], "ref_rate": r.sample_rate,
             "hyp_rate": h.sample_rate}
    return Produced(ScoreItem(utt_id, ref16, hyp16, text, None, extra,
                              audio_rate=min(r.sample_rate, h.sample_rate)),
                    {"length_ratio": lengths["length_ratio"]})
