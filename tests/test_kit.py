"""The adapter kit itself: check_tokenizer catches what it claims to, the batching settings are
needed where they are declared, the context helper measures, FirstCodebooks and hub_files
(docs/adapter-contract.md)."""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from tokbench.adapters.framed import FirstCodebooks, FramedCodec, require
from tokbench.io.hub import ModelNotAvailableError, checkpoint_fingerprint, hub_files
from tokbench.resolve import load_tokenizer, resolve_tokenizer
from tokbench.testing import ContractError, check_tokenizer, measure_context
from tokbench.types import Audio, ModelSource, TokenizerSetupError, Tokens

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_tok(tiny_checkpoint):
    loaded: dict[str, object] = {}

    def get(preset: str):
        if preset not in loaded:
            checkpoint = tiny_checkpoint(resolve_tokenizer(preset).cls)[1]
            loaded[preset] = load_tokenizer(preset, checkpoint=str(checkpoint))
        return loaded[preset]

    return get


def test_check_tokenizer_catches_encodec_without_its_minimum(tiny_tok):
    """EnCodec's left-edge reflection reads 6 frames ahead: without ``min_frames`` a short item
    is computed differently alone and in a batch, and the check says so."""
    tok = tiny_tok("encodec-24k")
    check_tokenizer(tok)
    tok.min_frames = 1
    try:
        with pytest.raises(ContractError, match="batched"):
            check_tokenizer(tok)
    finally:
        del tok.min_frames


def test_dac_context_frames_make_batching_exact(tiny_tok):
    """DAC without its 8 context frames stays within the declared 60 dB on the tiny model, but
    its batched decode is no longer equal to one at a time up to float rounding."""
    tok = tiny_tok("dac-16k")
    with_context = check_tokenizer(tok)
    tok.context_frames = 0
    try:
        without = check_tokenizer(tok)
    finally:
        del tok.context_frames
    assert with_context.snr_db > 110 and without.snr_db < 90


def test_check_tokenizer_catches_untrimmed_decode_and_bad_codes(tiny_tok, monkeypatch):
    tok = tiny_tok("mimi")
    real_decode = type(tok).decode

    def untrimmed(self, tokens, prompt=None, **kw):
        return real_decode(self, Tokens(tokens.codes, tokens.frame_lengths), prompt)

    monkeypatch.setattr(type(tok), "decode", untrimmed)
    with pytest.raises(ContractError, match="decoded lengths .* != input lengths"):
        check_tokenizer(tok)
    monkeypatch.undo()
    real_encode = type(tok).encode

    def out_of_range(self, wav, lengths):
        t = real_encode(self, wav, lengths)
        return Tokens(t.codes + 2048, t.frame_lengths, t.sample_lengths)

    monkeypatch.setattr(type(tok), "encode", out_of_range)
    with pytest.raises(ContractError, match=r"outside \[0, 2048\) of codebook_sizes"):
        check_tokenizer(tok)


def test_check_tokenizer_catches_unfilled_codebooks(tiny_tok, monkeypatch):
    tok = tiny_tok("dac-24k-2q")
    real = type(tok).encode
    monkeypatch.setattr(type(tok), "encode", lambda self, w, n: Tokens(
        torch.zeros_like(real(self, w, n).codes), real(self, w, n).frame_lengths,
        n.to(torch.long)))
    with pytest.raises(ContractError, match="1 distinct code"):
        check_tokenizer(tok)


def test_measure_context_finds_dacs_reach_and_mimis_causality(tiny_tok):
    dac = tiny_tok("dac-16k")
    dac.context_frames = 0
    try:
        reach = measure_context(dac)
    finally:
        del dac.context_frames
    # through the codes (quantisation hides small changes) and the samples (any change counts)
    assert 0 < reach.encode <= 8 and reach.decode == 9
    assert measure_context(tiny_tok("mimi"), frames=12, at=6).frames == 0


def test_per_item_mode_calls_the_model_one_item_at_a_time(tiny_tok, monkeypatch):
    tok = tiny_tok("mimi")
    shapes: list[tuple[int, ...]] = []
    real = type(tok)._encode_frames

    def spy(self, x):
        shapes.append(tuple(x.shape))
        return real(self, x)

    monkeypatch.setattr(type(tok), "_encode_frames", spy)
    batch = Audio.from_list([torch.zeros(5000), torch.zeros(1)], 24_000)
    together = tok.encode(batch.wav, batch.lengths)
    monkeypatch.setattr(type(tok), "per_item", True)
    alone = tok.encode(batch.wav, batch.lengths)
    assert shapes == [(2, 1, 3 * 1920), (1, 1, 3 * 1920), (1, 1, 1920)]
    assert torch.equal(alone.codes, together.codes)
    check_tokenizer(tok)


