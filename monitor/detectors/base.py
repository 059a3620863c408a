"""The one protocol every detector follows, and the finding it returns.

A detector sees closed windows in order. ``score(ctx)`` looks and reports findings; it
never changes state. ``learn(ctx, findings)`` then updates the baselines, and is told
which scopes were anomalous so a long incident does not become the new normal (River's
``protect_anomaly_detector``). ``snapshot()`` / ``restore()`` make the state portable
(checkpoints in the stream driver).

A finding has two levels: ``firing`` (strong enough to open an alert) and ``sustain``
(strong enough to keep an open alert from resolving): hysteresis, so an alert does not
flap on the edge of its threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from monitor.model import Kind, Severity
from monitor.windows import WindowAcc


@dataclass(slots=True)
class Finding:
    kind: Kind
    scope: str | None  # publisher id for publisher findings, None for stream-wide ones
    firing: bool
    sustain: bool
    score: float
    severity: Severity
    summary: str
    reason: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    channels: tuple[str, ...] = ()  # which count channels carry the excess


@dataclass(slots=True)
class WindowContext:
    """Everything a detector may look at when a window closes."""

    acc: WindowAcc
    platform: list[int]  # per-slot sums over publishers (see monitor.windows)
    detected_at: float  # stream time of the decision (the watermark)
    warm: bool  # past the monitor's warm-up
    season: float = 1.0  # platform invalidation seasonal index for this window (mean 1)
    season_short: float = 1.0  # short exponentially weighted sum of the index
    volume_factor: float = 1.0  # platform orders vs their seasonal forecast (>= 1)
    order_ratio: tuple[float, ...] = ()  # platform invalidations per order, per channel
    publisher_tests: int = 0  # publishers tested this window (false-alarm control)
    publisher_results: dict[str, Any] = field(default_factory=dict)
    explained: set[str] = field(default_factory=set)  # publishers a platform finding covers
    quiet_reasons: frozenset[int] = frozenset()  # reason slots an open platform alert covers


class Detector(Protocol):
    name: str

    def score(self, ctx: WindowContext) -> list[Finding]: ...

    def learn(self, ctx: WindowContext, findings: list[Finding]) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, snap: dict[str, Any]) -> None: ...


def severity_for(score: float, threshold: float, excess_ratio: float) -> Severity:
    """Critical when far past the threshold and the excess is large; warning otherwise."""
    if score >= 2 * threshold and excess_ratio >= 4:
        return Severity.CRITICAL
    return Severity.WARNING


class GuardedSeries:
    """A seasonal series that does not learn flagged points, for a bounded time.

    The caller knows better than the series when a point is an incident (a broad spike, a
    promotion's surge): while flagged, the series holds (``SeasonalDetector.hold``: its
    phase advances, its level, trend and scale stay; the daily profile learns the point
    clipped, so a pattern that recurs every day is not frozen out), so the incident does
    not become the baseline; after ``accept_after`` flagged windows in a row the shift is
    accepted as the new normal. (Learning its own forecast instead would keep a trend
    running: a small platform's noisy day-1 trend then walked the forecast away.)
    """

    def __init__(self, series: Any, accept_after: int = 72) -> None:
        self.series = series
        self.accept_after = accept_after
        self.flagged_run = 0

    def learn(self, x: float, flagged: bool) -> None:
        if flagged and self.flagged_run < self.accept_after and self.series.warm:
            self.flagged_run += 1
            self.series.hold(x)
            return
        self.flagged_run = self.flagged_run + 1 if flagged else 0
        self.series.learn_one(x, anomalous=False if flagged else None)

    def snapshot(self) -> dict[str, Any]:
        return {"series": self.series.snapshot(), "flagged_run": self.flagged_run}

    def restore(self, snap: dict[str, Any]) -> None:
        self.series = type(self.series).restore(snap["series"])
        self.flagged_run = snap["flagged_run"]
