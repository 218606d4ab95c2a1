"""The ASR back-ends behind WER/CER/dWER/dCER: a registry, part of the protocol and of cache keys.

- ``whisper`` (default): openai-whisper, greedy decoding, batched (``tokbench.metrics.asr``).
- ``whisper-beam5``: the same model with beam search (beam 5, temperature 0, no fallback), the
  setting VERSA and DATES report; one utterance at a time (whisper has no batched beam search).
- ``hubert-ctc``: ``facebook/hubert-large-ls960-ft`` through transformers ``HubertForCTC``, greedy
  CTC decoding (argmax, repeats and blanks removed), the ASR of X-Codec2's and many codec papers'
  tables. One utterance at a time (padding changes a CTC model's output), in chunks of at most
  ``CTC_CHUNK_SECONDS`` joined with a space (attention memory grows with the square of the length).

- ``nemo-fastconformer``: ``nvidia/stt_en_fastconformer_transducer_large`` (its ``.nemo`` file)
  through NeMo's own ``ASRModel.restore_from``, the ASR of the Guo et al. review. Greedy
  transducer decoding (NeMo's ``greedy_batch`` strategy, at most 10 symbols per encoder frame),
  one utterance at a time, the whole utterance at once (full attention: the large model is
  meant for utterances of up to a few tens of seconds). Needs the optional extra
  ``pip install 'tokbench[nemo]'`` (``nemo-toolkit[asr]``); without it WER is null with that
  reason. NeMo is imported only when this back-end is used (the import takes seconds).

Precision is part of the protocol: Whisper decodes in fp16 on CUDA and fp32 on the CPU
(``precision``); the CTC and the NeMo model always run in fp32.

Every back-end returns the raw text; ``tokbench.metrics.asr`` normalises hypothesis and reference
with Whisper's ``EnglishTextNormalizer`` whatever the back-end.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tokbench.io.hub import ModelNotAvailableError
from tokbench.protocol import SCORING_SAMPLE_RATE

BACKENDS: dict[str, str] = {
    "whisper": "openai-whisper, greedy, batched",
    "whisper-beam5": "openai-whisper, beam search (beam 5), one utterance at a time",
    "hubert-ctc": "facebook/hubert-large-ls960-ft HubertForCTC, greedy CTC",
    "nemo-fastconformer": "nvidia/stt_en_fastconformer_transducer_large (NeMo), greedy transducer",
}
HUBERT_CTC_REPO = "facebook/hubert-large-ls960-ft"
# The commit as public projects pin it (not verifiable from this machine: no Hub access).
HUBERT_CTC_REVISION = "ece5fabbf034c1073acae96d5401b25be96709d8"
CTC_CHUNK_SECONDS = 30.0
NEMO_REPO = "nvidia/stt_en_fastconformer_transducer_large"
NEMO_REVISION = "main"  # no full commit of this repo could be verified offline
NEMO_FILE = "stt_en_fastconformer_transducer_large.nemo"
NEMO_MAX_SYMBOLS = 10  # per encoder frame: NeMo's default and its FastConformer training config
NEMO_EXTRA = "pip install 'tokbench[nemo]'"
NEMO_MIN_SAMPLES = 400  # one 25 ms window at 16 kHz
BEAM_SIZE = 5


class UnknownBackendError(ValueError):
    pass


class BackendNotInstalledError(ModelNotAvailableError):
    """The back-end's package is not installed: the fix is an install, not a checkpoint."""


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


def nemo_checkpoint_file(checkpoint: str | Path) -> tuple[Path, Path]:
    """(folder, file) of a local NeMo checkpoint: a ``.nemo`` file, or a folder holding
    ``NEMO_FILE``."""
    path = Path(checkpoint).expanduser()
    if path.is_file() and path.suffix == ".nemo":
        return path.parent, path
    return path, path / NEMO_FILE


def nemo_model_id(checkpoint: str | Path | None) -> str:
    if checkpoint is None:
        return f"{NEMO_REPO}@{NEMO_REVISION}"
    from tokbench.io.hub import checkpoint_fingerprint

    folder, file = nemo_checkpoint_file(checkpoint)
    return checkpoint_fingerprint(folder, [file.name])


@functools.lru_cache(maxsize=4)
def load_nemo_transducer(device: str = "cpu", checkpoint: str | None = None) -> tuple[Any, str]:
    """(NeMo ``EncDecRNNTBPEModel`` in eval mode on ``device``, resolved revision), once per
    process per device, set to the protocol's decoding. ``checkpoint``: a ``.nemo`` file or a
    folder holding ``NEMO_FILE``; None: the pinned Hub revision. Raises
    ``ModelNotAvailableError`` when nemo-toolkit is not installed or the file cannot be had."""
    from tokbench.io.hub import hub_files

    try:
        from nemo.collections.asr.models import ASRModel
    except ImportError as exc:
        raise BackendNotInstalledError(
            f"the nemo-fastconformer ASR back-end needs nemo-toolkit ({NEMO_EXTRA}); importing "
            f"it failed: {exc}") from exc
    if checkpoint is not None:
        folder, file = nemo_checkpoint_file(checkpoint)
        files, source = hub_files(NEMO_REPO, NEMO_REVISION, [file.name], folder)
    else:
        files, source = hub_files(NEMO_REPO, NEMO_REVISION, [NEMO_FILE])
    path = next(iter(files.values()))
    try:
        model = ASRModel.restore_from(str(path), map_location=device)
    except Exception as exc:  # a damaged or foreign file: one line, not a traceback
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ModelNotAvailableError(
            f"{path} cannot be restored as a NeMo ASR model ({type(exc).__name__}: {first}): "
            f"pass the .nemo file of {NEMO_REPO}") from None
    if not hasattr(model, "decoding") or not hasattr(model.decoding, "rnnt_decoder_predictions_tensor"):
        raise ModelNotAvailableError(f"{path} holds a {type(model).__name__}, not a transducer: "
                                     f"pass the .nemo file of {NEMO_REPO}")
    from omegaconf import open_dict

    decoding = model.cfg.decoding
    with open_dict(decoding):
        decoding.strategy = "greedy_batch"
        if decoding.get("greedy") is None:
            decoding.greedy = {}
        decoding.greedy.max_symbols = NEMO_MAX_SYMBOLS
    model.change_decoding_strategy(decoding, verbose=False)
    featurizer = model.preprocessor.featurizer
    featurizer.dither = 0.0  # what NeMo's transcribe() sets (dither only acts in training anyway)
    featurizer.pad_to = 0
    model.eval()
    return model, source.resolved or str(source.revision)


def transcribe_nemo(model: Any, wavs16: Sequence[np.ndarray]) -> list[str]:
    """Greedy transducer transcripts of 16 kHz utterances, one at a time (no padding), the same
    computation as NeMo's ``transcribe`` (``forward`` then ``rnnt_decoder_predictions_tensor``)."""
    import torch

    device = next(model.parameters()).device
    texts = []
    for wav in wavs16:
        x = np.asarray(wav, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"expected mono 16 kHz audio of shape [T], got shape {x.shape}")
        if len(x) < NEMO_MIN_SAMPLES:  # no complete 25 ms analysis window: nothing to hear
            texts.append("")
            continue
        signal = torch.from_numpy(np.ascontiguousarray(x))[None].to(device)
        length = torch.tensor([len(x)], device=device)
        with torch.inference_mode():
            encoded, encoded_len = model.forward(input_signal=signal, input_signal_length=length)
            hyps = model.decoding.rnnt_decoder_predictions_tensor(encoded, encoded_len)
        texts.append(str(hyps[0].text).strip())
    return texts
