"""The example notebook runs top to bottom on real results, from the repository root and from
its own folder, and shows a table, the radar and the Pareto chart."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tokbench.run.runner import run

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "results_walkthrough.ipynb"


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    # Real runs of the weight-free tokenizers on 2 utterances of the sample set (no Whisper:
    # its weights cannot be downloaded here), sharing one cache for the reference features.
    root = tmp_path_factory.mktemp("nb")
    results, cache = root / "results", root / "cache"
    for name, extra in (("identity", []), ("mulaw", ["keep_audio=1"])):
        run(name, "recon", "sample", limit=2, out=results, overrides=["asr=false", *extra],
            workers=0, device="cpu", cache_dir=cache)
    (root / "examples").mkdir()
    return results


@pytest.mark.slow
@pytest.mark.parametrize("where", ["repo root", "examples/"])
def test_example_notebook_runs(results, where, monkeypatch):
    # The notebook finds results/ by itself: from the root (results/) and from examples/
    # (../results), as a user opens it; no TOKBENCH_RESULTS.
    monkeypatch.delenv("TOKBENCH_RESULTS", raising=False)
    cwd = results.parent if where == "repo root" else results.parent / "examples"
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "2 runs" in text
    assert ("under results" if where == "repo root" else "under ../results") in text
    # both ran on 2 of the sample set's utterances (--limit): flagged partial (†)
    assert "| ground truth | identity † | 256 |" in text and "| acoustic | mulaw † | 128 |" in text
    assert "wer, cer n/a (identity, mulaw): ASR disabled" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the radar and the Pareto chart
    plain = [o["data"]["text/plain"] for o in outputs if "text/plain" in o.get("data", {})]
    compared = [p for p in plain if "mean_diff" in p]
    assert compared and "'a': 'mulaw'" in compared[0] and "'n': 2" in compared[0]
