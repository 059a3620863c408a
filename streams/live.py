"""Live-only signals of a worker: ``stream_stall`` alerts, consumer lag, watermark delay.

A replay has no wall clock; these exist only on the stream. ``stream_stall`` is judged per
worker over the input partitions it holds (``monitor.stall``) and sent to the alerts topic
like any alert (scope: the worker's partitions). Lag and delay are kept as plain values
for ``/status`` and the metrics issue.
"""

from __future__ import annotations

import time
from typing import Any

import structlog

from monitor.alerting import alert_id
from monitor.model import KIND_CATEGORY, Alert, Kind, iso
from monitor.stall import StallChange, StallDetector

log = structlog.get_logger("ordermon.stream")


class LiveSignals:
    def __init__(self, stream_app: Any, stall: StallDetector) -> None:
        self.sa = stream_app
        self.stall = stall
        self.last_arrival: dict[int, float] = {}  # input partition -> monotonic time
        self.watermark: float | None = None  # detection's event-time watermark (epoch s)
        self.watermark_seen_at: float | None = None  # wall time it last moved
        self._stall_id: str | None = None

    def arrival(self, partition: int, now: float) -> None:
        self.last_arrival[partition] = now
        self.stall.arrival(now)

    def windows_closed(self, watermark: float | None) -> None:
        if watermark is not None:
            self.watermark = watermark
            self.watermark_seen_at = time.time()

    def watermark_delay_s(self) -> float | None:
        """Wall clock minus the event-time watermark: how far behind real time detection
        decides (large in a backfill, ~window + lateness when live)."""
        return None if self.watermark is None else round(time.time() - self.watermark, 3)

    def consumer_lag(self) -> dict[str, dict[int, int]]:
        """Per topic and partition: high watermark (from fetch responses) minus the next
        offset to process, for the partitions this worker holds."""
        out: dict[str, dict[int, int]] = {}
        try:
            assigned = self.sa.app.consumer.assignment()
        except Exception:
            return out
        for tp in assigned:
            runner = self.sa.runners.get(tp.topic)
            if runner is None:
                continue
            try:
                hw = self.sa.app.consumer.highwater(tp)
            except Exception:
                hw = None
            if hw is None:
                continue
            task = runner.tasks.get(tp.partition)
            done = task.offset + 1 if task is not None else 0
            out.setdefault(tp.topic, {})[tp.partition] = max(0, hw - done)
        return out

    def check(self, now: float) -> None:
        change = self.stall.check(now)
        if change is not None:
            self.sa.send_alert(self._stall_alert(change))

    def _stall_alert(self, c: StallChange) -> Alert:
        wall_since = time.time() - (time.monotonic() - c.since)
        parts = sorted(self.last_arrival)
        if c.status == "firing":
            self._stall_id = alert_id(Kind.STREAM_STALL.value, f"partitions {parts}", wall_since)
            summary = (
                f"No order events for {c.silent_s:.0f} s on partitions {parts} of "
                f"{self.sa.s.input_topic}; the traffic makes {c.bound_s:.0f} s plausible."
            )
        else:
            summary = f"Events flow again after {c.silent_s:.0f} s of silence."
        aid = self._stall_id or alert_id(Kind.STREAM_STALL.value, None, wall_since)
        log.warning("stream_stall", status=c.status, silent_s=round(c.silent_s, 1))
        return Alert(
            alert_id=aid, kind=Kind.STREAM_STALL.value,
            category=KIND_CATEGORY[Kind.STREAM_STALL].value, status=c.status,
            severity="critical" if c.status == "firing" else "warning", publisher_id=None,
            reason=None, window_start=iso(wall_since), window_end=iso(time.time()),
            detected_at=iso(time.time()), summary=summary,
            evidence={"observed": round(c.silent_s, 1), "expected": round(c.bound_s, 1),
                      "score": round(c.silent_s / c.bound_s, 2),
                      "silent_seconds": round(c.silent_s, 1), "bound_seconds": round(c.bound_s, 1),
                      "median_gap_seconds": c.median_gap_s, "partitions": parts,
                      "thresholds": {"min_s": self.stall.min_s, "factor": self.stall.factor}},
        )  # fmt: skip
