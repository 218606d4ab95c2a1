"""Intelligibility: WER and CER of Whisper transcriptions (docs/protocol.md).

Protocol: openai-whisper (``large-v3`` by default), English, greedy decoding (temperature 0,
no temperature fallback, no timestamps, no conditioning on previous text); the log-mel size
comes from the model (``model.dims.n_mels``: 128 for large-v3, 80 for the others). Whisper's
``EnglishTextNormalizer`` is applied to reference and hypothesis; WER and CER are in percent.
Each record keeps ``extra["ratio"] = {"wer": [word edits, reference words], "cer": [char edits,
reference chars]}`` (spaces count as characters), from which ``tokbench.results.summarize``
computes the corpus figure as total edits / total reference length.

Utterances up to 30 s are decoded in length-sorted batches with ``whisper.decode``; longer ones
go through ``model.transcribe`` with the same settings, window by window.

The back-end (``tokbench.metrics.asr_backends``: ``whisper`` greedy, ``whisper-beam5``,
``hubert-ctc``, ``nemo-fastconformer``) and the precision (fp16 on CUDA, fp32 on the CPU) are part of the protocol and
of the ground-truth transcript cache key. ``dwer`` / ``dcer`` compare the output's ASR text with
the ASR text of the reference audio (as DASB does), so they need no transcripts.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jiwer
import numpy as np

from tokbench.io.cache import Cache
from tokbench.metrics import asr_backends
from tokbench.metrics.asr_backends import BEAM_SIZE, check_backend, is_whisper, precision
from tokbench.metrics.base import Scores
from tokbench.metrics.kit import MetricSpec, Needs, declare
from tokbench.metrics.whisper_model import (
    DEFAULT_MODEL,
    AsrUnavailable,
    load_asr_model,
)
from tokbench.metrics.whisper_model import model_id as asr_model_id

if TYPE_CHECKING:
    import torch
    import whisper
    from whisper.normalizers import EnglishTextNormalizer

# torch and whisper (which pulls in numba) are imported where a function needs them: importing
# this module (every task and `tokbench score` do, for asr_protocol/task_scorer) must not cost
# their ~1 s of CPU and ~300 MB when ASR is off.

__all__ = ["AsrScorer", "AsrUnavailable", "DECODING", "asr_protocol", "ground_truth_transcripts",
           "normalize", "transcribe", "wer_cer"]

METRICS = ("wer", "cer")
D_METRICS = ("dwer", "dcer")
# Changing any decoding setting below must change this string (it is part of cache keys).
DECODING = "greedy, temperature 0, no fallback, no timestamps, no previous text, no silence skip"
BEAM_DECODING = (f"beam {BEAM_SIZE}, temperature 0, no fallback, no timestamps, no previous text, "
                 "no silence skip, one utterance at a time")
CTC_DECODING = "greedy CTC (argmax), one utterance at a time, 30 s chunks"
NEMO_DECODING = (f"greedy transducer (NeMo greedy_batch, max {asr_backends.NEMO_MAX_SYMBOLS} "
                 "symbols per frame), one utterance at a time, whole utterance")


def decoding_of(backend: str) -> str:
    return {"whisper": DECODING, "whisper-beam5": BEAM_DECODING,
            "hubert-ctc": CTC_DECODING, "nemo-fastconformer": NEMO_DECODING}[check_backend(backend)]
CACHE_KIND = "asr_transcripts"


def decoding_options(fp16: bool, sample_len: int | None = None) -> whisper.DecodingOptions:
    """The protocol's decoding settings. ``sample_len`` caps the tokens per 30 s window
    (``None``: Whisper's default, half the text context); tests lower it for speed."""
    import whisper

    return whisper.DecodingOptions(
        language="en", task="transcribe", temperature=0.0, without_timestamps=True,
        fp16=fp16, beam_size=None, best_of=None, sample_len=sample_len)


def _as_audio(wav: np.ndarray) -> torch.Tensor:
    import torch

    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"expected mono 16 kHz audio of shape [T], got shape {wav.shape}")
    return torch.from_numpy(np.ascontiguousarray(wav))


