"""Prometheus metrics of one worker: ``GET /metrics`` on its web port (names: ``METRIC_NAMES``).

Two kinds of numbers, kept apart on purpose:

- **Counters are per process.** Prometheus sums them over workers, so each worker counts only
  what *it* processed, never a total read from checkpointed state (that state moves between
  workers with its partitions and would be counted twice). The stage tasks already count
  what they see (``Ingest.accepted``, ``rejected``, ``WindowSet.late_total``, ...); this
  module takes a baseline of those counts when a task is loaded (``PartitionRunner.on_task``,
  after its checkpoint is restored) and adds the increase since to plain ints at scrape
  time (``sync``), including the last increase of a task whose partition was revoked. The
  per-message path pays nothing for them; only the latency histogram costs one
  ``bisect`` per message (``Hist``, not ``prometheus_client.Histogram``: no lock, no
  label lookup).
- **Gauges are read from state at scrape time** by this collector: open windows, tracked
  orders and publishers, lag, watermark, readiness, checkpoint sizes, open alerts, the last
  closed window's platform counts and the bounded per-publisher set. Values that only the
  detection worker has (it holds partition 0 of the partials topic) are absent on the
  others; sums over a worker's own state are 0 there.

Per-publisher series exist only for ``Overview.metric_publishers(n)``: the ``n`` largest
by long-run volume plus those with an open alert. They are rebuilt on every scrape, so a
publisher that leaves the set has no series from the next scrape on; the label set never
grows with the number of publishers.

Labelled counters whose label values are known (statuses, codes, reasons, kinds x status,
stages) start at 0, so every name is present on a fresh worker.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from monitor.lifecycle import Violation
from monitor.model import KIND_CATEGORY, REASONS, AlertStatus, Kind, RejectCode, Severity

# Every name /metrics exposes, as PromQL sees it (counters with ``_total``; a histogram by
# its base name, which exposes ``_bucket``, ``_sum`` and ``_count``). The contract with the
# dashboards and rules in deploy/: a name here is on every worker's /metrics (families that
# only the detection worker fills are announced, without samples, on the others).
STREAM_METRIC_NAMES: tuple[str, ...] = (
    "ordermon_events_total",
    "ordermon_rejections_total",
    "ordermon_dead_letters_total",
    "ordermon_invalidations_total",
    "ordermon_duplicates_total",
    "ordermon_lifecycle_violations_total",
    "ordermon_late_events_total",
    "ordermon_future_events_total",
    "ordermon_windows_closed_total",
    "ordermon_recurring_spikes_total",
    "ordermon_alerts_total",
    "ordermon_alerts_firing",
    "ordermon_open_windows",
    "ordermon_tracked_publishers",
    "ordermon_tracked_orders",
    "ordermon_evictions_total",
    "ordermon_processing_latency_seconds",
    "ordermon_watermark_delay_seconds",
    "ordermon_watermark_timestamp_seconds",
    "ordermon_consumer_lag_messages",
    "ordermon_last_event_received_timestamp_seconds",
    "ordermon_stream_stalled",
    "ordermon_ready",
    "ordermon_assigned_partitions",
    "ordermon_checkpoint_bytes",
    "ordermon_platform_invalidations",
    "ordermon_platform_expected_invalidations",
    "ordermon_platform_orders",
    "ordermon_publisher_orders",
    "ordermon_publisher_invalidations",
    "ordermon_publisher_expected_invalidations",
    "ordermon_publisher_anomaly_score",
    "ordermon_publisher_alerting",
    "ordermon_build_info",
)
# alerts/metrics.py, registered into the same registry when [alerts] receivers exist
DELIVERY_METRIC_NAMES: tuple[str, ...] = (
    "ordermon_notifications_total",
    "ordermon_notifications_failed_total",
    "ordermon_notification_latency_seconds",
    "ordermon_notification_queue_depth",
    "ordermon_notification_dead_letters",
)
METRIC_NAMES: tuple[str, ...] = STREAM_METRIC_NAMES + DELIVERY_METRIC_NAMES

STAGES = ("ingest", "windowing", "detection")
EVENT_STATUSES = ("accepted", "rejected", "duplicate")
# per-message processing time: tens of microseconds (ingest) to tens of ms (a detection
# partial that closes a window of thousands of publishers)
LATENCY_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                   0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)  # fmt: skip


def _version() -> str:
    try:
        return version("ordermon")
    except PackageNotFoundError:
        return "unknown"


class Hist:
    """A histogram for the hot path: one ``bisect`` and two additions per observation,
    no lock (the worker's event loop is the only writer and the only reader)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Iterable[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # bounds are inclusive ("le")
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative ``(le, count)`` pairs, ``+Inf`` last."""
        out, total = [], 0
        for le, n in zip((*map(repr, map(float, self.bounds)), "+Inf"), self.counts, strict=True):
            total += n
            out.append((le, float(total)))
        return out


# -- the counts a stage task keeps, flattened to {(counter, label): value} ----------------
def _ingest_counts(task: Any) -> dict[tuple[str, str], int]:
    i = task.ingest
    out = {("events", "accepted"): i.accepted, ("events", "duplicate"): i.duplicates,
           ("evictions", "order"): i.lifecycle.evicted}  # fmt: skip
    for name, counts in (("rejections", i.rejected), ("violations", i.violations),
                         ("invalidations", i.invalidations)):  # fmt: skip
        for key, n in counts.items():
            out[(name, str(key))] = n
    return out


def _windowing_counts(task: Any) -> dict[tuple[str, str], int]:
    ws = task.windowing.set
    return {("late", ""): ws.late_total, ("future", ""): ws.future_total}


def _detection_counts(task: Any) -> dict[tuple[str, str], int]:
    d = task.detection
    return {("windows_closed", ""): d.windows_closed,
            ("evictions", "publisher"): d.publisher.evicted,
            ("recurring", ""): d.publisher.recurring}  # fmt: skip


_COUNTS = {"ingest": _ingest_counts, "windowing": _windowing_counts,
           "detection": _detection_counts}  # fmt: skip


class StreamMetrics(Collector):
    """The worker's metrics on an injected registry (never the process-global one)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        top_publishers: int = 50,
        build_version: str | None = None,
        announce_delivery: bool = False,
    ) -> None:
        """``announce_delivery``: no alert service registers the delivery metrics (no
        receivers configured); announce their names, without samples, so /metrics carries
        every name of ``METRIC_NAMES`` on every worker."""
        self.registry = registry
        self.top_publishers = top_publishers
        self.version = build_version or _version()
        self.sa: Any = None
        self.counts: dict[tuple[str, str], int] = dict.fromkeys(
            [("events", s) for s in EVENT_STATUSES if s != "rejected"]
            + [("rejections", c.value) for c in RejectCode]
            + [("violations", v.value) for v in Violation]
            + [("invalidations", r.value) for r in REASONS]
            + [("evictions", "publisher"), ("evictions", "order")]
            + [("late", ""), ("future", ""), ("windows_closed", ""), ("recurring", "")],
            0,
        )
        self.alerts: dict[tuple[str, str, str, str], int] = dict.fromkeys(
            ((k.value, KIND_CATEGORY[k].value, sev.value, st.value)
             for k in Kind for sev in Severity for st in AlertStatus), 0,
        )  # fmt: skip
        self.latency = {stage: Hist() for stage in STAGES}
        # (stage, partition) -> [task, its counts when last synced]
        self._seen: dict[tuple[str, int], list[Any]] = {}
        registry.register(self)
        if announce_delivery:
            registry.register(_DeliveryNames())

    # -- wiring -------------------------------------------------------------------------
    def attach(self, sa: Any) -> None:
        """Read gauges from ``sa`` (a ``StreamApp``) and take baselines of its tasks."""
        self.sa = sa
        for runner in (sa.ingest, sa.windowing, sa.detection):
            runner.on_task = self.task_loaded

    def task_loaded(self, stage: str, part: int, task: Any) -> None:
        """A task was created and restored: what it counted so far is not ours."""
        key = (stage, part)
        if key in self._seen:  # a task replaced without a sync in between: keep its counts
            self._sync_one(key, self._seen[key])
        self._seen[key] = [task, _COUNTS[stage](task)]

    def alert(self, kind: str, category: str, severity: str, status: str) -> None:
        """An alert record this worker emitted (to the alerts topic)."""
        key = (kind, category, severity, status)
        self.alerts[key] = self.alerts.get(key, 0) + 1

    # -- per-process counters -------------------------------------------------------------
    def sync(self) -> None:
        """Add what every known task counted since the last sync; forget revoked tasks."""
        sa = self.sa
        runners = {} if sa is None else {"ingest": sa.ingest, "windowing": sa.windowing,
                                         "detection": sa.detection}  # fmt: skip
        for key, seen in list(self._seen.items()):
            self._sync_one(key, seen)
            runner = runners.get(key[0])
            if runner is None or runner.tasks.get(key[1]) is not seen[0]:
                del self._seen[key]

    def _sync_one(self, key: tuple[str, int], seen: list[Any]) -> None:
        task, before = seen
        now = _COUNTS[key[0]](task)
        counts = self.counts
        for k, v in now.items():
            d = v - before.get(k, 0)
            if d > 0:
                counts[k] = counts.get(k, 0) + d
        seen[1] = now

    # -- prometheus_client Collector ------------------------------------------------------
    def describe(self) -> Iterator[Metric]:
        """Names only (the registry checks them for duplicates without a collect)."""
        for name in STREAM_METRIC_NAMES:
            if name == "ordermon_processing_latency_seconds":
                yield HistogramMetricFamily(name, "", labels=["stage"])
            elif name.endswith("_total"):
                yield CounterMetricFamily(name, "", labels=[])
            else:
                yield GaugeMetricFamily(name, "", labels=[])

    def collect(self) -> Iterator[Metric]:
        self.sync()
        yield from self._counters()
        lat = HistogramMetricFamily(
            "ordermon_processing_latency_seconds", "Time to process one message, by stage",
            labels=["stage"],
        )  # fmt: skip
        for stage, h in self.latency.items():
            lat.add_metric([stage], h.buckets(), h.sum)
        yield lat
        info = GaugeMetricFamily("ordermon_build_info", "ordermon version (value 1)",
                                 labels=["version"])  # fmt: skip
        info.add_metric([self.version], 1)
        yield info
        yield from _state_gauges(self.sa, self.top_publishers)

    def _counters(self) -> Iterator[Metric]:
        c = self.counts

        def family(name: str, doc: str, label: str, kind: str) -> CounterMetricFamily:
            f = CounterMetricFamily(name, doc, labels=[label])
            for (k, value), n in sorted(c.items()):
                if k == kind:
                    f.add_metric([value], n)
            return f

        def single(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, value=value)

        rejected = sum(n for (k, _), n in c.items() if k == "rejections")
        ev = CounterMetricFamily("ordermon_events_total", "Input messages by outcome",
                                 labels=["status"])  # fmt: skip
        ev.add_metric(["accepted"], c[("events", "accepted")])
        ev.add_metric(["rejected"], rejected)
        ev.add_metric(["duplicate"], c[("events", "duplicate")])
        yield ev
        yield family("ordermon_rejections_total", "Rejected messages by decode code", "code",
                     "rejections")  # fmt: skip
        dead = self.sa.counts.get("dead_lettered", 0) if self.sa is not None else 0
        yield single("ordermon_dead_letters_total", "Messages written to the dead-letter topic",
                     dead)  # fmt: skip
        yield family("ordermon_invalidations_total", "Invalidation events by reason", "reason",
                     "invalidations")  # fmt: skip
        yield single("ordermon_duplicates_total", "Duplicate events (same event_id)",
                     c[("events", "duplicate")])  # fmt: skip
        yield family("ordermon_lifecycle_violations_total", "Order lifecycle violations by type",
                     "type", "violations")  # fmt: skip
        yield single("ordermon_late_events_total", "Events whose window had closed",
                     c[("late", "")])  # fmt: skip
        yield single(
            "ordermon_future_events_total",
            "Events stamped too far ahead of the stream's clock",
            c[("future", "")],
        )
        yield single("ordermon_windows_closed_total", "Windows detection scored",
                     c[("windows_closed", "")])  # fmt: skip
        yield single("ordermon_recurring_spikes_total",
                     "Publisher spikes not raised as a daily pattern (the time of day, reason "
                     "and size of one on an earlier day)", c[("recurring", "")])  # fmt: skip
        yield family("ordermon_evictions_total",
                     "State dropped to bound memory (orders past retention, idle or "
                     "over-cap publishers)", "what", "evictions")  # fmt: skip
        al = CounterMetricFamily("ordermon_alerts_total", "Alert records emitted",
                                 labels=["kind", "category", "severity", "status"])  # fmt: skip
        for key, n in sorted(self.alerts.items()):
            al.add_metric(list(key), n)
        yield al


