"""Classic-codec rows sit right after the ground truth and each codec is one curve against
bitrate (the chart joins a tokenizer's presets)."""

from __future__ import annotations

from tokbench.report.charts import bitrate_figure
from tokbench.report.tables import KINDS, Cell, Column, ResultTable, Row, metric_spec


def _row(tokenizer: str, variant: str, kind: str, kbps: float, pesq: float) -> Row:
    return Row(run_id=variant, tokenizer=tokenizer, variant=variant, kind=kind, label=variant,
               kbps=kbps, family=tokenizer,
               cells={"pesq_wb": Cell(pesq, pesq - 0.1, pesq + 0.1, 8, 8)})


def test_classic_rows_follow_the_ground_truth():
    assert KINDS[:2] == ("reference", "classic")


def test_each_classic_codec_is_one_curve_in_bitrate_order():
    rows = [_row("opus", "opus-24kbps", "classic", 24, 4.0), _row("opus", "opus-6kbps", "classic", 6, 1.5),
            _row("opus", "opus-12kbps", "classic", 12, 2.8),
            _row("codec2", "codec2-3200", "classic", 3.2, 1.4),
            _row("codec2", "codec2-700c", "classic", 0.7, 1.1),
            _row("identity", "identity", "reference", 256, 4.64)]
    table = ResultTable("recon", "sample", "p1", [Column("pesq_wb", metric_spec("pesq_wb"))], rows)
    ax = bitrate_figure(table).axes[0]
    curves = sorted(tuple(line.get_xdata()) for line in ax.lines if len(line.get_xdata()) > 1)
    assert (0.7, 3.2) in curves and (6, 12, 24) in curves