def transcribe(
    model: whisper.Whisper, wavs16: Sequence[np.ndarray], batch_size: int = 16,
    sample_len: int | None = None, beam_size: int | None = None,
) -> list[str]:
    """Transcribe 16 kHz mono utterances; one text per input, in input order.

    Up to 30 s: batched ``whisper.decode`` on ``[B, n_mels, 3000]`` log-mels, batches sorted by
    length (every item is padded to 30 s anyway, but similar lengths give similar transcript
    lengths, so a batch stops decoding sooner). Longer: ``model.transcribe`` with the same
    settings, 30 s windows without conditioning on the previous window. Silence skipping
    (``no_speech_threshold``) is off so that both paths decode every window alike.
    ``beam_size`` (the ``whisper-beam5`` back-end): every utterance through ``model.transcribe``
    with beam search, one at a time.
    """
    import torch
    import whisper
    from whisper.audio import N_SAMPLES, SAMPLE_RATE

    assert SAMPLE_RATE == 16_000  # the scoring rate; whisper's own constant
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    audios = [_as_audio(w) for w in wavs16]
    fp16 = model.device.type == "cuda"
    options = decoding_options(fp16, sample_len)
    n_mels = model.dims.n_mels
    texts: list[str | None] = [None] * len(audios)

    limit = -1 if beam_size else N_SAMPLES  # beam search: everything one at a time
    short = sorted((i for i, a in enumerate(audios) if len(a) <= limit),
                   key=lambda i: -len(audios[i]))
    for start in range(0, len(short), batch_size):
        idx = short[start:start + batch_size]
        mel = torch.stack([
            whisper.log_mel_spectrogram(whisper.pad_or_trim(audios[i]), n_mels=n_mels,
                                        device=model.device)
            for i in idx])
        results = whisper.decode(model, mel, options)
        for i, result in zip(idx, results, strict=True):
            texts[i] = result.text.strip()

    for i, audio in enumerate(audios):
        if len(audio) > limit:
            # temperature is one number, so there is no fallback; the remaining keywords are
            # the DecodingOptions of the short path.
            result = model.transcribe(
                audio, verbose=None, temperature=0.0, condition_on_previous_text=False,
                no_speech_threshold=None, language=options.language, task=options.task,
                without_timestamps=True, fp16=fp16, beam_size=beam_size, best_of=None,
                sample_len=sample_len)
            texts[i] = result["text"].strip()
    assert all(t is not None for t in texts)
    return texts  # type: ignore[return-value]


@functools.cache
def _normalizer() -> EnglishTextNormalizer:
    from whisper.normalizers import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalize(text: str) -> str:
    """Whisper's English normaliser (lower case, no punctuation, spelled numbers to digits,
    British to American spelling, contractions expanded, fillers and bracketed noise removed)."""
    return _normalizer()(text)


def _edits(out) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference length) of a jiwer alignment."""
    return (out.substitutions + out.deletions + out.insertions,
            out.hits + out.substitutions + out.deletions)


def wer_cer(ref_text: str | None, hyp_text: str) -> Scores:
    """WER and CER in percent of one utterance, after normalising both texts.

    ``extra`` holds ``ratio`` (edit counts and reference lengths, for the corpus figure),
    ``asr_text`` (the raw hypothesis) and the normalised texts ``ref_norm`` / ``asr_norm``.
    A missing reference, or one that normalises to nothing, makes both metrics not computable.
    """
    scores = Scores(extra={"asr_text": hyp_text})
    hyp_norm = normalize(hyp_text)
    scores.extra["asr_norm"] = hyp_norm
    if ref_text is None:
        scores.fail(list(METRICS), "no reference transcript for this utterance")
        return scores
    ref_norm = normalize(ref_text)
    scores.extra["ref_norm"] = ref_norm
    if not ref_norm.strip():
        scores.fail(list(METRICS), f"reference transcript {ref_text!r} is empty after "
                                   "Whisper's EnglishTextNormalizer")
        return scores
    word_edits, n_words = _edits(jiwer.process_words(ref_norm, hyp_norm))
    char_edits, n_chars = _edits(jiwer.process_characters(ref_norm, hyp_norm))
    scores.put("wer", 100.0 * word_edits / n_words)
    scores.put("cer", 100.0 * char_edits / n_chars)
    scores.extra["ratio"] = {"wer": [word_edits, n_words], "cer": [char_edits, n_chars]}
    return scores


def dwer_dcer(ref_asr_text: str, hyp_text: str) -> Scores:
    """``dwer`` / ``dcer``: WER/CER of the output's ASR text against the reference audio's ASR
    text (both normalised); null when the reference's transcript normalises to nothing."""
    base = wer_cer(ref_asr_text, hyp_text)
    out = Scores()
    if base.values.get("wer") is None:
        out.fail(list(D_METRICS), "the ASR transcript of the reference audio is empty, so "
                                  "dWER/dCER have no reference words")
        return out
    out.put("dwer", base.values["wer"])
    out.put("dcer", base.values["cer"])
    ratio = base.extra["ratio"]
    out.extra["ratio"] = {"dwer": ratio["wer"], "dcer": ratio["cer"]}
    return out