class _DeliveryNames(Collector):
    """The delivery families of ``alerts.metrics``, empty: this worker delivers nothing."""

    def collect(self) -> Iterator[Metric]:
        doc = "No alert receivers configured on this worker"
        yield CounterMetricFamily(
            "ordermon_notifications_total", doc, labels=["receiver", "outcome"]
        )
        yield CounterMetricFamily("ordermon_notifications_failed_total", doc,
                                  labels=["receiver", "reason"])  # fmt: skip
        yield HistogramMetricFamily("ordermon_notification_latency_seconds", doc,
                                    labels=["receiver"])  # fmt: skip
        yield GaugeMetricFamily("ordermon_notification_queue_depth", doc, labels=["receiver"])
        yield GaugeMetricFamily("ordermon_notification_dead_letters", doc, labels=["receiver"])

    describe = collect


# -- gauges from state ---------------------------------------------------------------------
def _gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


def _assignment(sa: Any) -> list[Any]:
    try:
        return list(sa.app.consumer.assignment())
    except Exception:  # consumer not started yet: nothing assigned
        return []


def _state_gauges(sa: Any, top: int) -> Iterator[Metric]:
    """Every gauge family, always (so each name is announced); samples where known."""
    from streams.web import readiness

    g = {name: _gauge(name, doc, labels) for name, doc, labels in _GAUGES}
    det = None
    if sa is not None:
        det_task = sa.detection.tasks.get(0)
        det = det_task.detection if det_task is not None else None
        _worker_gauges(sa, g, readiness(sa)[0])
    _alert_gauges(sa, det, g["ordermon_alerts_firing"])
    if det is not None:
        _detection_gauges(det, g, top)
    yield from g.values()


