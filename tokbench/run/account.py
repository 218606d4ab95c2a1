"""The account of a run's failures, printed at its end ("2 of 40 utterances unreadable: ...").

Two kinds: an utterance that *failed* (every metric of its record is null: unreadable audio, a
tokenizer error, no output), and a metric *not computed* for some utterances that otherwise
scored (a too-short signal for PESQ, an unavailable ASR model). Outputs whose length differs from
the reference by more than one frame are counted too (they are scored, but flagged).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tokbench import notices

LENGTH_WARNING = 0.05  # |length_ratio - 1| beyond this is listed (one frame is tolerated)


@dataclass
class Account:
    n_utterances: int = 0
    failed: dict[str, list[str]] = field(default_factory=dict)  # reason -> utterance ids
    not_computed: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (metric, reason)
    length_off: list[tuple[str, float]] = field(default_factory=list)  # (id, length_ratio)

    @property
    def n_failed(self) -> int:
        return sum(len(ids) for ids in self.failed.values())

    @property
    def clean(self) -> bool:
        return not self.failed and not self.not_computed

    def lines(self, examples: int = 3, most: int = 8) -> list[str]:
        """One screen: the failures by reason, then the metrics not computed, then lengths."""
        n = self.n_utterances
        out = []
        for reason, ids in sorted(self.failed.items(), key=lambda kv: -len(kv[1]))[:most]:
            out.append(f"{len(ids)} of {n} utterances failed: {_ids(ids, examples)} ({reason})")
        # Metrics missing for the same reason on the same utterances (wer and cer without an
        # ASR model) share one line; a reason a notice gave already is not repeated.
        grouped: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        for (metric, reason), ids in self.not_computed.items():
            grouped.setdefault((reason, tuple(ids)), []).append(metric)
        for (reason, ids_), metrics in sorted(grouped.items(), key=lambda kv: -len(kv[0][1]))[:most]:
            why = "as said above" if notices.said(reason) else reason
            out.append(f"{', '.join(metrics)} not computed for {len(ids_)} of {n}: "
                       f"{_ids(list(ids_), examples)} ({why})")
        hidden = max(0, len(self.failed) - most) + max(0, len(grouped) - most)
        if hidden:
            out.append(f"... and {hidden} more reasons (see the records' 'reasons')")
        if self.length_off:
            worst = sorted(self.length_off, key=lambda x: -abs(x[1] - 1))[:examples]
            shown = ", ".join(f"{uid} x{ratio:.3g}" for uid, ratio in worst)
            out.append(f"{len(self.length_off)} of {n} outputs differ in length from their input "
                       f"by more than one frame: {shown} (scored as they are; see length_ratio)")
        return out


def _ids(ids: list[str], k: int) -> str:
    return ", ".join(ids[:k]) + (f" and {len(ids) - k} more" if len(ids) > k else "")


def failure_account(records: Iterable[Mapping[str, Any]]) -> Account:
    """The account of a run's utterance records (corpus records are not counted)."""
    account = Account()
    failed: dict[str, list[str]] = defaultdict(list)
    missing: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in records:
        uid = r.get("utterance_id")
        if uid is None:
            continue
        account.n_utterances += 1
        metrics = r.get("metrics") or {}
        reasons = r.get("reasons") or {}
        nulls = [m for m, v in metrics.items() if v is None]
        if metrics and len(nulls) == len(metrics):
            failed[_main_reason(reasons, nulls)].append(str(uid))
            continue
        for m in nulls:
            missing[(m, reasons.get(m) or "not computed")].append(str(uid))
        ratio = metrics.get("length_ratio")
        if isinstance(ratio, (int, float)) and abs(ratio - 1) > LENGTH_WARNING:
            account.length_off.append((str(uid), float(ratio)))
    account.failed = dict(failed)
    account.not_computed = dict(missing)
    return account


def _main_reason(reasons: Mapping[str, str], metrics: list[str]) -> str:
    """The reason most of the utterance's metrics give (they usually all give the same)."""
    counts: dict[str, int] = defaultdict(int)
    for m in metrics:
        counts[reasons.get(m) or "not computed"] += 1
    return max(counts.items(), key=lambda kv: kv[1])[0]
