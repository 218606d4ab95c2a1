"""Results: the run store (``store``: run folders, records, resume), reading them back
(``load``: ``load_results``, ``runs_table``, ``filter_results``) and aggregating them
(``aggregate``: ``summarize``, ``compare``)."""

from tokbench.results.aggregate import MixedProtocolError, compare, summarize, summary_records
from tokbench.results.load import COLUMNS, RUN_KEYS, filter_results, load_results, runs_table

__all__ = ["COLUMNS", "RUN_KEYS", "MixedProtocolError", "compare", "filter_results",
           "load_results", "runs_table", "summarize", "summary_records"]
