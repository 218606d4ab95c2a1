"""The example notebook runs top to bottom on real results and shows a table and a chart."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tokbench.run.runner import run

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "results_walkthrough.ipynb"


def test_example_notebook_runs(tmp_path, monkeypatch):
    # Real runs of the weight-free tokenizers on 2 utterances of the sample set (no Whisper:
    # its weights cannot be downloaded here), sharing one cache for the reference features.
    results, cache = tmp_path / "results", tmp_path / "cache"
    for name, extra in (("identity", []), ("mulaw", ["keep_audio=1"])):
        run(name, "recon", "sample", limit=2, out=results, overrides=["asr=false", *extra],
            workers=0, device="cpu", cache_dir=cache)
    monkeypatch.setenv("TOKBENCH_RESULTS", str(results))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "2 runs" in text
    # both ran on 2 of the sample set's utterances (--limit): flagged partial (†)
    assert "| ground truth | identity † | 256 |" in text and "| acoustic | mulaw † | 128 |" in text
    assert "wer, cer n/a (identity, mulaw): ASR disabled" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1  # the radar chart
    plain = [o["data"]["text/plain"] for o in outputs if "text/plain" in o.get("data", {})]
    compared = [p for p in plain if "mean_diff" in p]
    assert compared and "'a': 'mulaw'" in compared[0] and "'n': 2" in compared[0]