def _worker_gauges(sa: Any, g: dict[str, GaugeMetricFamily], ready: bool) -> None:
    s = sa.s
    g["ordermon_ready"].add_metric([], 1 if ready else 0)
    topics = dict.fromkeys((s.input_topic, s.facts_topic, s.partials_topic, s.alerts_topic), 0)
    for tp in _assignment(sa):
        topics[tp.topic] = topics.get(tp.topic, 0) + 1
    for topic, n in sorted(topics.items()):
        g["ordermon_assigned_partitions"].add_metric([topic], n)
    for topic, parts in sorted(sa.live.consumer_lag().items()):
        for p, lag in sorted(parts.items()):
            g["ordermon_consumer_lag_messages"].add_metric([topic, str(p)], lag)
    for stage, runner in zip(STAGES, (sa.ingest, sa.windowing, sa.detection), strict=True):
        g["ordermon_checkpoint_bytes"].add_metric([stage], sum(runner.store.sizes.values()))
    g["ordermon_open_windows"].add_metric(
        [], sum(len(t.windowing.set.open) for t in sa.windowing.tasks.values())
    )
    g["ordermon_tracked_orders"].add_metric(
        [], sum(len(t.ingest.lifecycle) for t in sa.ingest.tasks.values())
    )
    det = sa.detection.tasks.get(0)
    g["ordermon_tracked_publishers"].add_metric(
        [], len(det.detection.publisher.state) if det is not None else 0
    )
    arrivals = sa.live.last_arrival
    if arrivals:  # monotonic -> wall clock
        last = time.time() - (time.monotonic() - max(arrivals.values()))
        g["ordermon_last_event_received_timestamp_seconds"].add_metric([], round(last, 3))
    g["ordermon_stream_stalled"].add_metric([], 1 if sa.live.stall.firing_since is not None else 0)