def _transcript_key(dataset_name: str, dataset_revision: str, utt_id: str, model_id: str,
                    sample_len: int | None, backend: str = "whisper",
                    precision: str = "fp32") -> str:
    return Cache.key(kind=CACHE_KIND, dataset=dataset_name, dataset_revision=dataset_revision,
                     utterance=utt_id, asr_model=model_id, decoding=decoding_of(backend),
                     sample_len=sample_len, backend=backend, precision=precision)


def ground_truth_transcripts(
    cache: Cache, model: whisper.Whisper, dataset_name: str, dataset_revision: str,
    items: Sequence[tuple[str, np.ndarray]], model_id: str, batch_size: int = 16,
    sample_len: int | None = None, backend: str = "whisper", precision: str | None = None,
    transcribe_fn=None,
) -> dict[str, str]:
    """ASR transcripts of the ORIGINAL audio, computed once per (dataset, revision, utterance,
    ASR model, back-end, precision) and cached, so the ground-truth row and every tokenizer
    reuse them.

    ``items`` are ``(utterance_id, wav16)``; only those not yet cached are transcribed (by
    ``transcribe_fn(wavs)``; default: Whisper greedy with ``model``).
    """
    if precision is None:
        precision = "fp16" if getattr(model, "device", None) is not None and \
            model.device.type == "cuda" else "fp32"
    out: dict[str, str] = {}
    todo: list[tuple[str, np.ndarray, str]] = []
    for utt_id, wav in items:
        key = _transcript_key(dataset_name, dataset_revision, utt_id, model_id, sample_len,
                              backend, precision)
        hit = cache.load_json(CACHE_KIND, key)
        if isinstance(hit, dict) and isinstance(hit.get("text"), str):
            out[utt_id] = hit["text"]
        else:
            todo.append((utt_id, wav, key))
    if todo:
        wavs = [w for _, w, _ in todo]
        texts = (transcribe_fn(wavs) if transcribe_fn is not None
                 else transcribe(model, wavs, batch_size, sample_len))
        for (utt_id, _, key), text in zip(todo, texts, strict=True):
            cache.save_json(CACHE_KIND, key, {"text": text, "asr_model": model_id,
                                              "backend": backend, "precision": precision})
            out[utt_id] = text
    return out


def _model_id(backend: str, model_name: str, checkpoint: str | Path | None) -> str:
    if is_whisper(backend):
        return asr_model_id(model_name, checkpoint)
    if backend == "nemo-fastconformer":
        return asr_backends.nemo_model_id(checkpoint)
    return asr_backends.hubert_model_id(checkpoint)


def asr_protocol(enabled: bool, model_name: str = DEFAULT_MODEL,
                 checkpoint: str | Path | None = None, backend: str = "whisper",
                 device: str | None = None) -> dict[str, object]:
    """The ``asr`` entry of the protocol settings: back-end, the model's id, the decoding
    actually used (the same string the transcript cache keys use) and the precision on
    ``device`` (None: the runner's default device), or ``model: None`` when off."""
    if not enabled:
        return {"model": None}
    out: dict[str, object] = {"backend": backend, "model": _model_id(backend, model_name, checkpoint),
                              "decoding": decoding_of(backend),
                              "precision": precision(backend, device)}
    if not is_whisper(backend):
        out.update(package="nemo-toolkit" if backend == "nemo-fastconformer" else "transformers",
                   normaliser="whisper EnglishTextNormalizer")
    return out


def task_scorer(enabled: bool, model_name: str, checkpoint: str | Path | None, device: str,
                batch_size: int, log=lambda message: None,
                backend: str = "whisper") -> AsrScorer | None:
    """The ASR scorer a task asks for (None when off); says why WER/CER will be missing once
    per process (tokbench.notices), however many tasks and runs ask."""
    if not enabled:
        return None
    scorer = AsrScorer(model_name, checkpoint=checkpoint, device=device, batch_size=batch_size,
                       backend=backend)
    if not scorer.available:
        from tokbench import notices

        reason = scorer.reason or "ASR unavailable"
        notices.once(f"asr-unavailable:{reason}", f"WER/CER will not be computed: {reason}", log,
                     reason=reason)
    return scorer


