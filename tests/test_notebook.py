"""The example notebook runs top to bottom on stored results and shows a table and a chart."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tests.report_fixtures import make_results

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "results_walkthrough.ipynb"


def test_example_notebook_runs(tmp_path, monkeypatch):
    # Hand-made results written through the real store (tests/report_fixtures.py).
    results = make_results(tmp_path / "results")
    monkeypatch.setenv("TOKBENCH_RESULTS", str(results))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "5 runs" in text  # runs with records: the unsupported run has none
    assert "| ground truth | identity |" in text and "**4.00**" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1  # the radar chart
    compared = [o for o in outputs if "text/plain" in o.get("data", {}) and "mean_diff" in o["data"]["text/plain"]]
    assert compared and "'metric': 'pesq_wb'" in compared[0]["data"]["text/plain"]

