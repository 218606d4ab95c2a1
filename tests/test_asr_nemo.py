"""The ``nemo-fastconformer`` ASR back-end on a tiny random FastConformer transducer built with
NeMo's own classes (EncDecRNNTBPEModel, the large model's preprocessor and dw_striding 8x
subsampling, a 40-piece sentencepiece BPE tokenizer), saved with ``save_to`` as a ``.nemo`` file
and loaded through the back-end's local-checkpoint path. Its transcripts are noise; the tests
check that they equal NeMo's own ``transcribe``, and the protocol, cache key and failure paths.

Needs the optional extra ``tokbench[nemo]`` (scripts/install.sh installs it for the tests); only
the not-installed path runs without it.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest
import torch

from tokbench.data import open_dataset
from tokbench.io.audio import resample
from tokbench.io.cache import Cache
from tokbench.metrics import asr_backends
from tokbench.metrics.asr import AsrScorer, _transcript_key, asr_protocol

HAS_NEMO = importlib.util.find_spec("nemo") is not None
needs_nemo = pytest.mark.skipif(
    not HAS_NEMO, reason="nemo-toolkit is not installed (pip install 'tokbench[nemo]'; "
                         "scripts/install.sh installs it for the tests)")
BACKEND = "nemo-fastconformer"
# tiny models: one torch thread (the greedy loop's many small LSTM steps crawl on two contended ones)
pytestmark = pytest.mark.usefixtures("one_torch_thread")
SENTENCES = ["the quick brown fox jumps over the lazy dog", "she sells sea shells by the sea shore",
             "a tiny random model says nothing useful", "speech tokens are evaluated here"]


def _tiny_config(tokenizer_dir: str):
    from omegaconf import OmegaConf

    d = 32
    return OmegaConf.create({
        "sample_rate": 16000,
        "model_defaults": {"enc_hidden": d, "pred_hidden": d, "joint_hidden": d},
        "tokenizer": {"dir": tokenizer_dir, "type": "bpe"},
        # the large model's front end: 80 mel bands, 25 ms windows every 10 ms, n_fft 512
        "preprocessor": {
            "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
            "sample_rate": 16000, "normalize": "per_feature", "window_size": 0.025,
            "window_stride": 0.01, "window": "hann", "features": 80, "n_fft": 512,
            "frame_splicing": 1, "dither": 1e-5, "pad_to": 0},
        "encoder": {
            "_target_": "nemo.collections.asr.modules.ConformerEncoder", "feat_in": 80,
            "feat_out": -1, "n_layers": 2, "d_model": d, "subsampling": "dw_striding",
            "subsampling_factor": 8, "subsampling_conv_channels": 16, "ff_expansion_factor": 2,
            "self_attention_model": "rel_pos", "n_heads": 2, "att_context_size": [-1, -1],
            "xscaling": True, "untie_biases": True, "pos_emb_max_len": 5000,
            "conv_kernel_size": 9, "conv_norm_type": "batch_norm", "dropout": 0.1,
            "dropout_pre_encoder": 0.1, "dropout_emb": 0.0, "dropout_att": 0.1},
        "decoder": {
            "_target_": "nemo.collections.asr.modules.RNNTDecoder", "normalization_mode": None,
            "random_state_sampling": False, "blank_as_pad": True,
            "prednet": {"pred_hidden": d, "pred_rnn_layers": 1, "t_max": None, "dropout": 0.2}},
        "joint": {
            "_target_": "nemo.collections.asr.modules.RNNTJoint", "log_softmax": None,
            "preserve_memory": False, "fuse_loss_wer": True, "fused_batch_size": 4,
            "jointnet": {"joint_hidden": d, "activation": "relu", "dropout": 0.2}},
        # deliberately not the protocol's decoding: the back-end must set its own
        "decoding": {"strategy": "greedy", "greedy": {"max_symbols": 2}},
        "loss": {"loss_name": "default"},
        "optim": None,
    })


@pytest.fixture(scope="module")
def nemo_dir(tmp_path_factory):
    """A folder holding a tiny random ``stt_en_fastconformer_transducer_large.nemo``."""
    if not HAS_NEMO:
        pytest.skip("nemo-toolkit is not installed (pip install 'tokbench[nemo]')")
    import sentencepiece as spm
    from nemo.collections.asr.models import EncDecRNNTBPEModel

    folder = tmp_path_factory.mktemp("nemo-fastconformer")
    tok = folder / "tokenizer"
    tok.mkdir()
    (tok / "text.txt").write_text("\n".join(SENTENCES * 5))
    spm.SentencePieceTrainer.train(
        input=str(tok / "text.txt"), model_prefix=str(tok / "tokenizer"), vocab_size=40,
        model_type="bpe", character_coverage=1.0, bos_id=-1, eos_id=-1, unk_id=0, pad_id=-1,
        minloglevel=2, num_threads=1)
    sp = spm.SentencePieceProcessor(model_file=str(tok / "tokenizer.model"))
    (tok / "vocab.txt").write_text("".join(sp.id_to_piece(i) + "\n" for i in range(len(sp))))
    torch.manual_seed(0)
    model = EncDecRNNTBPEModel(cfg=_tiny_config(str(tok)))
    with torch.no_grad():  # away from blank (the last class) so that greedy decoding says something
        model.joint.joint_net[-1].bias[-1] -= 1.0
    model.save_to(str(folder / asr_backends.NEMO_FILE))
    return folder


@pytest.fixture(scope="module")
def speech():
    ds = open_dataset("sample")
    out = []
    for utt in ds.utterances[:2]:
        a = ds.load(utt)
        out.append((utt, resample(a.wav, a.sample_rate, 16000).astype(np.float32)[:40000]))
    return out


@needs_nemo
@pytest.mark.slow
def test_nemo_backend_transcribes_like_nemo_transcribe_and_keys_the_cache(nemo_dir, speech,
                                                                          tmp_path):
    from nemo.collections.asr.models import ASRModel

    scorer = AsrScorer(checkpoint=str(nemo_dir), backend=BACKEND)
    assert scorer.available, scorer.reason
    assert scorer.precision == "fp32"
    # the protocol's decoding replaced the checkpoint's own (greedy, 2 symbols per frame)
    assert scorer.model.cfg.decoding.strategy == "greedy_batch"
    assert scorer.model.cfg.decoding.greedy.max_symbols == asr_backends.NEMO_MAX_SYMBOLS
    wavs = [w for _, w in speech] + [np.zeros(100, np.float32)]
    texts = scorer.transcribe(wavs)
    assert texts[-1] == ""  # shorter than one analysis window

    direct = ASRModel.restore_from(str(nemo_dir / asr_backends.NEMO_FILE), map_location="cpu")
    direct.change_decoding_strategy(scorer.model.cfg.decoding, verbose=False)
    expected = [h.text for h in direct.transcribe(wavs[:2], batch_size=1, verbose=False)]
    assert texts[:2] == expected
    assert all(texts[:2]) and texts[0] != texts[1]

    cache = Cache(tmp_path)
    items = [(u.id, w) for u, w in speech]
    truth = scorer.ground_truth(cache, "sample", "r1", items)
    saved = [json.loads(p.read_text()) for p in tmp_path.rglob("*.json")]
    assert len(saved) == 2 and {d["value"]["backend"] for d in saved} == {BACKEND}
    assert truth == dict(zip([u.id for u, _ in speech], texts[:2], strict=True))

    p = asr_protocol(True, checkpoint=str(nemo_dir), backend=BACKEND, device="cuda")
    assert p["backend"] == BACKEND and p["package"] == "nemo-toolkit"
    assert p["precision"] == "fp32" and "greedy transducer" in p["decoding"]
    assert p["model"] == scorer.model_id and p["model"].startswith("local-sha256:")
    # the .nemo file itself is the same checkpoint as the folder holding it
    assert asr_backends.nemo_model_id(nemo_dir / asr_backends.NEMO_FILE) == p["model"]


def test_nemo_backend_is_its_own_protocol_and_transcript_cache_key():
    nemo = asr_protocol(True, backend=BACKEND, device="cpu")
    hubert = asr_protocol(True, backend="hubert-ctc", device="cpu")
    assert nemo["model"] == (f"{asr_backends.NEMO_REPO}@{asr_backends.NEMO_REVISION}")
    assert nemo["backend"] != hubert["backend"] and nemo["decoding"] != hubert["decoding"]
    keys = {_transcript_key("d", "r", "u", "m", None, b, "fp32")
            for b in ("whisper", "hubert-ctc", BACKEND)}
    assert len(keys) == 3


@needs_nemo
def test_nemo_offline_without_the_file_is_null_with_the_reason(monkeypatch, speech, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    scorer = AsrScorer(backend=BACKEND)
    assert not scorer.available
    assert asr_backends.NEMO_REPO in scorer.reason and "tokbench prefetch" in scorer.reason
    assert "asr_checkpoint" in scorer.reason
    [s] = scorer.score(["some words"], [speech[0][1]])
    assert s.values == {"wer": None, "cer": None} and asr_backends.NEMO_REPO in s.reasons["wer"]

    empty = tmp_path / "empty"
    empty.mkdir()
    bad = AsrScorer(checkpoint=str(empty), backend=BACKEND)
    assert not bad.available and asr_backends.NEMO_FILE in bad.reason


def test_nemo_not_installed_names_the_extra(monkeypatch):
    # a None entry in sys.modules makes the import fail as if the package were absent
    monkeypatch.setitem(sys.modules, "nemo.collections.asr.models", None)
    asr_backends.load_nemo_transducer.cache_clear()
    scorer = AsrScorer(backend=BACKEND)
    assert not scorer.available
    assert "tokbench[nemo]" in scorer.reason and "asr_checkpoint" not in scorer.reason


def test_prefetch_lists_the_nemo_file_for_the_backend(monkeypatch, tmp_path):
    from tokbench.suites.assets import needed_assets, prefetch

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assets = prefetch(needed_assets(None, None, "recon", None, {"asr_backend": BACKEND}),
                      download=False)
    [asset] = [a for a in assets if a.kind == "asr model"]
    assert asset.source == f"https://huggingface.co/{asr_backends.NEMO_REPO}@main"
    assert asset.state == "missing" and BACKEND in asset.needed_by
