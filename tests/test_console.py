"""The run summary printed after `tokbench run`: one screen, however many codebooks."""

from __future__ import annotations

import io
import math

import pandas as pd
from rich.console import Console

import tokbench.console as tc


def _summary(n_params: int) -> pd.DataFrame:
    rows = [{"metric": "pesq_wb", "param": None, "mean": 3.0, "ci_low": 2.9, "ci_high": 3.1,
             "n": 6, "n_total": 6}]
    for q in range(n_params):
        rows.append({"metric": "codebook_utilisation", "param": q, "mean": (q + 1) / n_params,
                     "ci_low": math.nan, "ci_high": math.nan, "n": 1, "n_total": 1})
    df = pd.DataFrame(rows)
    df["param"] = pd.Series([r["param"] for r in rows], dtype=object)  # as summarize() gives it
    return df


def _printed(monkeypatch, summary: pd.DataFrame) -> str:
    buf = io.StringIO()
    monkeypatch.setattr(tc, "console", Console(file=buf, width=120, color_system=None))
    tc.print_summary(summary, title="run")
    return buf.getvalue()


def test_many_codebooks_fold_into_one_row(monkeypatch):
    text = _printed(monkeypatch, _summary(60))  # an Opus 24 kbps packet: 60 byte positions
    assert text.count("codebook_utilisation") == 1
    assert "codebook_utilisation @ 0..59" in text
    assert "0.5083" in text  # the mean of 1/60 ... 60/60
    assert "range [0.0167, 1]" in text and "60/60 params" in text
    assert "pesq_wb" in text and "[2.9, 3.1]" in text
    assert len(text.splitlines()) < 20


def test_few_codebooks_keep_a_row_each(monkeypatch):
    text = _printed(monkeypatch, _summary(tc.PER_PARAM_ROWS))
    assert all(f"codebook_utilisation @ {q} " in text for q in range(tc.PER_PARAM_ROWS))
    assert "range" not in text and "params" not in text
