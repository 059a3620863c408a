"""Data-quality detectors: the feed itself is broken.

``RateDetector`` covers the four "share of bad inputs" kinds with one model: the count of
bad inputs in a window against a learned background rate times the window's arrivals
(Poisson tail), firing only past a minimum rate and count, so a natural trickle of
redeliveries or the odd truncated line is the background, not an incident.

``VolumeDrop`` compares the messages that *arrived* in a window (by stream clock:
future-stamped, late and malformed ones arrived too; duplicates count once) with
the seasonal forecast of the series detector (``monitor.series``): events missing against
what this time of day carries, not against a fixed floor. On the first day, before there
is a profile, only an abrupt fall below the series' level-and-trend tracker counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from monitor.detectors.base import Finding, GuardedSeries, WindowContext
from monitor.model import Kind, Severity
from monitor.series import SeasonalDetector
from monitor.stats import nb_upper_score, poisson_lower_score
from monitor.windows import ORDERS


@dataclass(frozen=True, slots=True)
class RateParams:
    min_rate: float  # share of arrivals needed to fire
    min_count: int = 10  # bad inputs in the window needed to fire
    min_ratio: float = 3.0  # observed / expected background
    score: float = 6.0  # -log10 p needed to fire
    background: float = 1e-3  # prior background rate
    halflife_windows: float = 288.0  # memory of the background rate: one day


DEFAULT_RATES: dict[Kind, RateParams] = {
    Kind.MALFORMED_EVENTS: RateParams(min_rate=0.005, min_count=5, background=1e-4),
    Kind.DUPLICATE_EVENTS: RateParams(min_rate=0.03, background=3e-3),
    Kind.LIFECYCLE_VIOLATION: RateParams(min_rate=0.005, min_count=5, background=1e-4),
    Kind.CLOCK_SKEW: RateParams(min_rate=0.01, background=1e-4),
}

_FIELD = {
    Kind.MALFORMED_EVENTS: "rejected",
    Kind.DUPLICATE_EVENTS: "duplicates",
    Kind.LIFECYCLE_VIOLATION: "violations",
    Kind.CLOCK_SKEW: "future",
}

_WHAT = {
    Kind.MALFORMED_EVENTS: "malformed events rejected",
    Kind.DUPLICATE_EVENTS: "duplicate deliveries (same event_id)",
    Kind.LIFECYCLE_VIOLATION: "impossible lifecycle steps",
    Kind.CLOCK_SKEW: "events stamped in the future",
}


class RateDetector:
    def __init__(self, kind: Kind, params: RateParams | None = None) -> None:
        self.kind = kind
        self.name = kind.value
        self.p = params or DEFAULT_RATES[kind]
        self.g = 2.0 ** (-1.0 / self.p.halflife_windows)
        self.bad = 0.0
        self.seen = 0.0

    def _rate(self) -> float:
        k = 1000.0  # prior weight in arrivals
        return (self.bad + k * self.p.background) / (self.seen + k)

    def score(self, ctx: WindowContext) -> list[Finding]:
        acc = ctx.acc
        x = getattr(acc, _FIELD[self.kind])
        n = acc.arrivals
        if x == 0 or n == 0:
            return []
        p = self.p
        e = self._rate() * n
        s = nb_upper_score(x, e)
        share = x / n
        firing = s >= p.score and x >= p.min_count and share >= p.min_rate and x >= p.min_ratio * e
        sustain = share >= p.min_rate / 2 and x >= 2 * e and x >= p.min_count / 2
        if not (firing or sustain):
            return []
        evidence: dict[str, Any] = {
            "observed": x,
            "expected": round(e, 2),
            "arrivals": n,
            "share": round(share, 4),
            "score": round(s, 2),
            "thresholds": {"score": p.score, "min_rate": p.min_rate, "min_count": p.min_count},
        }
        if self.kind is Kind.MALFORMED_EVENTS:
            evidence["by_code"] = dict(acc.rejected_by_code)
        elif self.kind is Kind.LIFECYCLE_VIOLATION:
            evidence["by_type"] = dict(acc.violations_by_type)
        summary = (
            f"{share:.1%} of the feed were {_WHAT[self.kind]} ({x} of {n} in "
            f"{acc.width // 60} min, normal is {e / n:.2%})."
        )
        severity = Severity.CRITICAL if share >= 10 * p.min_rate else Severity.WARNING
        return [Finding(self.kind, None, firing, True, s, severity, summary, None, evidence)]

    def learn(self, ctx: WindowContext, findings: list[Finding]) -> None:
        x = getattr(ctx.acc, _FIELD[self.kind])
        n = ctx.acc.arrivals
        if findings:
            x = min(x, self._rate() * n)
        self.bad = self.bad * self.g + x
        self.seen = self.seen * self.g + n

    def snapshot(self) -> dict[str, Any]:
        return {"bad": self.bad, "seen": self.seen}

    def restore(self, snap: dict[str, Any]) -> None:
        self.bad, self.seen = snap["bad"], snap["seen"]


@dataclass(frozen=True, slots=True)
class VolumeParams:
    period_windows: int = 288  # windows in a day: the daily profile of volume
    min_drop: float = 0.25  # fire when at least this share of expected events is missing
    score: float = 6.0  # Poisson lower-tail -log10 p needed to fire
    min_expected: float = 50.0  # too little traffic to call a drop
    surge_ratio: float = 1.3  # a window this far above its forecast is not learned (promotion)
    cusum_allowance: float = 1.0  # z-units of slack per window in the sustained-drop CUSUM
    cusum_threshold: float = 8.0  # a drop of 3 sigma held for ~4 windows fires
    # traffic drifts from the daily profile for hours (a weekend's later, lower morning
    # ramp is 15-25% under a weekday's): a drop is judged against the profile times the
    # recent ratio of observed to profile, an EWMA over ``drift_halflife_windows`` kept
    # between ``drift_floor`` and 1. A lost producer or partition is abrupt: the ratio
    # does not learn a window ``drift_freeze_drop`` or more below the forecast it judges
    drift_halflife_windows: float = 6.0
    drift_floor: float = 0.8
    drift_freeze_drop: float = 0.15
    # the first day has no profile, only the series' level-and-trend tracker, which
    # follows a step down within two windows. A window ``drift_freeze_drop`` below it and
    # ``first_day_hold_z`` beyond its noise is held out of it, so a lost partition stays
    # visible; two such windows in a row ``first_day_min_drop`` below and ``first_day_z``
    # beyond the noise fire (the tracker's day-1 noise is 1-3 z; a lost third of the
    # traffic is 4-6 z), and the fall stays held while the alert lasts (bounded)
    first_day_z: float = 4.0
    first_day_min_drop: float = 0.25
    first_day_hold_z: float = 3.0
    first_day_hold_windows: int = 24
    first_day_surge_ratio: float = 1.6  # a first-day window this far above the tracker is
    # a promotion's surge, held out of it (later days: ``surge_ratio`` or the series' z)
    # a batch job ending (a night's confirmations or settlements) takes its statuses off
    # the feed and no orders with them; a lost producer, partition or feed takes the
    # orders it carried too. With no profile to know the batch by, a first-day fall fires
    # only if the orders placed fell by at least this share of the events' fall, judged
    # against their own recent level (halflife ``first_day_orders_halflife`` windows),
    # where that level is ``first_day_min_orders`` a window or more (0: off)
    first_day_orders_share: float = 0.5
    first_day_min_orders: float = 30.0
    first_day_orders_halflife: float = 2.0


class VolumeDrop:
    name = "volume_drop"

    def __init__(self, params: VolumeParams | None = None) -> None:
        self.p = params or VolumeParams()
        self.guard = GuardedSeries(SeasonalDetector(self.p.period_windows, counts=True))
        # lower-side CUSUM of the series' z: a partition silently lost drops volume by a
        # third for an hour; no single window is extreme, the run is
        self.cusum = 0.0
        self.run_observed = 0.0
        self.run_expected = 0.0
        self.ratio = 1.0  # recent observed / profile forecast (drift)
        self.g_ratio = 0.5 ** (1.0 / self.p.drift_halflife_windows)
        self.first_run = 0  # first day: windows in a row far below the tracker
        self.first_held = 0  # first day: windows in a row held out of the tracker
        self.first_fired = False  # first day: a drop fired and its fall is still held
        self.first_orders = 0.0  # first day: recent orders placed per window (0: none yet)
        self.g_orders = 0.5 ** (1.0 / self.p.first_day_orders_halflife)

    @property
    def series(self) -> SeasonalDetector:
        return self.guard.series

    def score(self, ctx: WindowContext) -> list[Finding]:
        p = self.p
        if not self.series.warm:
            return []
        x = _arrived(ctx)
        if self.series.period and self.series.season is None:
            return self._score_first_day(ctx, x)
        sc = self.series.score_one(x)
        if sc.expected < p.min_expected:
            return []
        e = sc.expected * self._drift()
        drop = 1.0 - x / e
        s = poisson_lower_score(x, e)
        cus, run_x, run_e = self._cusum(sc.z, x, e)
        run_drop = 1.0 - run_x / run_e if run_e > 0 else 0.0
        firing = (sc.direction < 0 and sc.score >= 0.5 and drop >= p.min_drop and s >= p.score) or (
            cus >= p.cusum_threshold and run_drop >= p.min_drop and drop >= p.min_drop
        )
        sustain = drop >= p.min_drop / 2 and s >= 2.0
        if not (firing or sustain):
            return []
        summary = (
            f"Event volume dropped {drop:.0%} below what this time of day carries: "
            f"{x} events in {ctx.acc.width // 60} min where {e:.0f} were expected - "
            f"a producer, topic or partition may be missing."
        )
        evidence = {
            "observed": x,
            "expected": round(e, 1),
            "profile_expected": round(sc.expected, 1),
            "recent_ratio": round(self._drift(), 3),
            "lower_band": round(sc.lower, 1),
            "drop": round(drop, 3),
            "score": round(s, 2),
            "series_score": round(sc.score, 3),
            "cusum": round(cus, 2),
            "run_drop": round(run_drop, 3),
            "thresholds": {"min_drop": p.min_drop, "score": p.score, "cusum": p.cusum_threshold},
        }
        severity = Severity.CRITICAL if drop >= 0.7 else Severity.WARNING
        return [Finding(Kind.VOLUME_DROP, None, firing, True, s, severity, summary, None, evidence)]

    def _first_day(self, x: float, orders: int) -> tuple[Any, float, float, bool, bool]:
        """First day (no profile): (series score, drop, Poisson score, far below, hold)."""
        p = self.p
        sc = self.series.score_one(x)
        e = sc.expected
        if e < p.min_expected:
            return sc, 0.0, 0.0, False, False
        drop = 1.0 - x / e
        s = poisson_lower_score(x, e)
        far = drop >= p.first_day_min_drop and s >= p.score and sc.z <= -p.first_day_z
        far = far and self._orders_fell(orders, drop)
        hold = drop >= p.drift_freeze_drop and sc.z <= -p.first_day_hold_z
        return sc, drop, s, far, hold

    def _orders_fell(self, orders: int, drop: float) -> bool:
        """The orders placed fell with the events (or are too few to tell): the fall is
        lost traffic, not the end of a batch of status updates."""
        p, level = self.p, self.first_orders
        if p.first_day_orders_share <= 0 or level < p.first_day_min_orders:
            return True
        return 1.0 - orders / level >= p.first_day_orders_share * drop

    def _score_first_day(self, ctx: WindowContext, x: int) -> list[Finding]:
        """Until a full day has taught the series its profile, the tracker is the only
        forecast: a promotion's ramp and a busy hour look like trend to it, so only an
        abrupt, held fall is called a drop (a lost producer or partition)."""
        p = self.p
        orders = ctx.platform[ORDERS]
        sc, drop, s, far, hold = self._first_day(x, orders)
        firing = far and self.first_run >= 1
        # an open alert stays open while the traffic stays below the held tracker
        sustain = self.first_fired and drop >= p.first_day_min_drop / 2 and s >= 2.0
        if not (firing or sustain):
            return []
        e = sc.expected
        summary = (
            f"Event volume dropped {drop:.0%} abruptly: {x} events in {ctx.acc.width // 60} "
            f"min where the recent trend pointed to {e:.0f} (first day: no daily profile "
            f"yet) - a producer, topic or partition may be missing."
        )
        evidence = {
            "test": "first_day_step",
            "observed": x,
            "expected": round(e, 1),
            "drop": round(drop, 3),
            "score": round(s, 2),
            "series_z": round(sc.z, 2),
            "windows_below": self.first_run + 1 if far else self.first_run,
            "orders": orders,
            "orders_expected": round(self.first_orders, 1),
            "thresholds": {"min_drop": p.first_day_min_drop, "score": p.score, "z": p.first_day_z},
        }
        severity = Severity.CRITICAL if drop >= 0.7 else Severity.WARNING
        return [Finding(Kind.VOLUME_DROP, None, firing, True, s, severity, summary, None, evidence)]

    def _cusum(self, z: float, x: float, e: float) -> tuple[float, float, float]:
        cus = max(0.0, self.cusum - z - self.p.cusum_allowance)
        if cus <= 0:
            return 0.0, 0.0, 0.0
        if self.cusum <= 0:
            return cus, x, e
        return cus, self.run_observed + x, self.run_expected + e

    def _drift(self) -> float:
        """Factor on the profile's forecast: the recent ratio, never above 1 (a promotion
        must not raise the bar) nor below ``drift_floor``."""
        return min(1.0, max(self.p.drift_floor, self.ratio))

    def learn(self, ctx: WindowContext, findings: list[Finding]) -> None:
        p = self.p
        x = _arrived(ctx)
        first_day = bool(self.series.warm and self.series.period and self.series.season is None)
        if first_day:
            orders = ctx.platform[ORDERS]
            _, drop, _, far, hold = self._first_day(x, orders)
            self.first_run = self.first_run + 1 if far else 0
            self.first_fired = self.first_fired or self.first_run >= 2
            # a fall is held out of the tracker for the two windows that confirm it, and
            # for as long as the alert it raised lasts (bounded); an unconfirmed one is
            # the day's curve (a busy hour ending), which the tracker must follow
            if self.first_fired:
                hold = drop >= p.first_day_min_drop / 2
                hold = hold and self.first_held < p.first_day_hold_windows
            else:
                hold = hold and self.first_held < 2
            self.first_held = self.first_held + 1 if hold else 0
            self.first_fired = self.first_fired and hold
            if hold:  # the tracker keeps the level before the fall
                self.guard.series.hold(x)
                return
            g = self.g_orders if self.first_orders > 0 else 0.0
            self.first_orders = g * self.first_orders + (1.0 - g) * orders
        else:
            self.first_run, self.first_held, self.first_fired = 0, 0, False
        sc = self.series.score_one(x) if self.series.warm else None
        if sc is not None and sc.expected >= self.p.min_expected:
            e = sc.expected * self._drift()
            self.cusum, self.run_observed, self.run_expected = self._cusum(sc.z, x, e)
            if x >= (1.0 - self.p.drift_freeze_drop) * e:
                self.ratio = self.g_ratio * self.ratio + (1.0 - self.g_ratio) * min(
                    1.5, x / sc.expected
                )
        else:
            self.cusum, self.run_observed, self.run_expected = 0.0, 0.0, 0.0
        # neither a drop nor a surge (a promotion) may become the expected volume, or the
        # end of a promotion would look like events going missing; 30% above the forecast
        # in one window is far steeper than any daily ramp
        surge = sc is not None and (sc.direction > 0 or x > self.p.surge_ratio * sc.expected)
        if first_day:
            # the first day's tracker follows the daily ramp one window behind it: an
            # hour-to-hour jump of traffic is 1.1-1.3x there, a promotion 2x and more
            # (a fall is held above, while it lasts: nothing else keeps it out)
            surge = sc is not None and x > self.p.first_day_surge_ratio * sc.expected
            self.guard.learn(x, surge)
            return
        # a daily pattern (``monitor.pipeline``: the end of a nightly batch) is learned
        drop = any("recurring" not in f.evidence for f in findings)
        self.guard.learn(x, drop or surge)

    def snapshot(self) -> dict[str, Any]:
        return {
            **self.guard.snapshot(),
            "cusum": [self.cusum, self.run_observed, self.run_expected],
            "ratio": self.ratio,
            "first_day": [self.first_run, self.first_held, int(self.first_fired)],
            "first_orders": self.first_orders,
        }

    def restore(self, snap: dict[str, Any]) -> None:
        self.guard.restore(snap)
        self.cusum, self.run_observed, self.run_expected = snap["cusum"]
        self.ratio = snap.get("ratio", 1.0)  # absent before the drift ratio: no drift
        self.first_run, self.first_held, fired = snap.get("first_day", (0, 0, 0))
        self.first_fired = bool(fired)
        self.first_orders = snap.get("first_orders", 0.0)  # absent before: learned anew


def _arrived(ctx: WindowContext) -> int:
    """Messages that arrived in the window, once each: a producer writing garbage or
    mis-stamped events is the malformed/clock-skew detectors' finding, not lost volume."""
    acc = ctx.acc
    return acc.arrivals - acc.duplicates