def _alert_gauges(sa: Any, det: Any, firing: GaugeMetricFamily) -> None:
    """Open alerts by kind/category/severity: detection's book (on its worker) and this
    worker's stream_stall; every combination present (0) so sums over workers work."""
    n = dict.fromkeys(((k.value, KIND_CATEGORY[k].value, sev.value)
                       for k in Kind for sev in Severity), 0)  # fmt: skip
    if det is not None:
        for cur in det.book.open.values():
            key = (cur.kind.value, KIND_CATEGORY[cur.kind].value, cur.severity.value)
            n[key] = n.get(key, 0) + 1
    if sa is not None and sa.live.stall.firing_since is not None:
        n[(Kind.STREAM_STALL.value, KIND_CATEGORY[Kind.STREAM_STALL].value, "critical")] += 1
    for key, v in sorted(n.items()):
        firing.add_metric(list(key), v)


def _detection_gauges(det: Any, g: dict[str, GaugeMetricFamily], top: int) -> None:
    if det.watermark is not None:
        g["ordermon_watermark_timestamp_seconds"].add_metric([], det.watermark)
        g["ordermon_watermark_delay_seconds"].add_metric([], round(time.time() - det.watermark, 3))
    ov = det.overview
    if ov.history:
        last = ov.history[-1]
        for reason, n in last["by_reason"].items():
            g["ordermon_platform_invalidations"].add_metric([reason], n)
        g["ordermon_platform_expected_invalidations"].add_metric([], last["expected_invalidations"])
        g["ordermon_platform_orders"].add_metric([], last["orders"])
    if top <= 0:
        return
    reasons = [r.value for r in REASONS]
    for row in ov.metric_publishers(top):
        pub = row["publisher_id"]
        g["ordermon_publisher_orders"].add_metric([pub], row["orders"])
        for r in reasons:
            g["ordermon_publisher_invalidations"].add_metric([pub, r], row["by_reason"].get(r, 0))
        g["ordermon_publisher_expected_invalidations"].add_metric([pub], row["expected"])
        g["ordermon_publisher_anomaly_score"].add_metric([pub], row["score"])
        g["ordermon_publisher_alerting"].add_metric([pub], 1 if row["alerting"] else 0)


