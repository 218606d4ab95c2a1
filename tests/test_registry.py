import sys
from importlib.metadata import EntryPoint

import pytest

from tokbench import registry
from tokbench.options import OptionError
from tokbench.registry import Entry, Registry, UnknownNameError, register
from tokbench.resolve import register_adapter_file, resolve_tokenizer


def test_listing_presets_imports_no_heavy_dependency():
    """Presets are declared beside their adapters, so listing names imports the family modules,
    but none of the heavy libraries the models need (they load with the weights)."""
    import subprocess

    code = ("import sys; from tokbench import registry; names = registry.tokenizers.names(); "
            "assert {'identity', 'mulaw', 'mimi', 'dac-44k-2q'} <= set(names), names; "
            "assert not registry.tokenizers.broken, registry.tokenizers.broken; "
            "heavy = [m for m in ('transformers', 'whisper', 'resemblyzer') if m in sys.modules]; "
            "assert not heavy, heavy; "
            "cls = registry.tokenizers.get('mimi').load(); assert cls.__name__ == 'MimiTokenizer'; "
            "assert 'transformers' not in sys.modules")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_presets_are_found_beside_their_adapters():
    entry = registry.tokenizers.get("mulaw")
    assert entry.target == "tokbench.adapters.pcm:MuLawTokenizer" and dict(entry.options) == {"bits": 8}
    assert registry.tokenizers.get("dac-24k-16q").target == "tokbench.adapters.dac:Dac24kTokenizer"


def test_a_family_that_fails_to_import_breaks_only_itself(tmp_path, monkeypatch):
    pkg = tmp_path / "fampkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "good.py").write_text(
        "from tokbench.registry import preset\n"
        "class Good:\n    presets = {'good-1': preset('fine', n=1)}\n")
    (pkg / "bad.py").write_text("import a_package_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("tokenizer", "fampkg", discover=True)
    assert reg.names() == ["good-1"] and reg.get("good-1").target == "fampkg.good:Good"
    assert "ModuleNotFoundError" in reg.broken["fampkg.bad"]
    with pytest.raises(UnknownNameError, match="fampkg.bad failed to import.*a_package_that_is"):
        reg.get("bad-1")


def test_typo_suggests_the_closest_name():
    with pytest.raises(UnknownNameError, match="did you mean 'mulaw'"):
        registry.tokenizers.get("mulaww")
    with pytest.raises(UnknownNameError, match="did you mean 'recon'"):
        registry.tasks.get("recno")
    with pytest.raises(UnknownNameError) as info:
        registry.tokenizers.get("zzzzzzzz")
    assert "did you mean" not in str(info.value) and "tokbench list tokenizers" in str(info.value)


def test_metric_declarations_cover_the_contract_names():
    from tokbench.metrics import get_metric

    contract = ["wer", "cer", "pesq_wb", "pesq_nb", "stoi", "estoi", "secs", "gpe", "vde", "ffe",
                "f0_corr", "mel_l1", "bitrate_nominal", "bitrate_entropy", "token_rate",
                "rtf_encode", "rtf_decode", "secs_target", "secs_source"]
    for name in contract:
        spec = get_metric(name)
        assert spec.direction in ("higher", "lower", "none")
    assert get_metric("pesq_wb").higher_is_better is True
    assert get_metric("wer").aggregation == "ratio" and get_metric("wer").scale == 100
    assert get_metric("bitrate_entropy").level == "corpus"
    # normalise maps to [0, 1] with 1 = best, in either direction
    assert get_metric("pesq_wb").normalise(4.644) == 1.0  # the P.862.2 mapping tops out at 4.644
    assert get_metric("wer").normalise(0.0) == 1.0 and get_metric("wer").normalise(100.0) == 0.0


def test_entry_point_group_registers_plugins(monkeypatch):
    ep = EntryPoint(name="plugged", value="tokbench.adapters.pcm:MuLawTokenizer", group="tokbench.adapters")
    reg = Registry("tokenizer", builtins=None, entry_point_group="tokbench.adapters")
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep] if group == "tokbench.adapters" else [])
    assert reg.names() == ["plugged"]
    assert reg.get("plugged").load().__name__ == "MuLawTokenizer"
    assert "entry point" in reg.get("plugged").origin


PLUGIN = '''
from dataclasses import dataclass
import torch
from tokbench.types import TokenizerBase, TokenizerMeta, Tokens, Audio

@dataclass(frozen=True)
class Opts:
    levels: int = 4

class SignTokenizer(TokenizerBase):
    """Quantises each sample to a few levels."""
    name = "sign-plugin"
    Options = Opts

    @classmethod
    def describe(cls, options):
        return TokenizerMeta(name="sign-plugin", family="test", kind="acoustic", sample_rate=16000,
                             frame_rate=16000.0, n_codebooks=1, codebook_sizes=(options.levels,))

    def encode(self, wav, lengths):
        q = ((wav.clamp(-1, 0.999) + 1) / 2 * self.options.levels).long()
        return Tokens(q[:, None, :], lengths)

    def decode(self, tokens, prompt=None):
        w = (tokens.codes[:, 0].float() + 0.5) / self.options.levels * 2 - 1
        return Audio(w, tokens.frame_lengths, 16000)
'''


def test_plugin_file_adapter(tmp_path):
    path = tmp_path / "my_adapter.py"
    path.write_text(PLUGIN)
    name = register_adapter_file(f"{path}:SignTokenizer")
    assert name == "sign-plugin"
    resolved = resolve_tokenizer("sign-plugin", {"levels": "8"})
    assert resolved.options.levels == 8 and resolved.meta.codebook_sizes == (8,)
    with pytest.raises(OptionError, match="did you mean 'SignTokenizer'"):
        register_adapter_file(f"{path}:SignTokeniser")
    with pytest.raises(OptionError, match="does not exist"):
        register_adapter_file(f"{tmp_path}/missing.py:X")


def test_duplicate_registration_is_an_error():
    reg = Registry("thing")
    register(reg, "a", "x:y")
    with pytest.raises(ValueError, match="already registered"):
        register(reg, "a", "x:z")
    assert isinstance(reg.get("a"), Entry)


def test_presets_and_overrides_resolve_to_explicit_options():
    r = resolve_tokenizer("mulaw")
    assert r.options.bits == 8 and r.variant == "mulaw"
    assert r.meta.codebook_sizes == (256,) and r.meta.bitrate_nominal == 128_000
    r4 = resolve_tokenizer("mulaw", {"bits": "4"})
    assert r4.options.bits == 4 and r4.variant == "mulaw+bits=4"
    assert r4.meta.options == {"bits": 4} and r4.meta.bitrate_nominal == 64_000
    with pytest.raises(OptionError, match="did you mean 'bits'"):
        resolve_tokenizer("mulaw", {"bist": "4"})
    with pytest.raises(OptionError, match="integer"):
        resolve_tokenizer("mulaw", {"bits": "four"})
    with pytest.raises(OptionError, match="bits must lie"):
        resolve_tokenizer("mulaw", {"bits": "40"})


def test_list_shows_a_family_that_failed_to_import(monkeypatch):
    from typer.testing import CliRunner

    from tokbench.cli import app

    registry.tokenizers.names()
    monkeypatch.setitem(registry.tokenizers.broken, "tokbench.adapters.fake",
                        "ModuleNotFoundError: No module named 'fakecodec'")
    result = CliRunner().invoke(app, ["list", "tokenizers"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # the table wraps long cells
    assert "tokbench.adapters.fake" in text and "unavailable:" in text and "'fakecodec'" in text
    assert "mimi-32" in text