class AsrScorer:
    """WER/CER for a task: loads Whisper lazily, once, and degrades to null-with-reason offline.

    ``available`` is False (and ``reason`` says why) when the checkpoint could not be had
    (:class:`AsrUnavailable`); ``score`` then returns wer/cer null with that reason for every
    utterance, and the task carries on with its other metrics.
    """

    def __init__(self, model_name: str = DEFAULT_MODEL, checkpoint: str | Path | None = None,
                 device: str = "cpu", batch_size: int = 16, sample_len: int | None = None,
                 download_root: str | Path | None = None, backend: str = "whisper"):
        self.backend = check_backend(backend)
        self.model_name = model_name
        self.checkpoint = checkpoint
        self.device = device
        self.batch_size = batch_size
        self.sample_len = sample_len
        self.download_root = download_root
        self._model: Any = None
        self._processor: Any = None
        self._reason: str | None = None
        self._tried = False

    @functools.cached_property
    def model_id(self) -> str:
        """Whisper: the named model's official file name, or ``checkpoint-sha256:<16 hex>`` of a
        local file; HuBERT CTC: ``repo@revision`` or the fingerprint of a local folder."""
        return _model_id(self.backend, self.model_name, self.checkpoint)

    @property
    def precision(self) -> str:
        return precision(self.backend, self.device)

    def _load(self) -> None:
        if self._tried:
            return
        self._tried = True
        if not is_whisper(self.backend):
            from tokbench.io.hub import ModelNotAvailableError

            try:
                ckpt = None if self.checkpoint is None else str(self.checkpoint)
                if self.backend == "nemo-fastconformer":
                    self._model, _ = asr_backends.load_nemo_transducer(self.device, ckpt)
                else:
                    self._model, self._processor, _ = asr_backends.load_hubert_ctc(self.device,
                                                                                   ckpt)
            except asr_backends.BackendNotInstalledError as exc:
                self._reason = str(exc)
            except ModelNotAvailableError as exc:
                self._reason = f"{exc} (or pass --set asr_checkpoint=DIR)"
            return
        try:
            self._model = load_asr_model(self.model_name, self.device, self.checkpoint,
                                         self.download_root)
        except AsrUnavailable as exc:
            self._reason = str(exc)

    @property
    def available(self) -> bool:
        self._load()
        return self._model is not None

    @property
    def reason(self) -> str | None:
        self._load()
        return self._reason

    @property
    def model(self) -> Any:
        if not self.available:
            raise AsrUnavailable(self._reason)
        assert self._model is not None
        return self._model

    def transcribe(self, wavs16: Sequence[np.ndarray]) -> list[str]:
        if self.backend == "nemo-fastconformer":
            return asr_backends.transcribe_nemo(self.model, wavs16)
        if not is_whisper(self.backend):
            return asr_backends.transcribe_ctc(self.model, self._processor, wavs16)
        beam = BEAM_SIZE if self.backend == "whisper-beam5" else None
        return transcribe(self.model, wavs16, self.batch_size, self.sample_len, beam_size=beam)

    def ground_truth(self, cache: Cache, dataset_name: str, dataset_revision: str,
                     items: Sequence[tuple[str, np.ndarray]]) -> dict[str, str]:
        """Cached transcripts of the original audio (see :func:`ground_truth_transcripts`)."""
        fn = None if self.backend == "whisper" else self.transcribe
        return ground_truth_transcripts(cache, self.model, dataset_name, dataset_revision, items,
                                        self.model_id, self.batch_size, self.sample_len,
                                        backend=self.backend, precision=self.precision,
                                        transcribe_fn=fn)

    @staticmethod
    def score_texts(refs: Sequence[str | None], hyps: Sequence[str]) -> list[Scores]:
        """WER/CER of transcripts made already (e.g. the cached ground-truth transcripts)."""
        return [wer_cer(r, h) for r, h in zip(refs, hyps, strict=True)]

    def score(self, refs: Sequence[str | None], wavs16: Sequence[np.ndarray]) -> list[Scores]:
        """Transcribe ``wavs16`` (16 kHz mono) and score each against its reference text."""
        if len(refs) != len(wavs16):
            raise ValueError(f"{len(refs)} references for {len(wavs16)} utterances")
        if not self.available:
            out = []
            for _ in refs:
                s = Scores()
                s.fail(list(METRICS), f"ASR unavailable: {self._reason}")
                out.append(s)
            return out
        return self.score_texts(refs, self.transcribe(wavs16))


