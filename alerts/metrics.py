"""Delivery metrics on an injected registry (``ordermon_`` prefix, base units).

- ``ordermon_notifications_total{receiver,outcome}``: deliveries finished: ``delivered``,
  ``rejected`` (a 4xx, not retried), ``dead_lettered`` (retries ran out at max age);
- ``ordermon_notifications_failed_total{receiver,reason}``: failed attempts by reason
  (``timeout``, ``connection``, ``rate_limited``, ``server_error``, ``client_error``, ...);
- ``ordermon_notification_latency_seconds{receiver}``: duration of each attempt;
- ``ordermon_notification_queue_depth{receiver}``: deliveries waiting in the outbox, and
  ``ordermon_notification_dead_letters{receiver}``: deliveries given up on and kept there
  (both read from the outbox at scrape time).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from alerts.receivers.base import FailReason
from alerts.store import Store

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _OutboxCollector(Collector):
    def __init__(self, store: Store, receivers: Iterable[str]) -> None:
        self.store = store
        self.receivers = tuple(receivers)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = self.store.depth()
        q = GaugeMetricFamily("ordermon_notification_queue_depth",
                              "Deliveries waiting in the outbox", labels=["receiver"])  # fmt: skip
        dead = GaugeMetricFamily(
            "ordermon_notification_dead_letters",
            "Deliveries given up on (dead-lettered or rejected), kept in the outbox",
            labels=["receiver"],
        )
        names = sorted(set(self.receivers) | {r for r, _ in depth})
        for r in names:
            q.add_metric([r], depth.get((r, "pending"), 0))
            dead.add_metric([r], depth.get((r, "dead"), 0) + depth.get((r, "rejected"), 0))
        yield q
        yield dead


class AlertMetrics:
    def __init__(self, registry: CollectorRegistry, store: Store, receivers: Iterable[str]):
        names = tuple(receivers)
        self.notifications = Counter(
            "ordermon_notifications", "Deliveries finished, by receiver and outcome",
            ["receiver", "outcome"], registry=registry,
        )  # fmt: skip
        self.failed = Counter(
            "ordermon_notifications_failed", "Failed delivery attempts, by receiver and reason",
            ["receiver", "reason"], registry=registry,
        )  # fmt: skip
        self.latency = Histogram(
            "ordermon_notification_latency_seconds", "Duration of delivery attempts",
            ["receiver"], buckets=_BUCKETS, registry=registry,
        )  # fmt: skip
        registry.register(_OutboxCollector(store, names))
        for r in names:  # known label values start at 0: every series exists from the start
            for outcome in ("delivered", "rejected", "dead_lettered"):
                self.notifications.labels(r, outcome)
            for reason in FailReason:
                self.failed.labels(r, reason.value)
