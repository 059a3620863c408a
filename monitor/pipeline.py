"""The whole monitor as one pure object: bytes in, alert records out.

``Monitor.process(raw, source)`` runs decode -> lifecycle -> event-time windows for one
message; when the watermark closes windows, the detectors score them and the alert book
turns findings into firing/resolved records, collected in ``Monitor.alerts`` for the
driver to take. No clock, no I/O: replay and the stream driver run this same object.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec

from monitor.alerting import AlertBook
from monitor.decode import DEFAULT_MAX_BYTES, decode
from monitor.detectors.base import Finding, WindowContext
from monitor.detectors.platform import PlatformBaseline, PlatformParams, PlatformSpike
from monitor.detectors.publisher import PublisherParams, PublisherSpike
from monitor.detectors.quality import (
    DEFAULT_RATES,
    RateDetector,
    RateParams,
    VolumeDrop,
    VolumeParams,
)
from monitor.lifecycle import Lifecycle
from monitor.model import REASON_INDEX, Alert, Kind, Rejection
from monitor.windows import WindowAcc, Windows, windows_restore, windows_snapshot


@dataclass(frozen=True)
class MonitorParams:
    window_s: int = 300  # tumbling window width
    lateness_s: int = 120  # watermark trails the stream's event time by this much
    future_tolerance_s: int = 900  # events further ahead of the stream clock are "future"
    jump_confirm: int = 20  # this many future events in a row mean the stream really jumped
    idle_after_s: int = 900  # a source this far behind the newest is idle (no hold on time)
    retention_s: int = 45 * 86400  # orders leave after this much event time without a step
    fast_after_payment_s: int = 3600  # an invalidation this soon after payment is "fast"
    warmup_windows: int = 12  # learn only, no alerts, for the first hour
    resolve_after_windows: int = 3  # windows without a finding before an alert resolves
    max_event_bytes: int = DEFAULT_MAX_BYTES
    publisher: PublisherParams = field(default_factory=PublisherParams)
    platform: PlatformParams = field(default_factory=PlatformParams)
    volume: VolumeParams = field(default_factory=VolumeParams)
    rates: dict[Kind, RateParams] = field(default_factory=lambda: dict(DEFAULT_RATES))


class Monitor:
    def __init__(self, params: MonitorParams | None = None) -> None:
        self.params = p = params or MonitorParams()
        self.windows = Windows(p.window_s, p.lateness_s, p.future_tolerance_s, p.jump_confirm,
                               p.idle_after_s)
        self.lifecycle = Lifecycle(p.retention_s)
        self.baseline = PlatformBaseline(p.platform)
        self.publisher = PublisherSpike(p.publisher)
        self.platform = PlatformSpike(self.baseline)
        self.quality = [RateDetector(k, p.rates[k]) for k in p.rates]
        self.volume = VolumeDrop(p.volume)
        self.book = AlertBook(p.resolve_after_windows)
        self.alerts: list[Alert] = []
        # counters (driver summaries and metrics read these)
        self.accepted = 0
        self.rejected: Counter[str] = Counter()
        self.duplicates = 0
        self.violations: Counter[str] = Counter()
        self.invalidations: Counter[str] = Counter()
        self.alert_counts: Counter[tuple[str, str]] = Counter()
        self.windows_closed = 0
        self._early_rejects = 0  # before any event set a clock
        self._next_close = float("-inf")
        self._fast = p.fast_after_payment_s

    # -- per message ------------------------------------------------------------------
    def process(self, raw: bytes, source: int = 0) -> Rejection | None:
        ev = decode(raw, self.params.max_event_bytes)
        if type(ev) is Rejection:
            self.rejected[ev.code] += 1
            acc = self.windows.stream_window(source)
            if acc is None:
                self._early_rejects += 1
            else:
                acc.rejected += 1
                acc.arrivals += 1
                acc.rejected_by_code[ev.code] = acc.rejected_by_code.get(ev.code, 0) + 1
            return ev
        ts = ev.occurred_at.timestamp()  # type: ignore[union-attr]
        step = self.lifecycle.step(ev, ts)  # type: ignore[arg-type]
        if step.duplicate:
            self.duplicates += 1
            acc = self.windows.stream_window(source)
            if acc is not None:
                acc.duplicates += 1
                acc.arrivals += 1
            return None
        self.accepted += 1
        reason = -1
        fast = False
        if step.counts_invalidation:
            reason = REASON_INDEX[ev.reason]  # type: ignore[union-attr,index]
            self.invalidations[ev.reason] += 1  # type: ignore[union-attr,index]
            fast = step.since_paid is not None and step.since_paid <= self._fast
        buyer = ev.parent_order_id or ev.order_id  # type: ignore[union-attr]
        windows = self.windows
        windows.add(source, ts, (buyer, ev.publisher_id, step.new_order, reason, fast))  # type: ignore[union-attr]
        acc = windows.stream_window(source)
        if acc is not None:
            acc.arrivals += 1
            if self._early_rejects:
                acc.rejected += self._early_rejects
                acc.arrivals += self._early_rejects
                self._early_rejects = 0
            if step.violation is not None:
                self.violations[step.violation] += 1
                acc.violations += 1
                acc.violations_by_type[step.violation] = (
                    acc.violations_by_type.get(step.violation, 0) + 1
                )
        clock = windows.sources[source].clock
        if clock is not None and clock >= self._next_close:
            self._close(windows.advance())
        return None

    def flush(self) -> None:
        """End of input: close every open window (a replay's last step)."""
        self._close(self.windows.flush())

    def take_alerts(self) -> list[Alert]:
        out, self.alerts = self.alerts, []
        return out

    # -- per window ---------------------------------------------------------------------
    def _close(self, closed: list[WindowAcc]) -> None:
        for acc in closed:
            self._close_one(acc)
        p = self.params
        self._next_close = (self.windows.closed_through + 2) * p.window_s + p.lateness_s

    def _close_one(self, acc: WindowAcc) -> None:
        self.windows_closed += 1
        warm = self.windows_closed > self.params.warmup_windows
        detected_at = max(self.windows.watermark or acc.end, acc.end)
        ctx = WindowContext(acc, acc.platform(), detected_at, warm, publisher_tests=len(acc.pubs))
        ctx.quiet_reasons = frozenset(
            REASON_INDEX[c]
            for cur in self.book.open.values()
            if cur.kind in (Kind.PLATFORM_SPIKE, Kind.REASON_SHIFT)
            for c in cur.last.channels
            if c in REASON_INDEX
        )
        self.baseline.prepare(ctx)
        scored: list[tuple[Any, list[Finding]]] = []
        for det in (*self.quality, self.volume, self.publisher, self.platform):
            scored.append((det, det.score(ctx)))
        findings = self._explain(ctx, [f for _, found in scored for f in found])
        for det, found in scored:
            det.learn(ctx, found)
        if acc.index % 288 == 0:
            self.lifecycle.evict(detected_at)
        if not warm:
            return
        for alert in self.book.update(acc.start, acc.end, detected_at, findings):
            self.alert_counts[(alert.kind, alert.status)] += 1
            self.alerts.append(alert)

    def _explain(self, ctx: WindowContext, findings: list[Finding]) -> list[Finding]:
        """Publisher findings a platform-wide finding explains are listed in it, not raised."""
        stream_wide = [f for f in findings if f.kind in (Kind.PLATFORM_SPIKE, Kind.REASON_SHIFT)]
        explained: set[str] = set()
        for f in stream_wide:
            explained.update(f.channels)
        for key, cur in self.book.open.items():
            if cur.kind in (Kind.PLATFORM_SPIKE, Kind.REASON_SHIFT) and key not in {
                (f.kind.value, f.scope) for f in stream_wide
            }:
                explained.update(cur.last.channels)
        if not explained:
            return findings
        kept: list[Finding] = []
        affected: list[str] = []
        spike_channels = {
            c for f in stream_wide if f.kind is Kind.PLATFORM_SPIKE for c in f.channels
        } | {
            c for cur in self.book.open.values() if cur.kind is Kind.PLATFORM_SPIKE
            for c in cur.last.channels
        }
        for f in findings:
            if f.kind is Kind.REASON_SHIFT and f.reason in spike_channels:
                continue  # the platform spike already says the mix moved
            if (
                f.kind is Kind.PUBLISHER_SPIKE
                and f.channels
                and set(f.channels) <= explained
                and (f.kind.value, f.scope) not in self.book.open
            ):
                affected.append(f.scope or "")
                continue
            kept.append(f)
        ctx.explained = set(affected)
        for f in stream_wide:
            f.evidence["affected_publishers"] = sorted(affected)[:50]
            f.evidence["affected_publisher_count"] = len(affected)
        return kept

    # -- state ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain data (msgpack/JSON-able): restore() continues exactly."""
        return {
            "version": 1,
            "windows": windows_snapshot(self.windows),
            "lifecycle": self.lifecycle.snapshot(),
            "publisher": self.publisher.snapshot(),
            "platform": self.platform.snapshot(),
            "quality": {d.name: d.snapshot() for d in self.quality},
            "volume": self.volume.snapshot(),
            "book": self.book.snapshot(),
            "counters": {
                "accepted": self.accepted,
                "rejected": dict(self.rejected),
                "duplicates": self.duplicates,
                "violations": dict(self.violations),
                "invalidations": dict(self.invalidations),
                "alert_counts": [[k, s, n] for (k, s), n in self.alert_counts.items()],
                "windows_closed": self.windows_closed,
                "early_rejects": self._early_rejects,
                "next_close": self._next_close if self._next_close != float("-inf") else None,
            },
            "alerts": [msgspec.to_builtins(a) for a in self.alerts],
        }

    @classmethod
    def restore(cls, snap: dict[str, Any], params: MonitorParams | None = None) -> Monitor:
        mon = cls(params)
        windows_restore(mon.windows, snap["windows"])
        mon.lifecycle = Lifecycle.restore(snap["lifecycle"])
        mon.publisher.restore(snap["publisher"])
        mon.platform.restore(snap["platform"])
        for d in mon.quality:
            d.restore(snap["quality"][d.name])
        mon.volume.restore(snap["volume"])
        mon.book.restore(snap["book"])
        c = snap["counters"]
        mon.accepted = c["accepted"]
        mon.rejected = Counter(c["rejected"])
        mon.duplicates = c["duplicates"]
        mon.violations = Counter(c["violations"])
        mon.invalidations = Counter(c["invalidations"])
        mon.alert_counts = Counter({(k, s): n for k, s, n in c["alert_counts"]})
        mon.windows_closed = c["windows_closed"]
        mon._early_rejects = c["early_rejects"]
        nc = c["next_close"]
        mon._next_close = float("-inf") if nc is None else nc
        mon.alerts = [msgspec.convert(a, Alert) for a in snap["alerts"]]
        return mon
