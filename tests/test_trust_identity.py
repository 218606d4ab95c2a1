"""Issue 13: a run's identity covers inputs by content, the adapter's code, library versions and
the utterance selection: changing any of them is a new run, never a resume with old figures."""

import numpy as np
import soundfile as sf

from tokbench.data import open_dataset
from tokbench.identity import adapter_code_version, identity_fields
from tokbench.results import load_results
from tokbench.results.store import iter_records, read_run_json
from tokbench.run.runner import run

NO_ASR = ["asr=false"]

PLUGIN = '''
from dataclasses import dataclass

from tokbench.types import Audio, TokenizerBase, TokenizerMeta, Tokens

GAIN = {gain}


@dataclass(frozen=True)
class Opts:
    pass


class Scaled(TokenizerBase):
    name = "scaled"
    Options = Opts

    @classmethod
    def describe(cls, options):
        return TokenizerMeta(name="scaled", family="test", kind="acoustic", sample_rate=16000,
                             frame_rate=16000.0, n_codebooks=1, codebook_sizes=(256,))

    def encode(self, wav, lengths):
        return Tokens(((wav.clamp(-1, 0.99) + 1) * 128).long()[:, None], lengths)

    def decode(self, tokens, prompt=None):
        wav = (tokens.codes[:, 0].float() / 128 - 1) * GAIN
        return Audio(wav, tokens.frame_lengths, 16000)
'''


def _speech(index, seconds=1.5, sr=16000, seed=0):
    """Real speech (the sample set's utterances from ``index`` on, at 16 kHz, repeated to
    ``seconds``): a tone would be a reference without speech, whose metrics are null."""
    from tokbench.io.audio import resample

    ds = open_dataset("sample")
    parts, n = [], int(sr * seconds)
    k = index % len(ds.utterances)
    while sum(len(x) for x in parts) < n:
        a = ds.load(ds.utterances[k % len(ds.utterances)])
        parts.append(resample(a.wav, a.sample_rate, sr))
        k += 1
    return np.concatenate(parts)[:n].astype(np.float32)


def test_editing_an_adapter_re_runs(tmp_path):
    plugin = tmp_path / "scaled.py"
    plugin.write_text(PLUGIN.format(gain=1.0))
    common = dict(limit=2, out=tmp_path / "out", overrides=NO_ASR, workers=0,
                  cache_dir=tmp_path / "c", device="cpu", log=lambda m: None)
    first = run("", "recon", "sample", adapter=f"{plugin}:Scaled", **common)
    plugin.write_text(PLUGIN.format(gain=0.25))
    second = run("", "recon", "sample", adapter=f"{plugin}:Scaled", **common)
    assert first.path != second.path
    s1 = first.summary.set_index("metric")["mean"]
    s2 = second.summary.set_index("metric")["mean"]
    assert s2["mel_l1"] > s1["mel_l1"]  # the edited decoder was run, not the old figures resumed
    code = read_run_json(second.path)["config"]["code"]
    assert code["source_sha256"] != read_run_json(first.path)["config"]["code"]["source_sha256"]


def test_limit_is_part_of_the_identity(tmp_path):
    common = dict(out=tmp_path / "out", overrides=NO_ASR, workers=0, cache_dir=tmp_path / "c",
                  device="cpu", log=lambda m: None)
    full = run("mulaw", "recon", "sample", limit=3, **common)
    part = run("mulaw", "recon", "sample", limit=2, **common)
    assert full.path != part.path
    assert len(list(iter_records(part.path))) == 2
    # each run reports its own n (not 3/3 resumed from the first)
    n = part.summary.set_index("metric")["n"]
    assert n["pesq_wb"] == 2


def test_a_middle_of_file_edit_is_rescored(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    sf.write(data / "a.wav", _speech(150), 16000)
    sf.write(data / "b.wav", _speech(200, seed=1), 16000)
    common = dict(out=tmp_path / "out", overrides=NO_ASR, workers=0, cache_dir=tmp_path / "c",
                  device="cpu", log=lambda m: None)
    first = run("mulaw", "recon", str(data), **common)
    wav = _speech(200, seed=1)
    mid = len(wav) // 2
    wav[mid - 4000:mid + 4000] = 0.9 * np.sign(np.sin(np.arange(8000) / 3))  # same length
    sf.write(data / "b.wav", wav, 16000)
    second = run("mulaw", "recon", str(data), **common)
    assert second.path != first.path
    df = load_results(tmp_path / "out")
    assert df["dataset"].nunique() == 2  # two contents, two datasets


def test_identity_fields_cover_code_libraries_and_selection():
    from tokbench.adapters.pcm import MuLawTokenizer as MuLaw

    fields = identity_fields(MuLaw, ["a", "b"])
    assert fields["code"]["source_sha256"] and "tokbench.adapters.pcm" in fields["code"]["modules"]
    assert {"torch", "numpy", "pesq", "transformers"} <= set(fields["libraries"])
    assert fields["selection"]["n_utterances"] == 2
    assert identity_fields(MuLaw, ["a"])["selection"] != fields["selection"]
    assert adapter_code_version(MuLaw) == adapter_code_version(MuLaw)


def test_score_rescores_an_output_replaced_in_the_middle(tmp_path):
    from tokbench.tasks.score import score_folders

    ref, hyp = tmp_path / "ref", tmp_path / "hyp"
    ref.mkdir()
    hyp.mkdir()
    wav = _speech(150, seconds=6.0)  # 192 kB: its middle is beyond the first/last 64 KiB
    sf.write(ref / "a.wav", wav, 16000)
    sf.write(ref / "b.wav", _speech(220, seconds=1.0), 16000)
    sf.write(hyp / "a.wav", wav, 16000)
    sf.write(hyp / "b.wav", _speech(220, seconds=1.0), 16000)
    common = dict(out=tmp_path / "out", asr=False, workers=0, cache_dir=tmp_path / "c",
                  log=lambda m: None)
    first = score_folders(ref, hyp, **common)
    noisy = wav.copy()
    mid = len(noisy) // 2
    noisy[mid - 16000:mid + 16000] = np.random.default_rng(1).uniform(-0.9, 0.9, 32000)
    sf.write(hyp / "a.wav", noisy, 16000)
    second = score_folders(ref, hyp, **common)
    assert second.path != first.path
    p1 = first.summary.set_index("metric").loc["pesq_wb", "mean"]
    p2 = second.summary.set_index("metric").loc["pesq_wb", "mean"]
    assert p2 < p1 - 0.5  # scored again, not the old figures