def test_first_codebooks_checks_the_family_maximum():
    @dataclass(frozen=True)
    class Six(FirstCodebooks):
        n_codebooks: int = 6
        maximum: ClassVar[int] = 6

    assert Six().n_codebooks == 6 and Six(1).n_codebooks == 1
    with pytest.raises(ValueError, match=r"must lie in \[1, 6\] \(this model has 6 codebooks\), got 7"):
        Six(7)
    with pytest.raises(ValueError, match="must be an integer"):
        Six(True)
    with pytest.raises(TypeError, match="must set the family's maximum"):
        FirstCodebooks(2)


def _fake_snapshot(root, repo_id: str, commit: str, files: dict[str, bytes]):
    snapshot = root / "hub" / ("models--" + repo_id.replace("/", "--")) / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, data in files.items():
        (snapshot / name).write_bytes(data)
    refs = snapshot.parent.parent / "refs"
    refs.mkdir()
    (refs / "main").write_text(commit)
    return snapshot


def test_hub_files_from_the_cache_record_the_resolved_commit(tmp_path, monkeypatch):
    commit = "a" * 40
    _fake_snapshot(tmp_path, "org/codec", commit, {"config.json": b"{}", "model.bin": b"w"})
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    paths, source = hub_files("org/codec", commit, ["config.json", "model.bin"])
    assert paths["model.bin"].read_bytes() == b"w"
    assert (source.repo_id, source.revision, source.resolved) == ("org/codec", commit, commit)
    with pytest.raises(ModelNotAvailableError, match=r"org/codec is not cached and the Hub is "
                       r"unreachable.*run `tokbench prefetch`.*online, or pass --checkpoint DIR"):
        hub_files("org/codec", commit, ["config.json", "missing.bin"])


def test_hub_files_from_a_checkpoint_folder(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.bin").write_bytes(b"w1")
    (folder / "notes.json").write_text("unrelated")
    paths, source = hub_files("org/codec", "b" * 40, ["config.json", "model.bin"], folder)
    assert source.revision is None and source.local_path == str(folder.resolve())
    assert source.resolved == checkpoint_fingerprint(folder, ["config.json", "model.bin"])
    (folder / "notes.json").write_text("changed")  # not one of the files: same fingerprint
    assert hub_files("org/codec", "b" * 40, ["config.json", "model.bin"], folder)[1] == source
    other = shutil.copytree(folder, tmp_path / "other")
    (other / "model.bin").write_bytes(b"w2")
    assert hub_files("org/codec", "b" * 40, ["config.json", "model.bin"], other)[1].resolved != source.resolved
    with pytest.raises(ModelNotAvailableError, match="lacks model.safetensors"):
        hub_files("org/codec", "b" * 40, ["model.safetensors"], folder)


def test_a_missing_optional_package_names_the_extra():
    assert require("json", "all", needed_by="x").dumps([1]) == "[1]"
    with pytest.raises(TokenizerSetupError, match=r"snac-24k needs the Python package "
                       r"'no_such_codec_package'.*pip install 'tokbench\[snac\]'"):
        require("no_such_codec_package", "snac", needed_by="snac-24k")


@dataclass(frozen=True)
class _NoOptions:
    pass


class _Resampling(FramedCodec):
    """16 kHz in, 24 kHz out (as NeuCodec): one code per 10 ms, the frame mean quantised."""

    Options = _NoOptions
    name = family = "toy-resampling"
    sample_rate, output_sample_rate, hop_length, codebook_size = 16_000, 24_000, 160, 64
    capabilities = frozenset({"decode"})

    @classmethod
    def n_codebooks_for(cls, options: _NoOptions) -> int:
        return 1

    def _load(self, checkpoint: str | None, device: str) -> ModelSource:
        return ModelSource()

    def _encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        means = x[:, 0].reshape(x.shape[0], -1, self.hop_length).mean(-1)
        return ((means.clamp(-1, 1) + 1) / 2 * 63).round().long()[:, None]

    def _decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        return (codes[:, 0].float() / 63 * 2 - 1).repeat_interleave(self.output_hop(), dim=-1)


def test_an_output_rate_other_than_the_input_rate():
    tok = _Resampling(_NoOptions())
    meta = tok.meta
    assert (meta.decoded_rate, type(tok).output_hop(), meta.decoded_length(161)) == (24_000, 240, 242)
    assert meta.to_dict()["output_sample_rate"] == 24_000
    assert resolve_tokenizer("mulaw").meta.to_dict()["output_sample_rate"] == 16_000
    report = check_tokenizer(tok, min_distinct=1)
    out = tok.decode(tok.encode(torch.zeros(1, 161), torch.tensor([161])))
    assert out.sample_rate == 24_000 and out.lengths.tolist() == [242] and report.snr_db == math.inf
