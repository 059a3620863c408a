"""The monitor: bytes in, alert records out, as three stages (``monitor.stages``).

``Monitor.process(raw, source)`` runs one message through ``Ingest`` (decode, lifecycle,
clock guard) -> ``Windowing`` (event-time windows) and, when the watermark closes windows,
``Detection`` scores them and the alert book turns findings into firing/resolved records,
collected in ``Monitor.alerts`` for the driver to take. No clock, no I/O: replay runs this
object; the stream driver (``streams/``) runs the same three stages across partitions.

``Detection`` is here, not in ``monitor.stages``: it is where the detectors meet.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec

from monitor.alerting import AlertBook
from monitor.decode import DEFAULT_MAX_BYTES
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
from monitor.model import REASON_INDEX, Alert, Kind, iso
from monitor.overview import Overview
from monitor.stages import Ingest, Partial, Windowing
from monitor.windows import WindowAcc

EVICT_EVERY_WINDOWS = 288  # the lifecycle forgets stale orders once a day of windows
# Stream-wide findings that recur at the same time of day are a daily pattern: a network's
# nightly reversal batch (a platform-wide rise at 02:00 every day), the end of a merchant
# system's confirmation batch (volume falls by a third at 22:00 every day). The first one
# is raised (nothing says it is a pattern yet); one at the time of day of one of these
# kinds on one of the last ``DAILY_DAYS`` days, within ``DAILY_TOLERANCE`` windows and at
# most ``DAILY_MAX_RATIO`` times as far off, is reported, not raised, and learned. For a
# platform-wide rise only a short episode (a batch: under ``DAILY_MAX_WINDOWS``) makes a
# pattern: after a day's four-hour incident, the next day's at those hours is raised as
# usual. A volume drop at a batch's end is a step that lasts, and the first day holds it
# for up to two hours: any length counts (a day-long outage can hide the next day's drop
# in the same hours, which the lasting alert of the first would have shown anyway).
DAILY_KINDS = (Kind.PLATFORM_SPIKE, Kind.VOLUME_DROP)
DAILY_DAYS = 3
DAILY_TOLERANCE = 6  # windows (30 min)
DAILY_MAX_RATIO = 2.0
DAILY_MAX_WINDOWS = 12  # an hour
DAILY_EPISODES = 16  # remembered per kind


@dataclass(frozen=True)
class MonitorParams:
    window_s: int = 300  # tumbling window width
    lateness_s: int = 120  # watermark trails the stream's event time by this much
    future_tolerance_s: int = 900  # events further ahead of the stream clock are "future"
    jump_confirm: int = 20  # this many future events in a row mean the stream really jumped
    idle_after_s: int = 900  # a source this far behind the newest is idle (no hold on time)
    retention_s: int = 45 * 86400  # orders leave after this much event time without a step
    max_tracked_orders: int = 5_000_000  # over this many orders the least recently seen leave
    fast_after_payment_s: int = 3600  # an invalidation this soon after payment is "fast"
    warmup_windows: int = 12  # learn only, no alerts, for the first hour
    resolve_after_windows: int = 3  # windows without a finding before an alert resolves
    max_event_bytes: int = DEFAULT_MAX_BYTES
    publisher: PublisherParams = field(default_factory=PublisherParams)
    platform: PlatformParams = field(default_factory=PlatformParams)
    volume: VolumeParams = field(default_factory=VolumeParams)
    rates: dict[Kind, RateParams] = field(default_factory=lambda: dict(DEFAULT_RATES))

    def __post_init__(self) -> None:
        if self.max_tracked_orders < 1:
            raise ValueError(f"max_tracked_orders must be >= 1, got {self.max_tracked_orders}")


def _blank(acc: WindowAcc) -> bool:
    """Nothing at all arrived in the window."""
    return not (acc.pubs or acc.arrivals or acc.events or acc.rejected or acc.duplicates
                or acc.violations or acc.future or acc.late)  # fmt: skip


class Detection:
    """Complete windows in, alert records out (``alerts``).

    ``add(partial)`` (stream driver) merges the partials of ``parts`` windowing partitions:
    window k is complete once every partition has reported k or a later window (each
    reports its windows in order, so a partition that reported k has nothing more for k).
    A re-delivered partial (same window and partition) is ignored. ``close(acc,
    detected_at)`` scores one complete window; the one-process ``Monitor`` calls it directly.
    """

    def __init__(self, params: MonitorParams | None = None, parts: int = 1) -> None:
        self.params = p = params or MonitorParams()
        self.baseline = PlatformBaseline(p.platform)
        self.publisher = PublisherSpike(p.publisher)
        self.platform = PlatformSpike(self.baseline)
        self.quality = [RateDetector(k, p.rates[k]) for k in p.rates]
        self.volume = VolumeDrop(p.volume)
        self.book = AlertBook(p.resolve_after_windows)
        self.alerts: list[Alert] = []
        self.alert_counts: Counter[tuple[str, str]] = Counter()
        self.windows_closed = 0
        self.parts = parts
        self.reported: dict[int, int] = {}  # windowing partition -> last window it reported
        self.pending: dict[int, dict[int, Partial]] = {}  # window -> partition -> partial
        self.closed_through = -1
        self.watermark: float | None = None
        self.redelivered = 0
        self.overview = Overview()  # derived read model for /metrics and the status page
        # episodes of firing or recurring stream-wide findings, per kind: [first window,
        # last window, how far off (observed/expected, or expected/observed for a drop)]
        self.daily: dict[str, list[list[float]]] = {}
        self.daily_recurring = 0  # windows whose stream-wide finding was a daily pattern
        # a platform-wide daily pattern explains publishers' counts in its reasons as an
        # open platform alert would, until ``resolve_after_windows`` after its last window
        self.daily_channels: tuple[str, ...] = ()
        self.daily_until = -1

    # -- merging partials (stream driver) -------------------------------------------------
    def add(self, partial: Partial) -> list[tuple[int, float]]:
        """Take one partial; close what is complete. Returns [(window, detected_at)] closed."""
        k = partial.acc.index
        if k <= self.reported.get(partial.part, -1) or k <= self.closed_through:
            self.redelivered += 1
            return []
        self.reported[partial.part] = k
        self.pending.setdefault(k, {})[partial.part] = partial
        if len(self.reported) < self.parts:
            return []
        upto = min(self.reported.values())
        closed = []
        for i in sorted(i for i in self.pending if i <= upto):
            acc, wm = merge_partials(self.pending.pop(i))
            detected_at = max(wm if wm is not None else acc.end, acc.end)
            self.watermark = wm
            self.close(acc, detected_at)
            self.closed_through = i
            closed.append((i, detected_at))
        return closed

    def take_alerts(self) -> list[Alert]:
        out, self.alerts = self.alerts, []
        return out

    # -- per window -----------------------------------------------------------------------
    def close(self, acc: WindowAcc, detected_at: float) -> None:
        """Score one complete window, learn from it, turn findings into alert records.

        Windows that close before the first one with anything in them are skipped: how
        many there are depends on when each partition's clock started (a stream closes an
        extra one where a replay does not), and the detectors count windows."""
        if not self.windows_closed and _blank(acc):
            return
        self.windows_closed += 1
        warm = self.windows_closed > self.params.warmup_windows
        ctx = WindowContext(acc, acc.platform(), detected_at, warm, publisher_tests=len(acc.pubs))
        open_channels = [
            c
            for cur in self.book.open.values()
            if cur.kind in (Kind.PLATFORM_SPIKE, Kind.REASON_SHIFT)
            for c in cur.last.channels
        ]
        open_channels += self._daily_explains(acc.index)
        ctx.quiet_reasons = frozenset(REASON_INDEX[c] for c in open_channels if c in REASON_INDEX)
        self.baseline.prepare(ctx)
        scored: list[tuple[Any, list[Finding]]] = []
        det: Any
        for det in (*self.quality, self.volume, self.publisher, self.platform):
            scored.append((det, det.score(ctx)))
        findings = self._explain(ctx, [f for _, found in scored for f in found])
        daily = self._daily_patterns(acc.index, acc.width, findings)
        if daily:  # the detectors learn the daily-pattern reports in place of the findings
            findings = [daily.get(id(f), f) for f in findings]
            scored = [(det, [daily.get(id(f), f) for f in found]) for det, found in scored]
        for det, found in scored:
            det.learn(ctx, found)
        if warm:
            for alert in self.book.update(acc.start, acc.end, detected_at, findings):
                self.alert_counts[(alert.kind, alert.status)] += 1
                self.alerts.append(alert)
        self.overview.record(ctx, self.baseline.expected_total, self.book, self.publisher)

    def _daily_patterns(self, w: int, width: int, findings: list[Finding]) -> dict[int, Finding]:
        """Firing stream-wide findings at the time of day of an earlier day's one of the
        same kind become daily-pattern reports (not firing, ``evidence["recurring"]``):
        returns them by ``id()`` of the finding they replace."""
        out: dict[int, Finding] = {}
        day = 86400 // width
        for f in findings:
            if f.kind not in DAILY_KINDS or not f.firing:
                continue
            off = _how_far_off(f)
            eps = self.daily.setdefault(f.kind.value, [])
            prior = _prior_episode(f.kind, eps, w, day, off)
            if prior is not None:
                out[id(f)] = _as_daily(f, prior, width)
                self.daily_recurring += 1
                if f.kind is Kind.PLATFORM_SPIKE:
                    self.daily_channels = f.channels
                    self.daily_until = w + self.params.resolve_after_windows
            # remember: extend the latest episode, or start one
            last = eps[-1] if eps else None
            if last is not None and last[1] >= w - DAILY_TOLERANCE:
                last[1], last[2] = w, max(last[2], off)
            else:
                eps.append([w, w, off])
                horizon = w - (DAILY_DAYS + 1) * day
                eps[:] = [ep for ep in eps if ep[1] >= horizon][-DAILY_EPISODES:]
        return out

    def _daily_explains(self, w: int) -> tuple[str, ...]:
        """The channels a platform-wide daily pattern still explains at window ``w``."""
        return self.daily_channels if w <= self.daily_until else ()

    def _explain(self, ctx: WindowContext, findings: list[Finding]) -> list[Finding]:
        """Publisher findings a platform-wide finding explains are listed in it, not raised."""
        stream_wide = [f for f in findings if f.kind in (Kind.PLATFORM_SPIKE, Kind.REASON_SHIFT)]
        explained: set[str] = set()
        for f in stream_wide:
            explained.update(f.channels)
        # an open stream-wide alert explains every channel it has fired on, and what it
        # carries now: a reason shift's rising reason can flip between windows (the
        # relabelled reason one window, the one it was taken from the next), and a window's
        # finding alone leaves the other to fire as alerts on the largest publishers
        for cur in self.book.open.values():
            if cur.kind in (Kind.PLATFORM_SPIKE, Kind.REASON_SHIFT):
                explained.update(cur.last.channels)
                explained.update(cur.carried)
        explained.update(self._daily_explains(ctx.acc.index))
        if not explained:
            return findings
        kept: list[Finding] = []
        affected: list[str] = []
        spike_channels = {
            c for f in stream_wide if f.kind is Kind.PLATFORM_SPIKE for c in f.channels
        } | {
            c
            for cur in self.book.open.values()
            if cur.kind is Kind.PLATFORM_SPIKE
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
        """Detector and alert state as plain data (msgpack/JSON-able)."""
        return {
            "publisher": self.publisher.snapshot(),
            "platform": self.platform.snapshot(),
            "quality": {d.name: d.snapshot() for d in self.quality},
            "volume": self.volume.snapshot(),
            "book": self.book.snapshot(),
            "alert_counts": [[k, s, n] for (k, s), n in self.alert_counts.items()],
            "windows_closed": self.windows_closed,
            "reported": [[k, v] for k, v in self.reported.items()],
            "pending": [partial_to_wire(p) for by in self.pending.values() for p in by.values()],
            "closed_through": self.closed_through,
            "watermark": self.watermark,
            "redelivered": self.redelivered,
            "alerts": [msgspec.to_builtins(a) for a in self.alerts],
            "daily": self.daily,
            "daily_recurring": self.daily_recurring,
            "daily_explains": [list(self.daily_channels), self.daily_until],
        }

    def restore(self, snap: dict[str, Any]) -> None:
        self.publisher.restore(snap["publisher"])
        self.platform.restore(snap["platform"])
        for d in self.quality:
            d.restore(snap["quality"][d.name])
        self.volume.restore(snap["volume"])
        self.book.restore(snap["book"])
        self.alert_counts = Counter({(k, s): n for k, s, n in snap["alert_counts"]})
        self.windows_closed = snap["windows_closed"]
        self.reported = {k: v for k, v in snap["reported"]}
        self.pending = {}
        for w in snap["pending"]:
            p = partial_from_wire(w, self.params.window_s)
            self.pending.setdefault(p.acc.index, {})[p.part] = p
        self.closed_through = snap["closed_through"]
        self.watermark = snap["watermark"]
        self.redelivered = snap["redelivered"]
        self.alerts = [msgspec.convert(a, Alert) for a in snap["alerts"]]
        # absent before the daily-pattern rule for stream-wide findings: none remembered
        self.daily = {k: [list(ep) for ep in eps] for k, eps in snap.get("daily", {}).items()}
        self.daily_recurring = snap.get("daily_recurring", 0)
        channels, self.daily_until = snap.get("daily_explains", [[], -1])
        self.daily_channels = tuple(channels)


def _prior_episode(
    kind: Kind, eps: list[list[float]], w: int, day: int, off: float
) -> tuple[int, list[float]] | None:
    """(days before, episode): the episode of ``kind`` at window ``w``'s time of day on
    the nearest of the last ``DAILY_DAYS`` days that makes a finding ``off`` from normal a
    daily pattern; None if there is none."""
    for d in range(1, DAILY_DAYS + 1):
        then = w - d * day
        for ep in eps:
            near = ep[0] - DAILY_TOLERANCE <= then <= ep[1] + DAILY_TOLERANCE
            short = kind is Kind.VOLUME_DROP or ep[1] - ep[0] < DAILY_MAX_WINDOWS
            if near and short and off <= DAILY_MAX_RATIO * ep[2]:
                return d, ep
    return None


def _how_far_off(f: Finding) -> float:
    """How far a stream-wide finding is from normal: observed/expected (a rise) or
    expected/observed (a drop), at least 1."""
    obs = float(f.evidence.get("observed", 0.0))
    exp = float(f.evidence.get("expected", 0.0))
    if f.kind is Kind.VOLUME_DROP:
        return max(1.0, exp / max(obs, 1.0))
    return max(1.0, obs / max(exp, 1e-9))


def _as_daily(f: Finding, prior: tuple[int, list[float]], width: int) -> Finding:
    days, ep = prior
    at = iso(ep[0] * width)
    what = "platform-wide rise" if f.kind is Kind.PLATFORM_SPIKE else "volume drop"
    summary = (
        f"{f.summary} Not raised: a {what} at this time of day {days} day"
        f"{'s' if days > 1 else ''} before too (from {at}), a daily pattern such as a "
        f"network's reversal batch or the end of a nightly batch."
    )
    evidence = dict(f.evidence)
    evidence["recurring"] = {"days_before": days, "since": at, "how_far_off": round(ep[2], 2)}
    return dataclasses.replace(f, firing=False, summary=summary, evidence=evidence)


_SUMMED = ("events", "rejected", "duplicates", "violations", "future", "late", "arrivals")


def merge_partials(by_part: dict[int, Partial]) -> tuple[WindowAcc, float | None]:
    """One window from its partials (in partition order); the watermark is the lowest any
    partition had when it closed the window (a deterministic decision time)."""
    parts = [by_part[k] for k in sorted(by_part)]
    wms = [p.watermark for p in parts if p.watermark is not None]
    wm = min(wms) if wms else None
    if len(parts) == 1:
        return parts[0].acc, wm
    first = parts[0].acc
    acc = WindowAcc(first.index, first.width)
    for p in parts:
        a = p.acc
        acc.pubs.update(a.pubs)  # publishers are partitioned: no overlap
        for name in _SUMMED:
            setattr(acc, name, getattr(acc, name) + getattr(a, name))
        for src, dst in (
            (a.rejected_by_code, acc.rejected_by_code),
            (a.violations_by_type, acc.violations_by_type),
        ):
            for key, n in src.items():
                dst[key] = dst.get(key, 0) + n
    return acc, wm


def partial_to_wire(p: Partial) -> dict[str, Any]:
    a = p.acc
    return {
        "part": p.part, "wm": p.watermark, "index": a.index, "pubs": a.pubs,
        "counts": [getattr(a, name) for name in _SUMMED],
        "rejected_by_code": dict(a.rejected_by_code),
        "violations_by_type": dict(a.violations_by_type),
    }  # fmt: skip


def partial_from_wire(d: dict[str, Any], width: int) -> Partial:
    acc = WindowAcc(d["index"], width)
    acc.pubs = {k: list(v) for k, v in d["pubs"].items()}
    for name, n in zip(_SUMMED, d["counts"], strict=True):
        setattr(acc, name, n)
    acc.rejected_by_code = dict(d["rejected_by_code"])
    acc.violations_by_type = dict(d["violations_by_type"])
    return Partial(d["part"], acc, d["wm"])


class Monitor:
    """The three stages in one process, one partition each (replay, tests, benchmarks).

    Facts go from ``Ingest`` straight into ``Windowing.apply``, and each closed window
    straight into ``Detection``, through the stages' ``emit`` hooks; a valid event's fields
    go to ``Windowing.event`` without being packed into a fact (``on_event``). So
    ``process(raw, source=0)`` is the ingest stage's own: no list, no fact tuple and no
    wrapper on the per-message path.
    """

    def __init__(self, params: MonitorParams | None = None) -> None:
        self.params = p = params or MonitorParams()
        self.ingest = Ingest(p)
        self.windowing = Windowing(p)
        self.detection = Detection(p)
        self.ingest.emit = self.windowing.apply
        self.ingest.on_event = self.windowing.event
        self.windowing.emit = self._detect
        self.process = self.ingest.process  # one message; returns its rejection, if any

    # the parts drivers, summaries and tests look at
    @property
    def alerts(self) -> list[Alert]:
        return self.detection.alerts

    @property
    def windows(self) -> Any:
        return self.windowing.set

    @property
    def lifecycle(self) -> Any:
        return self.ingest.lifecycle

    def __getattr__(self, name: str) -> Any:
        # counters live in their stage: accepted, rejected, duplicates, violations,
        # invalidations (Ingest); detectors, book, alert_counts, windows_closed (Detection)
        for stage in ("ingest", "detection"):
            obj = self.__dict__.get(stage)
            if obj is not None and hasattr(obj, name):
                return getattr(obj, name)
        raise AttributeError(name)

    # -- per message: ``process`` (set in __init__) ----------------------------------------
    def flush(self) -> None:
        """End of input: close every open window (a replay's last step)."""
        self.ingest.flush()
        self.windowing.flush()

    def take_alerts(self) -> list[Alert]:
        return self.detection.take_alerts()

    def _detect(self, partial: Partial) -> None:
        """A closed window: detection, and once a day of windows the lifecycle's eviction."""
        acc = partial.acc
        detected_at = max(self.windowing.watermark or acc.end, acc.end)
        self.detection.close(acc, detected_at)
        if acc.index % EVICT_EVERY_WINDOWS == 0:
            self.ingest.lifecycle.evict(detected_at)

    # -- state ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain data (msgpack/JSON-able): restore() continues exactly."""
        return {
            "version": 2,
            "ingest": self.ingest.snapshot(),
            "windowing": self.windowing.snapshot(),
            "detection": self.detection.snapshot(),
        }

    @classmethod
    def restore(cls, snap: dict[str, Any], params: MonitorParams | None = None) -> Monitor:
        mon = cls(params)
        mon.ingest.restore(snap["ingest"])
        mon.windowing.restore(snap["windowing"])
        mon.detection.restore(snap["detection"])
        return mon
