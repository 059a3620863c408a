"""What a person (status page) and Prometheus (per-publisher series) read of detection.

``Overview`` keeps a short history of closed windows (platform counts, expectation,
data-quality counters) and the last window's per-publisher results. The expensive parts
(ranking publishers) run only when asked, at scrape or page time, and are cached per
window, so the detection path pays one small dict per window.

It is derived state: not checkpointed. After a restart it fills again as windows close.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any

from monitor.detectors.base import WindowContext
from monitor.model import REASONS, iso
from monitor.stats import nb_upper_score
from monitor.windows import FAST, ORDERS, RAW, TOTAL

REASON_NAMES = tuple(r.value for r in REASONS)


class Overview:
    def __init__(self, keep_windows: int = 288, dispersion: float = 15.0) -> None:
        self.history: deque[dict[str, Any]] = deque(maxlen=keep_windows)
        self.dispersion = dispersion
        self._last: WindowContext | None = None
        self._book: Any = None
        self._publisher: Any = None
        self._cache: dict[tuple[str, int], Any] = {}

    def record(self, ctx: WindowContext, expected_total: float, book: Any, publisher: Any) -> None:
        """Called by ``Detection.close`` once per closed window, after scoring."""
        acc, plat = ctx.acc, ctx.platform
        self.history.append(
            {
                "start": iso(acc.start),
                "end": iso(acc.end),
                "detected_at": iso(ctx.detected_at),
                "orders": plat[ORDERS],
                "invalidations": plat[TOTAL],
                "raw_invalidations": plat[RAW],
                "fast_invalidations": plat[FAST],
                "by_reason": {n: plat[i] for i, n in enumerate(REASON_NAMES)},
                "expected_invalidations": round(expected_total, 2),
                "events": acc.events,
                "publishers": len(acc.pubs),
                "rejected": acc.rejected,
                "duplicates": acc.duplicates,
                "violations": acc.violations,
                "late": acc.late,
                "future": acc.future,
                "arrivals": acc.arrivals,
            }
        )
        self._last = ctx
        self._book = book
        self._publisher = publisher
        self._cache.clear()

    # -- read side ------------------------------------------------------------------------
    def windows(self) -> list[dict[str, Any]]:
        """Recent closed windows, oldest first."""
        return list(self.history)

    def _alerting(self) -> set[str]:
        if self._book is None:
            return set()
        return {cur.scope for cur in self._book.open.values() if cur.scope is not None}

    def _row(self, pub: str, vec: list[int] | None, res: dict[str, Any] | None) -> dict:
        x = vec[TOTAL] if vec else 0
        e = res["expected"][TOTAL] if res else 0.0
        score = nb_upper_score(x, e, self.dispersion) if res and x > e and x >= 2 else 0.0
        return {
            "publisher_id": pub,
            "orders": vec[ORDERS] if vec else 0,
            "invalidations": x,
            "by_reason": {n: vec[i] for i, n in enumerate(REASON_NAMES)} if vec else {},
            "expected": round(e, 2),
            "ratio": round(x / e, 2) if e > 0 else None,
            "score": round(score, 2),
            "alerting": False,
        }

    def publishers(self, n: int) -> list[dict[str, Any]]:
        """The last closed window's ``n`` most anomalous publishers (by ``-log10 p`` of its
        total invalidations under the publisher's own expectation), alerting ones first."""
        key = ("publishers", n)
        if key in self._cache:
            return list(self._cache[key])
        ctx = self._last
        rows: list[dict[str, Any]] = []
        if ctx is not None:
            alerting = self._alerting()
            results = ctx.publisher_results
            pubs = ctx.acc.pubs
            cand = [p for p, r in results.items() if pubs.get(p, (0,) * 10)[TOTAL] >= 2]
            rows = [self._row(p, pubs.get(p), results[p]) for p in cand]
            for r in rows:
                r["alerting"] = r["publisher_id"] in alerting
            for p in alerting - {r["publisher_id"] for r in rows}:
                row = self._row(p, pubs.get(p), results.get(p))
                row["alerting"] = True
                rows.append(row)
            rows = heapq.nlargest(n, rows, key=lambda r: (r["alerting"], r["score"]))
        self._cache[key] = rows
        return list(rows)

    def metric_publishers(self, n: int) -> list[dict[str, Any]]:
        """The bounded set with per-publisher Prometheus series: the ``n`` largest by
        long-run order rate plus every publisher with an open alert. Its size never grows
        with the number of publishers (at most ``n`` + open publisher alerts)."""
        key = ("metric", n)
        if key in self._cache:
            return list(self._cache[key])
        ctx, det = self._last, self._publisher
        rows: list[dict[str, Any]] = []
        if ctx is not None and det is not None:
            alerting = self._alerting()
            big = det.largest(n)
            chosen = dict.fromkeys([p for p, _ in big])
            rates = dict(big)
            for p in sorted(alerting):
                chosen.setdefault(p)
            for p in chosen:
                row = self._row(p, ctx.acc.pubs.get(p), ctx.publisher_results.get(p))
                row["alerting"] = p in alerting
                row["order_rate"] = round(rates.get(p, det.order_rate(p)), 3)
                rows.append(row)
        self._cache[key] = rows
        return list(rows)

    def firing(self) -> list[dict[str, Any]]:
        """Open alerts, most severe and highest scoring first, with their latest evidence."""
        if self._book is None:
            return []
        sev = {"critical": 0, "warning": 1, "info": 2}
        out = []
        for cur in self._book.open.values():
            f = cur.last
            out.append(
                {
                    "alert_id": cur.alert_id,
                    "kind": cur.kind.value,
                    "scope": cur.scope,
                    "severity": cur.severity.value,
                    "since": iso(cur.first_start),
                    "last_window_end": iso(cur.last_end),
                    "windows": cur.windows,
                    "peak_score": round(cur.peak_score, 2),
                    "summary": cur.headline or f.summary,
                    "reason": f.reason,
                    "evidence": f.evidence,
                }
            )
        out.sort(key=lambda a: (sev.get(a["severity"], 3), -a["peak_score"]))
        return out
