"""The ASR back-ends behind WER/CER/dWER/dCER: a registry, part of the protocol and of cache keys.

- ``whisper`` (default): openai-whisper, greedy decoding, batched (``tokbench.metrics.asr``).
- ``whisper-beam5``: the same model with beam search (beam 5, temperature 0, no fallback), the
  setting VERSA and DATES report; one utterance at a time (whisper has no batched beam search).
- ``hubert-ctc``: ``facebook/hubert-large-ls960-ft`` through transformers ``HubertForCTC``, greedy
  CTC decoding (argmax, repeats and blanks removed), the ASR of X-Codec2's and many codec papers'
  tables. One utterance at a time (padding changes a CTC model's output), in chunks of at most
  ``CTC_CHUNK_SECONDS`` joined with a space (attention memory grows with the square of the length).

Precision is part of the protocol: Whisper decodes in fp16 on CUDA and fp32 on the CPU
(``precision``); the CTC model always runs in fp32.

NeMo (``nvidia/stt_en_fastconformer_transducer_large``) is not offered: ``nemo-toolkit`` pins
and pulls packages that would replace this project's torch / numpy / transformers pins (see
docs/metrics.md).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tokbench.protocol import SCORING_SAMPLE_RATE

BACKENDS: dict[str, str] = {
    "whisper": "openai-whisper, greedy, batched",
    "whisper-beam5": "openai-whisper, beam search (beam 5), one utterance at a time",
    "hubert-ctc": "facebook/hubert-large-ls960-ft HubertForCTC, greedy CTC",
}
HUBERT_CTC_REPO = "facebook/hubert-large-ls960-ft"
# The commit as public projects pin it (not verifiable from this machine: no Hub access).
HUBERT_CTC_REVISION = "ece5fabbf034c1073acae96d5401b25be96709d8"
CTC_CHUNK_SECONDS = 30.0
BEAM_SIZE = 5


class UnknownBackendError(ValueError):
    pass


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        from tokbench.registry import suggest

        raise UnknownBackendError(f"unknown ASR back-end {name!r}{suggest(name, BACKENDS)}; "
                                  f"choose one of {', '.join(BACKENDS)} (--set asr_backend=...)")
    return name


def is_whisper(backend: str) -> bool:
    return check_backend(backend).startswith("whisper")


def precision(backend: str, device: str | None) -> str:
    """``fp16`` for Whisper on CUDA (what whisper does there), else ``fp32``."""
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return "fp16" if is_whisper(backend) and str(device).startswith("cuda") else "fp32"


@functools.lru_cache(maxsize=4)
def load_hubert_ctc(device: str = "cpu", checkpoint: str | None = None) -> tuple[Any, Any, str]:
    """(HubertForCTC, Wav2Vec2Processor, resolved revision), once per process per device.
    Raises ``ModelNotAvailableError`` offline without cached weights."""
    from transformers import HubertForCTC, Wav2Vec2Processor

    from tokbench.io.hub import load_hf_model, load_hf_processor

    model, source = load_hf_model(HubertForCTC, HUBERT_CTC_REPO, HUBERT_CTC_REVISION, checkpoint,
                                  device)
    processor = load_hf_processor(Wav2Vec2Processor, HUBERT_CTC_REPO, HUBERT_CTC_REVISION,
                                  checkpoint, "the processor")
    return model, processor, source.resolved or str(source.revision)


def hubert_model_id(checkpoint: str | Path | None) -> str:
    if checkpoint is None:
        return f"{HUBERT_CTC_REPO}@{HUBERT_CTC_REVISION}"
    from tokbench.io.hub import checkpoint_fingerprint

    return checkpoint_fingerprint(checkpoint)


def transcribe_ctc(model: Any, processor: Any, wavs16: Sequence[np.ndarray]) -> list[str]:
    """Greedy CTC transcripts of 16 kHz utterances, one at a time, chunked beyond 30 s."""
    import torch

    chunk = int(CTC_CHUNK_SECONDS * SCORING_SAMPLE_RATE)
    texts = []
    for wav in wavs16:
        x = np.asarray(wav, dtype=np.float32)
        parts = []
        for start in range(0, max(len(x), 1), chunk):
            piece = x[start:start + chunk]
            if len(piece) < 400:  # shorter than the convolutional front end's receptive field
                continue
            inputs = processor(piece, sampling_rate=SCORING_SAMPLE_RATE, return_tensors="pt")
            with torch.inference_mode():
                logits = model(inputs.input_values.to(model.device)).logits
            ids = torch.argmax(logits, dim=-1)
            parts.append(processor.batch_decode(ids)[0].strip())
        texts.append(" ".join(p for p in parts if p))
    return texts
