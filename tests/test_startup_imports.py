"""Start-up cost: what importing the CLI, the ASR metric module and starting `tokbench score`
loads (issue 21: with --no-asr the main process paid ~1 s of CPU and ~300 MB for Whisper and
torch it never used, and imported them before starting the metric workers)."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import soundfile as sf

from tokbench.run.pool import fork_server_available

HEAVY = ("torch", "whisper", "numba", "pandas", "librosa", "transformers")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}; import sys, json; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_importing_the_asr_metric_module_loads_neither_whisper_nor_torch():
    assert _loaded_after("import tokbench.metrics.asr") == []


def test_the_cli_starts_without_torch_whisper_or_pandas():
    # every command (even --help) imports the CLI, which attaches `tokbench score`
    assert _loaded_after("import tokbench.cli") == []


def test_asr_functions_still_import_what_they_need():
    code = ("from tokbench.metrics.asr import normalize, wer_cer; "
            "assert normalize('Twenty-one Cats!') == '21 cats', normalize('Twenty-one Cats!'); "
            "assert wer_cer('a cat', 'a cat').values['wer'] == 0.0")
    assert "whisper" in _loaded_after(code)


def test_score_starts_the_workers_fork_server_before_importing_torch(tmp_path):
    # The fork server imports the metric libraries while the main process imports its own
    # (torch through the decode-and-score loop): the two start-ups overlap.
    ref, hyp = tmp_path / "ref", tmp_path / "hyp"
    ref.mkdir()
    hyp.mkdir()
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    sf.write(ref / "a.wav", x, 16000)
    sf.write(hyp / "a.wav", x + 0.01 * rng.standard_normal(16000).astype(np.float32), 16000)
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import json, sys
        import tokbench.run.pool as pool

        seen = []
        original = pool.start_fork_server

        def recording(preload):
            seen.append({{"torch_loaded": "torch" in sys.modules, "preload": list(preload)}})
            return original(preload)

        pool.start_fork_server = recording
        import tokbench.run.scoring as scoring
        scoring.start_fork_server = recording
        from tokbench.tasks.score import score_folders

        if __name__ == "__main__":
            result = score_folders({str(ref)!r}, {str(hyp)!r}, out={str(tmp_path / 'out')!r},
                                   asr=False, workers=1, metrics="stoi",
                                   cache_dir={str(tmp_path / 'cache')!r}, log=lambda m: None)
            print(json.dumps(seen))
    """))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    assert seen and seen[0]["torch_loaded"] is False
    assert "tokbench.metrics.signal" in seen[0]["preload"]
    if fork_server_available():
        assert "torch" in seen[0]["preload"]
