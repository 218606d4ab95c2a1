"""A user's own metric, in one file: the crest factor of the output (peak over RMS, in dB).

Used by tests/test_metric_kit.py to show that a metric is one module with no edit elsewhere:
`tokbench run ... --metric-module tests/plugins/crest_factor_metric.py --metrics crest_factor`.
"""

import numpy as np

from tokbench.metrics import MetricSpec, Needs, NotComputable, declare


def crest_factor(x) -> float:
    y = np.asarray(x.output, dtype=np.float64)
    if not np.all(np.isfinite(y)):
        raise NotComputable("the output holds NaN or infinite samples")
    rms = float(np.sqrt(np.mean(y ** 2))) if y.size else 0.0
    if rms == 0.0:
        raise NotComputable("the output is silent: no crest factor")
    return 20.0 * float(np.log10(np.max(np.abs(y)) / rms))


declare(
    MetricSpec("crest_factor", "peak-to-RMS ratio of the output", "none", "dB", lo=0.0, hi=30.0,
               valid_lo=0.0, valid_hi=float("inf"), groups=("plugin",)),
    where="worker", compute=crest_factor, needs=Needs(),
    protocol={"crest_factor": {"definition": "20 log10(max|y| / rms(y))"}},
    citation="a test plug-in", implementation="numpy",
)
