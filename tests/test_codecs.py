"""Neural codec adapters (Mimi, EnCodec, DAC) on tiny random checkpoints saved with
save_pretrained and loaded back through the adapters' own loading code (tiny models keep the real rates and codebooks).

These check plumbing and invariants (call arguments, rates, lengths, batching, loading), never
audio quality: the weights are random.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tokbench.adapters.dac import DAC_16K_REVISION, DAC_24K_REVISION, DAC_44K_REVISION
from tokbench.adapters.encodec import ENCODEC_24K_REVISION
from tokbench.adapters.mimi import MIMI_REVISION
from tokbench.io.hub import ModelNotAvailableError, checkpoint_fingerprint
from tokbench.options import OptionError
from tokbench.registry import tokenizers
from tokbench.resolve import load_tokenizer, resolve_tokenizer
from tokbench.testing import measure_reach, speechlike_items
from tokbench.types import Audio, Tokens

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def checkpoint_for(tiny_checkpoint):
    """Preset name -> the tiny checkpoint folder of its model (built once per adapter class)."""
    return lambda preset: tiny_checkpoint(resolve_tokenizer(preset).cls)[1]


@pytest.fixture(scope="session")
def loaded(checkpoint_for):
    """Preset name -> adapter loaded from its tiny checkpoint (each loaded once)."""
    cache: dict[str, object] = {}

    def get(preset: str):
        if preset not in cache:
            cache[preset] = load_tokenizer(preset, checkpoint=str(checkpoint_for(preset)))
        return cache[preset]

    return get


# --- presets -> explicit call arguments (no weights needed) -----------------------------------

PRESET_CALLS = {
    "mimi": {"num_quantizers": 8},
    "mimi-32": {"num_quantizers": 32},
    "encodec-24k": {"bandwidth": 6.0},
    "encodec-24k-1.5kbps": {"bandwidth": 1.5},
    "encodec-24k-3kbps": {"bandwidth": 3.0},
    "encodec-24k-6kbps": {"bandwidth": 6.0},
    "encodec-24k-12kbps": {"bandwidth": 12.0},
    "encodec-24k-24kbps": {"bandwidth": 24.0},
    "dac-16k": {"n_quantizers": 12},
    "dac-16k-8q": {"n_quantizers": 8},
    "dac-16k-2q": {"n_quantizers": 2},
    "dac-24k": {"n_quantizers": 32},
    "dac-24k-8q": {"n_quantizers": 8},
    "dac-24k-2q": {"n_quantizers": 2},
    "dac-44k": {"n_quantizers": 9},
    "dac-44k-4q": {"n_quantizers": 4},
}


@pytest.mark.parametrize("preset", sorted(PRESET_CALLS))
def test_preset_resolves_to_explicit_call_arguments(preset):
    r = resolve_tokenizer(preset)
    call = r.cls.call_kwargs(r.options)
    assert call == PRESET_CALLS[preset]
    assert None not in call.values()
    # the count of codebooks the call yields is what the metadata declares
    n = call.get("num_quantizers") or call.get("n_quantizers") or int(call["bandwidth"] * 4 / 3)
    assert r.meta.n_codebooks == n and r.meta.options == r.options_dict()


def test_other_dac_presets_pass_the_count_in_their_name():
    codec_presets = {n for n in tokenizers.names() if n.startswith(("mimi", "encodec", "dac"))}
    untested = codec_presets - set(PRESET_CALLS)
    # the remaining presets follow the same pattern (-Nq); check them too
    for name in untested:
        assert name.startswith("dac-") and name.endswith("q")
        assert resolve_tokenizer(name).cls.call_kwargs(resolve_tokenizer(name).options) == {
            "n_quantizers": int(name.rsplit("-", 1)[1][:-1])}


@pytest.mark.parametrize("preset, sample_rate, frame_rate, n_q, size, bps", [
    ("mimi", 24000, 12.5, 8, 2048, 1100.0),
    ("mimi-32", 24000, 12.5, 32, 2048, 4400.0),
    ("encodec-24k", 24000, 75.0, 8, 1024, 6000.0),
    ("encodec-24k-1.5kbps", 24000, 75.0, 2, 1024, 1500.0),
    ("encodec-24k-24kbps", 24000, 75.0, 32, 1024, 24000.0),
    ("dac-16k", 16000, 50.0, 12, 1024, 6000.0),
    ("dac-24k", 24000, 75.0, 32, 1024, 24000.0),
    ("dac-24k-8q", 24000, 75.0, 8, 1024, 6000.0),
    ("dac-44k", 44100, 44100 / 512, 9, 1024, 44100 / 512 * 90),
])
def test_meta_rates_and_bitrates(preset, sample_rate, frame_rate, n_q, size, bps):
    meta = resolve_tokenizer(preset).meta
    assert meta.sample_rate == sample_rate and meta.frame_rate == frame_rate
    assert meta.n_codebooks == n_q and meta.codebook_sizes == (size,) * n_q
    assert meta.bitrate_nominal == pytest.approx(bps)
    assert meta.can("decode") and meta.can("embed") and not meta.can("speaker_prompt")


def test_revisions_are_pinned_commits():
    expected = {"mimi": ("kyutai/mimi", MIMI_REVISION),
                "encodec-24k": ("facebook/encodec_24khz", ENCODEC_24K_REVISION),
                "dac-16k": ("descript/dac_16khz", DAC_16K_REVISION),
                "dac-24k": ("descript/dac_24khz", DAC_24K_REVISION),
                "dac-44k": ("descript/dac_44khz", DAC_44K_REVISION)}
    for preset, (repo, rev) in expected.items():
        src = resolve_tokenizer(preset).meta.source
        assert (src.repo_id, src.revision) == (repo, rev)
        assert len(rev) == 40 and int(rev, 16) >= 0


@pytest.mark.parametrize("preset, override, message", [
    ("mimi", {"n_codebooks": "33"}, r"n_codebooks must lie in \[1, 32\] \(this model has 32"),
    ("mimi", {"n_codebooks": "0"}, r"n_codebooks must lie in \[1, 32\]"),
    ("encodec-24k", {"bandwidth": "5"}, "bandwidth must be one of"),
    ("dac-44k", {"n_codebooks": "10"}, r"n_codebooks must lie in \[1, 9\]"),
    ("dac-16k", {"n_quantizers": "4"}, "unknown option 'n_quantizers'.*known options: n_codebooks"),
])
def test_invalid_options_are_refused(preset, override, message):
    with pytest.raises(OptionError, match=message):
        resolve_tokenizer(preset, override)


def test_set_override_changes_the_call():
    r = resolve_tokenizer("encodec-24k", {"bandwidth": "12"})
    assert r.cls.call_kwargs(r.options) == {"bandwidth": 12.0} and r.meta.n_codebooks == 16
    assert r.variant == "encodec-24k+bandwidth=12"


# --- encode / decode on the tiny checkpoints ---------------------------------------------------

FAMILY_PRESETS = ["mimi", "encodec-24k", "dac-16k", "dac-24k", "dac-44k"]


@dataclass
class Roundtrip:
    tok: object
    items: list[torch.Tensor]
    batch: Audio
    tokens: Tokens
    decoded: Audio
    singles: list[Tokens]
    calls: list[dict]


def _items(sample_rate: int, hop: int) -> list[torch.Tensor]:
    """Odd lengths: several frames plus a few samples (more than EnCodec's 7-frame minimum
    except for Mimi's long frames), two frames plus one sample, one sample."""
    return speechlike_items([(3 if hop > 1000 else 9) * hop + 7, 2 * hop + 1, 1], sample_rate, 7)


@pytest.fixture(scope="module")
def roundtrip(loaded):
    """Per family: a batch of odd-length items encoded and decoded together and one at a time,
    recording the keyword arguments the model's encode actually received."""
    cache: dict[str, Roundtrip] = {}

    def get(preset: str) -> Roundtrip:
        if preset in cache:
            return cache[preset]
        tok = loaded(preset)
        calls: list[dict] = []
        real_encode = tok.model.encode

        def spy(*args, **kwargs):
            calls.append(kwargs)
            return real_encode(*args, **kwargs)

        tok.model.encode = spy
        try:
            items = _items(tok.meta.sample_rate, tok.hop_length)
            batch = Audio.from_list(items, tok.meta.sample_rate)
            noisy = batch.wav.clone()
            for b, n in enumerate(batch.lengths.tolist()):
                noisy[b, n:] = 0.5  # garbage past the lengths must not matter
            tokens = tok.encode(noisy, batch.lengths)
            decoded = tok.decode(tokens)  # encode recorded the input lengths
            singles = [tok.encode(x[None], torch.tensor([len(x)])) for x in items]
        finally:
            del tok.model.encode
        cache[preset] = Roundtrip(tok, items, batch, tokens, decoded, singles, calls)
        return cache[preset]

    return get


@pytest.mark.parametrize("preset", FAMILY_PRESETS)
def test_model_receives_the_explicit_arguments(roundtrip, preset):
    rt = roundtrip(preset)
    assert rt.calls and all(
        {k: c[k] for k in PRESET_CALLS[preset]} == PRESET_CALLS[preset] for c in rt.calls)
    assert rt.tok.encode_kwargs() == PRESET_CALLS[preset]


@pytest.mark.parametrize("preset", FAMILY_PRESETS)
def test_padding_frames_and_samples_are_zero(roundtrip, preset):
    """What the framed base adds to the contract (tests/test_conformance.py checks the rest):
    code 0 on padding frames, zero samples past each item, whole frames for bare tokens."""
    rt = roundtrip(preset)
    tok, tokens, lengths = rt.tok, rt.tokens, rt.batch.lengths
    assert tok.meta.sample_rate / tok.meta.frame_rate == tok.hop_length
    assert len(torch.unique(tokens.item(0))) > 3  # the random codebooks are used
    for b, f in enumerate(tokens.frame_lengths.tolist()):
        assert not tokens.codes[b, :, f:].any()  # padding frames hold code 0
    assert rt.decoded.wav.shape[1] == int(lengths.max())
    for b, n in enumerate(lengths.tolist()):
        assert not rt.decoded.wav[b, n:].any() and rt.decoded.item(b).abs().sum() > 0
    # tokens that do not know their input length (a cache, an LM): the whole frames
    bare = Tokens(rt.singles[1].codes, rt.singles[1].frame_lengths)
    natural = tok.decode(bare)
    assert natural.lengths.tolist() == [int(rt.singles[1].frame_lengths[0]) * tok.hop_length]
    assert torch.allclose(natural.item(0)[: len(rt.items[1])],
                          tok.decode(rt.singles[1]).item(0))


@pytest.mark.parametrize("preset", ["dac-16k", "dac-44k"])
def test_dac_context_covers_its_receptive_field(loaded, preset):
    """context_frames must cover how far ahead DAC looks: a change in the input (latents)
    reaches the encoder output (samples) at most that many frames earlier, above float32
    rounding; any change at all reaches one frame further in the decoder."""
    tok = loaded(preset)
    hop, n = tok.hop_length, 30
    x, z = torch.zeros(1, 1, n * hop), torch.zeros(1, tok.model.config.hidden_size, n)
    enc, dec = (measure_reach(tok.model.encoder, x, 20, hop, 1, atol=1e-7),
                measure_reach(tok.model.decoder, z, 20, 1, hop, atol=1e-7))
    assert (enc, dec) == (5, 7) and max(enc, dec) <= tok.context_frames
    exact = (measure_reach(tok.model.encoder, x, 20, hop, 1),
             measure_reach(tok.model.decoder, z, 20, 1, hop))
    assert exact == (8, 9)


def test_encodec_short_items_need_min_frames(roundtrip):
    """EnCodec's left-edge reflection reads 6 frames ahead: without ``min_frames`` a short item
    encodes differently in a batch (this is why the setting exists)."""
    rt = roundtrip("encodec-24k")
    tok, short = rt.tok, rt.items[2]  # one sample
    tok.min_frames = 1
    try:
        alone = tok.encode(short[None], torch.tensor([1])).item(0)
    finally:
        del tok.min_frames
    assert not torch.equal(alone, rt.tokens.item(2))
    assert torch.equal(rt.singles[2].item(0), rt.tokens.item(2))


@pytest.mark.parametrize("preset, fewer", [("mimi", "mimi-32"), ("encodec-24k", "encodec-24k-1.5kbps"),
                                           ("dac-24k", "dac-24k-2q")])
def test_fewer_codebooks_are_a_prefix_of_more(roundtrip, loaded, preset, fewer):
    """Residual VQ: the first N codes do not depend on how many follow (or mimi-32 contains
    mimi)."""
    rt = roundtrip(preset)
    other = loaded(fewer)
    got = other.encode(rt.batch.wav, rt.batch.lengths)
    q = min(got.n_codebooks, rt.tokens.n_codebooks)
    assert torch.equal(got.codes[:, :q], rt.tokens.codes[:, :q])
    assert torch.equal(got.frame_lengths, rt.tokens.frame_lengths)


def _dequantized(tok, codes: torch.Tensor, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the model's own dequantization of ``codes``, the same computed from ``emb``), [B, D, F]."""
    m = tok.model
    if tok.family == "encodec":
        return m.quantizer.decode(codes.transpose(0, 1)), emb.sum(1).transpose(1, 2)
    if tok.family == "dac":
        mine = sum(m.quantizer.quantizers[q].out_proj(emb[:, q].transpose(1, 2))
                   for q in range(codes.shape[1]))
        return m.quantizer.from_codes(codes)[0], mine
    sem, ac = m.quantizer.semantic_residual_vector_quantizer, m.quantizer.acoustic_residual_vector_quantizer
    mine = sem.output_proj(emb[:, :1].sum(1).transpose(1, 2)) + ac.output_proj(
        emb[:, 1:].sum(1).transpose(1, 2))
    return m.quantizer.decode(codes), mine


@pytest.mark.parametrize("preset", FAMILY_PRESETS)
def test_embed_gives_the_codebook_vectors(roundtrip, preset):
    rt = roundtrip(preset)
    tok, tokens = rt.tok, Tokens(rt.tokens.codes[:2], rt.tokens.frame_lengths[:2])
    emb = tok.embed(tokens)
    b, q, f = tokens.codes.shape
    assert emb.dim() == 4 and emb.shape[:3] == (b, q, f) and emb.shape[3] > 1
    with torch.inference_mode():
        theirs, mine = _dequantized(tok, tokens.codes, emb)
    for i, n in enumerate(tokens.frame_lengths.tolist()):
        assert torch.allclose(theirs[i, :, :n], mine[i, :, :n], atol=1e-5, rtol=1e-4)
        assert not emb[i, :, n:].any()


def test_decode_and_encode_refuse_bad_input(loaded):
    tok = loaded("dac-16k")
    with pytest.raises(TypeError, match="float"):
        tok.encode(torch.zeros(1, 400, dtype=torch.long), torch.tensor([400]))
    good = tok.encode(torch.zeros(1, 400), torch.tensor([400]))
    with pytest.raises(ValueError, match="12 codebooks"):
        tok.decode(Tokens(good.codes[:, :4], good.frame_lengths))
    with pytest.raises(ValueError, match=r"\[0, 1024\)"):
        tok.decode(Tokens(good.codes + 1024, good.frame_lengths))
    with pytest.raises(ValueError, match="prompt"):
        tok.decode(good, prompt=Audio(torch.zeros(1, 10), torch.tensor([10]), 16000))
    empty = tok.encode(torch.zeros(2, 5), torch.tensor([0, 0]))
    assert empty.codes.shape == (2, 12, 0) and tok.decode(empty).wav.shape == (2, 0)


# --- loading: checkpoint folder, Hub cache, offline errors, config checks ----------------------


def test_checkpoint_round_trip_and_provenance(loaded, checkpoint_for, tmp_path):
    tok = loaded("encodec-24k")
    src = tok.meta.source
    assert src.repo_id == "facebook/encodec_24khz" and src.revision is None
    assert src.local_path == str(Path(checkpoint_for("encodec-24k")).resolve())
    assert src.resolved == checkpoint_fingerprint(checkpoint_for("encodec-24k"))
    assert src.resolved.startswith("local-sha256:")
    # save what the adapter loaded, load it again through --checkpoint: same codes
    tok.model.save_pretrained(tmp_path / "copy")
    again = load_tokenizer("encodec-24k", checkpoint=str(tmp_path / "copy"))
    x = _items(24000, 320)[1][None]
    n = torch.tensor([x.shape[1]])
    assert torch.equal(again.encode(x, n).codes, tok.encode(x, n).codes)
    # different weights, different fingerprint (so caches never mix checkpoints)
    with torch.no_grad():
        again.model.quantizer.layers[0].codebook.embed[0, 0] += 1.0
    again.model.save_pretrained(tmp_path / "changed")
    assert checkpoint_fingerprint(tmp_path / "changed") != checkpoint_fingerprint(tmp_path / "copy")


def test_bad_checkpoint_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="no config.json"):
        load_tokenizer("mimi", checkpoint=str(tmp_path))


def _fake_hub_cache(root: Path, repo_id: str, revision: str, files_from: Path) -> Path:
    """Lay out a Hub cache (models--org--name/snapshots/<sha>, refs/main) holding a checkpoint."""
    repo = root / "hub" / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    shutil.copytree(files_from, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot


def test_loads_the_pinned_revision_from_the_hub_cache(checkpoint_for, tmp_path, monkeypatch):
    snapshot = _fake_hub_cache(tmp_path, "kyutai/mimi", MIMI_REVISION, checkpoint_for("mimi"))
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    tok = load_tokenizer("mimi")
    src = tok.meta.source
    assert (src.repo_id, src.revision, src.resolved) == ("kyutai/mimi", MIMI_REVISION, MIMI_REVISION)
    assert src.local_path is None
    assert checkpoint_fingerprint(snapshot) == MIMI_REVISION  # a snapshot folder is its commit


@pytest.mark.parametrize("preset, repo", [("mimi", "kyutai/mimi"),
                                          ("encodec-24k", "facebook/encodec_24khz"),
                                          ("dac-44k", "descript/dac_44khz")])
def test_offline_and_not_cached_names_the_repo_and_both_fixes(preset, repo, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError) as info:
        load_tokenizer(preset)
    message = str(info.value)
    assert f"{repo} is not cached and the Hub is unreachable" in message
    assert "run `tokbench prefetch`" in message and "--checkpoint DIR" in message


def test_config_disagreeing_with_the_declared_rates_is_refused(checkpoint_for, tmp_path):
    """Like the old dac_44khz revision whose config declared the wrong sampling rate."""
    bad = shutil.copytree(checkpoint_for("dac-44k"), tmp_path / "dac44-wrong-rate")
    config = json.loads((bad / "config.json").read_text())
    config["sampling_rate"] = 16000
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"sampling_rate 16000 != 44100.*hop 512 x frame rate 86\.13"):
        load_tokenizer("dac-44k", checkpoint=str(bad))
    with pytest.raises(ValueError, match="hop length 320 != 512"):
        load_tokenizer("dac-44k", checkpoint=str(checkpoint_for("dac-24k")))


# --- end to end through the command line --------------------------------------------------------


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    """One tokbench cache for the end-to-end runs: reference-side features are computed once."""
    return tmp_path_factory.mktemp("e2e-cache")


# End to end through `tokbench run`. Most of the time goes to scoring the output (WORLD Harvest,
# PESQ), not to the tiny codecs.
@pytest.mark.slow
@pytest.mark.parametrize("preset", ["mimi", "encodec-24k-1.5kbps", "dac-16k-4q"])
def test_cli_recon_run_with_checkpoint(preset, checkpoint_for, shared_cache, tmp_path, monkeypatch):
    from tokbench.cli import app
    from tokbench.results.store import iter_records

    monkeypatch.setenv("TOKBENCH_CACHE", str(shared_cache))
    out = tmp_path / "results"
    r = CliRunner().invoke(app, ["run", "--tokenizer", preset, "--checkpoint", str(checkpoint_for(preset)),
                                 "--task", "recon", "--dataset", "sample", "--limit", "2",
                                 "--set", "asr=false", "--workers", "0", "--device", "cpu",
                                 "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    runs = [p.parent for p in out.rglob("run.json")]
    assert len(runs) == 1 and preset in str(runs[0])
    records = list(iter_records(runs[0]))
    assert len(records) == 2
    for rec in records:
        assert rec["metrics"]["mel_l1"] is not None and rec["metrics"]["rtf_encode"] > 0
        assert 0 <= rec["extra"]["length_mismatch"] < checkpoint_hop(preset)
    info = json.loads((runs[0] / "run.json").read_text())
    assert info["tokenizer_meta"]["source"]["resolved"].startswith("local-sha256:")
    assert info["config"]["tokenizer_revision"] == info["tokenizer_meta"]["source"]["resolved"]


def checkpoint_hop(preset: str) -> int:
    return {"mimi": 1920, "encodec-24k-1.5kbps": 320, "dac-16k-4q": 320}[preset]