class AsrMetrics:
    """The kit's scorer of ``wer``/``cer`` (the output's ASR text vs the transcript) and
    ``dwer``/``dcer`` (vs the ASR text of the reference audio) for a batch of items: one batched
    ASR pass over the outputs, the reference side cached per dataset and ASR model. Without an
    ASR scorer (``--set asr=false``) or without its model, the metrics are null with the reason
    (marked transient when the model may be there next time)."""

    def __init__(self, asr: AsrScorer | None):
        self.asr = asr

    def scores(self, items: Sequence[Any], wanted: Sequence[tuple[str, ...]], cache: Cache,
               refkeys: Any) -> list[Scores]:
        out = [Scores() for _ in items]
        for k, it in enumerate(items):  # a failed output's own reason comes first
            if it.hyp16 is None and wanted[k]:
                out[k].fail(list(wanted[k]), it.reason or "no output")
        scorable = [k for k, it in enumerate(items) if it.hyp16 is not None and wanted[k]]
        asr = self.asr
        if asr is None or not asr.available:
            reason = "ASR disabled (--set asr=false)" if asr is None else asr.reason
            for k in scorable:
                out[k].fail(list(wanted[k]), reason or "ASR unavailable")
                if asr is not None:  # not available yet: computed on the next run
                    out[k].extra["transient"] = list(wanted[k])
            return out
        if not scorable:
            return out
        # ASR of the original audio: computed once per dataset and ASR model, then cached. Output
        # identical to its reference (the identity row) reuses it instead of a second ASR pass.
        gt = asr.ground_truth(cache, refkeys.dataset, refkeys.revision,
                              [(items[k].utterance_id, items[k].ref16) for k in scorable])
        same = [k for k in scorable if np.array_equal(np.asarray(items[k].hyp16), items[k].ref16)]
        todo = sorted(set(scorable) - set(same))
        texts: dict[int, str] = {k: gt[items[k].utterance_id] for k in same}
        if todo:
            for k, text in zip(todo, asr.transcribe([items[k].hyp16 for k in todo]), strict=True):
                texts[k] = text
        for k in scorable:
            out[k] = _scores_of(items[k].text, gt[items[k].utterance_id], texts[k], wanted[k])
        return out


def _scores_of(reference_text: str | None, reference_asr: str, output_asr: str,
               wanted: tuple[str, ...]) -> Scores:
    """The wanted ASR metrics of one output, its ratio counts and both ASR texts."""
    s = wer_cer(reference_text, output_asr)
    result = Scores(extra=dict(s.extra))
    ratio = {n: v for n, v in s.extra.get("ratio", {}).items() if n in wanted}
    for name in METRICS:
        if name in wanted:
            result.put(name, s.values.get(name), s.reasons.get(name))
    if any(n in wanted for n in D_METRICS):
        d = dwer_dcer(reference_asr, output_asr)
        for name in D_METRICS:
            if name in wanted:
                result.put(name, d.values.get(name), d.reasons.get(name))
        ratio.update({n: v for n, v in d.extra.get("ratio", {}).items() if n in wanted})
    result.extra.pop("ratio", None)
    if ratio:
        result.extra["ratio"] = ratio
    result.extra["asr_text_original"] = reference_asr
    return result


def _error_rate(name: str, description: str) -> MetricSpec:
    # insertions can take an error rate past 100 %
    return MetricSpec(name, description, "lower", "%", aggregation="ratio", lo=0.0, hi=100.0,
                      scale=100.0, valid_hi=float("inf"), groups=("asr",),
                      default=name in METRICS)


declare(
    _error_rate("wer", "word error rate of the protocol's ASR (Whisper unless asr.backend says "
                "otherwise) vs the reference text (EnglishTextNormalizer)"),
    _error_rate("cer", "character error rate (spaces included) of the protocol's ASR vs the "
                "reference text"),
    _error_rate("dwer", "WER of the output's ASR text vs the ASR text of the reference audio "
                "(DASB dWER)"),
    _error_rate("dcer", "CER of the output's ASR text vs the ASR text of the reference audio"),
    where="model", compute=lambda ctx: AsrMetrics(ctx.asr),
    needs=Needs(transcript=True, speech=True, sample_rate=16_000),
    needs_of={name: Needs(reference=True, speech=True, sample_rate=16_000) for name in D_METRICS},
    # model and decoding come from asr_protocol (the task's options), merged over these
    protocol={"asr": {"package": "openai-whisper", "language": "en",
                      "normaliser": "whisper EnglishTextNormalizer"}},
    packages=("openai-whisper", "jiwer"),
    citation="Radford et al., ICML 2023 (Whisper); dWER as in DASB (Mousavi et al. 2024)",
    implementation="openai-whisper greedy decoding (or the asr.backend), jiwer edit counts, "
                   "Whisper's EnglishTextNormalizer on both sides",
    license="MIT (openai-whisper, its weights)",
)