_LAST = "in the last window detection closed"
_GAUGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("ordermon_alerts_firing", "Open alerts", ("kind", "category", "severity")),
    ("ordermon_open_windows", "Event-time windows open on this worker", ()),
    ("ordermon_tracked_publishers", "Publishers detection keeps state for", ()),
    ("ordermon_tracked_orders", "Orders the lifecycle tracks on this worker", ()),
    ("ordermon_watermark_delay_seconds", "Wall clock minus detection's watermark", ()),
    ("ordermon_watermark_timestamp_seconds", "Detection's event-time watermark", ()),
    ("ordermon_consumer_lag_messages", "High watermark minus the next offset to process",
     ("topic", "partition")),
    ("ordermon_last_event_received_timestamp_seconds",
     "Wall time the last input message arrived at this worker", ()),
    ("ordermon_stream_stalled", "1 while this worker's stream_stall alert is open", ()),
    ("ordermon_ready", "1 when /readyz answers 200", ()),
    ("ordermon_assigned_partitions", "Partitions assigned to this worker", ("topic",)),
    ("ordermon_checkpoint_bytes", "Size of the current checkpoints (compressed)", ("stage",)),
    ("ordermon_platform_invalidations", f"Invalidations by reason {_LAST}", ("reason",)),
    ("ordermon_platform_expected_invalidations", f"Expected invalidations {_LAST}", ()),
    ("ordermon_platform_orders", f"Orders placed {_LAST}", ()),
    ("ordermon_publisher_orders", f"Orders of a top/alerting publisher {_LAST}",
     ("publisher_id",)),
    ("ordermon_publisher_invalidations", f"Invalidations of a top/alerting publisher {_LAST}",
     ("publisher_id", "reason")),
    ("ordermon_publisher_expected_invalidations",
     f"Expected invalidations of a top/alerting publisher {_LAST}", ("publisher_id",)),
    ("ordermon_publisher_anomaly_score",
     f"-log10 p of a top/alerting publisher's invalidations {_LAST}", ("publisher_id",)),
    ("ordermon_publisher_alerting", "1 while the publisher has an open alert",
     ("publisher_id",)),
)  # fmt: skip


def render(registry: CollectorRegistry, accept: str | None = None) -> tuple[bytes, str]:
    """The exposition (text format, or OpenMetrics when the scraper asks for it)."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def add_metrics_page(sa: Any) -> None:
    """``GET /metrics`` on the worker's faust web server."""

    @sa.app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        body, content_type = render(sa.metrics.registry, request.headers.get("Accept"))
        return web.bytes(body, headers={"Content-Type": content_type})
