"""A small, explicit event-stream builder for scenario tests (independent of the simulator).

Publishers place orders at a Poisson rate with a mild daily cycle; a share of paid orders
is invalidated later. Incidents are injected by the tests with the helper methods.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

START = dt.datetime(2026, 11, 2, tzinfo=dt.UTC).timestamp()
REASONS = ["refund", "cancel", "fraud", "violation", "data_anomaly", "other"]
MIX = [0.55, 0.3, 0.05, 0.03, 0.01, 0.06]


class Stream:
    def __init__(
        self,
        seed: int = 1,
        publishers: int = 200,
        hours: float = 12.0,
        orders_per_hour: float = 3000.0,
        inv_ratio: float = 0.12,
    ) -> None:
        self.rng = random.Random(seed)
        self.hours = hours
        self.events: list[tuple[float, dict]] = []
        self.n = 0
        sizes = [self.rng.paretovariate(1.2) for _ in range(publishers)]
        tot = sum(sizes)
        self.pubs = [f"pub-{i:04d}" for i in range(publishers)]
        self.share = {p: s / tot for p, s in zip(self.pubs, sizes, strict=True)}
        self.orders_per_hour = orders_per_hour
        self.inv_ratio = inv_ratio

    def _id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n}"

    def event(
        self,
        ts: float,
        pub: str,
        order: str,
        status: str,
        reason: str | None = None,
        parent: str | None = None,
        event_id: str | None = None,
    ) -> dict:
        ev = {
            "schema_version": 1,
            "event_id": event_id or self._id("e"),
            "order_id": order,
            "publisher_id": pub,
            "status": status,
            "amount": 50.0,
            "commission": 2.5,
            "occurred_at": dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(),
        }
        if reason:
            ev["reason"] = reason
        if parent:
            ev["parent_order_id"] = parent
        self.events.append((ts, ev))
        return ev

    def order(self, ts: float, pub: str, invalidate: str | None = None, lag: float = 0.0) -> str:
        oid = self._id("o")
        self.event(ts, pub, oid, "created")
        self.event(ts + 5, pub, oid, "paid")
        if invalidate:
            self.event(ts + 5 + lag, pub, oid, "invalidated", invalidate)
        return oid

    def baseline(self, mult=lambda pub, ts: 1.0) -> Stream:
        """Ordinary traffic for the whole span."""
        rng = self.rng
        step = 60.0
        t = START
        end = START + self.hours * 3600
        while t < end:
            for pub in self.pubs:
                lam = self.orders_per_hour * self.share[pub] * step / 3600 * mult(pub, t)
                k = _poisson(rng, lam)
                for _ in range(k):
                    ts = t + rng.random() * step
                    inv = None
                    lag = 0.0
                    if rng.random() < self.inv_ratio:
                        inv = rng.choices(REASONS, MIX)[0]
                        lag = rng.expovariate(1 / 1800)
                    self.order(ts, pub, inv, lag)
            t += step
        return self

    def burst(self, pub: str, at_h: float, minutes: float, count: int, reason: str) -> None:
        """``count`` orders of ``pub`` invalidated within minutes of payment."""
        t0 = START + at_h * 3600
        for _ in range(count):
            self.order(
                t0 + self.rng.random() * minutes * 60, pub, reason, lag=60 + self.rng.random() * 300
            )

    def replay(self, params: Any = None) -> Any:
        """A ``Monitor`` (with ``params``) that has read the whole stream and flushed."""
        from monitor.pipeline import Monitor

        mon = Monitor(params)
        for line in self.lines():
            mon.process(line)
        mon.flush()
        return mon

    def lines(self) -> list[bytes]:
        """Events in time order, cut at the end of the span (no thinning tail)."""
        end = START + self.hours * 3600
        evs = sorted((e for e in self.events if e[0] < end), key=lambda x: x[0])
        return [json.dumps(ev).encode() for _, ev in evs]


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, lam**0.5)))
    import math

    k, p, target = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= target:
            return k
        k += 1


def hours(h: float) -> float:
    return START + h * 3600
