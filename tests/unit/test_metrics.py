"""/metrics of a worker, without a broker: real stage tasks and runners, a stand-in consumer.

The collector reads state at scrape time; counters count what this process processed
(never totals restored from a checkpoint); per-publisher series stay bounded.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, NamedTuple

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from monitor.model import KIND_CATEGORY, REASON_INDEX, RejectCode
from monitor.pipeline import MonitorParams
from monitor.stall import StallDetector
from monitor.windows import ORDERS, RAW, SLOTS, TOTAL, WindowAcc
from streams.checkpoint import CheckpointStore
from streams.live import LiveSignals
from streams.metrics import METRIC_NAMES, Hist, StreamMetrics, render
from streams.runners import PartitionRunner
from streams.settings import StreamSettings
from streams.tasks import DetectTask, IngestTask, WindowTask
from tests.synth import Stream

P = 2
PARAMS = MonitorParams()


class _Table:
    """What CheckpointStore needs of a faust table."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def send_changelog(self, part: int, key: str, value: bytes) -> None:
        pass


class _Consumer:
    def __init__(self) -> None:
        self.assigned: set[Any] = set()
        self.hw: dict[Any, int] = {}

    def assignment(self) -> set[Any]:
        return self.assigned

    def highwater(self, tp: Any) -> int | None:
        return self.hw.get(tp)


class _TP(NamedTuple):
    topic: str
    partition: int


def fake_worker(top: int = 50) -> SimpleNamespace:
    """A StreamApp's shape: settings, three runners with real tasks, live signals, app."""
    s = StreamSettings(metrics_top_publishers=top)
    done = SimpleNamespace(is_set=lambda: True)
    app = SimpleNamespace(consumer=_Consumer(), in_recovery=False,
                          tables=SimpleNamespace(recovery=SimpleNamespace(completed=done)),
                          flow_control=SimpleNamespace(is_active=lambda: True))  # fmt: skip

    def runner(stage: str, make: Any) -> PartitionRunner:
        return PartitionRunner(stage, CheckpointStore(_Table()), make, lambda *_: None, 60, 10**9)

    sa = SimpleNamespace(s=s, app=app, counts={"dead_lettered": 0})
    sa.ingest = runner("ingest", lambda p: IngestTask(PARAMS, p, P))
    sa.windowing = runner("windowing", lambda q: WindowTask(PARAMS, q, P))
    sa.detection = runner("detection", lambda _: DetectTask(PARAMS, P))
    sa.runners = {s.input_topic: sa.ingest, s.facts_topic: sa.windowing,
                  s.partials_topic: sa.detection}  # fmt: skip
    sa.live = LiveSignals(sa, StallDetector())
    sa.metrics = StreamMetrics(CollectorRegistry(), top, build_version="test",
                               announce_delivery=True)  # fmt: skip
    sa.metrics.attach(sa)
    return sa


def feed(sa: SimpleNamespace, p: int, lines: list[bytes]) -> IngestTask:
    """Lines into input partition ``p`` as the ingest agent would (offsets continue)."""
    task = sa.ingest.task(p)
    for line in lines:
        rej = task.process(line, task.offset + 1)
        if rej is not None:
            sa.counts["dead_lettered"] += 1
    task.take()
    return task


def value(sa: SimpleNamespace, name: str, **labels: str) -> float | None:
    return sa.metrics.registry.get_sample_value(name, labels)


def families(sa: SimpleNamespace) -> dict[str, Any]:
    text = generate_latest(sa.metrics.registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    s = Stream(seed=5, publishers=40, hours=2.0, orders_per_hour=1500)
    s.baseline()
    out = s.lines()
    out[10:10] = [b"not json", b'{"schema_version": 1}', out[20]]  # 2 rejects, 1 duplicate
    return out


def test_fresh_worker_exposes_every_name_with_known_labels_at_zero():
    sa = fake_worker()
    fams = families(sa)
    # the parser names counter families without _total
    exposed = {n + "_total" if f.type == "counter" else n for n, f in fams.items()}
    assert set(METRIC_NAMES) <= exposed  # the delivery names too, announced without samples
    assert not fams["ordermon_notifications"].samples
    for code in RejectCode:
        assert value(sa, "ordermon_rejections_total", code=code.value) == 0
    for status in ("accepted", "rejected", "duplicate"):
        assert value(sa, "ordermon_events_total", status=status) == 0
    alerts = fams["ordermon_alerts"].samples
    assert len(alerts) == len(KIND_CATEGORY) * 3 * 2  # kinds x severities x firing/resolved
    assert {s.labels["category"] for s in alerts} == {"publisher", "platform", "data_quality"}
    for stage in ("ingest", "windowing", "detection"):
        assert value(sa, "ordermon_processing_latency_seconds_count", stage=stage) == 0
    assert value(sa, "ordermon_build_info", version="test") == 1
    assert value(sa, "ordermon_ready") == 0  # no partitions assigned
    # only the detection worker has these: announced, no samples
    assert not fams["ordermon_watermark_delay_seconds"].samples
    assert not fams["ordermon_publisher_orders"].samples


def test_openmetrics_is_served_when_the_scraper_asks_for_it():
    sa = fake_worker()
    body, content_type = render(sa.metrics.registry, "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    names = {f.name for f in openmetrics_families(body.decode())}
    assert {"ordermon_events", "ordermon_publisher_orders"} <= names
    body, content_type = render(sa.metrics.registry, None)
    assert content_type.startswith("text/plain; version=0.0.4")


def test_counters_match_what_the_tasks_processed(lines):
    sa = fake_worker()
    half = len(lines) // 2
    t0, t1 = feed(sa, 0, lines[:half]), feed(sa, 1, lines[half:])
    accepted = t0.ingest.accepted + t1.ingest.accepted
    assert accepted > 1000
    assert value(sa, "ordermon_events_total", status="accepted") == accepted
    assert value(sa, "ordermon_events_total", status="rejected") == 2
    assert value(sa, "ordermon_rejections_total", code="not_json") == 1
    assert value(sa, "ordermon_rejections_total", code="missing_field") == 1
    assert value(sa, "ordermon_duplicates_total") == 1
    assert value(sa, "ordermon_dead_letters_total") == 2
    inv = sum(t.ingest.invalidations[r] for t in (t0, t1) for r in ("refund", "cancel"))
    got = sum(value(sa, "ordermon_invalidations_total", reason=r) for r in ("refund", "cancel"))
    assert got == inv > 0
    orders = len(t0.ingest.lifecycle) + len(t1.ingest.lifecycle)
    assert value(sa, "ordermon_tracked_orders") == orders


def test_restored_counts_are_not_counted_again_and_revoked_work_is_kept(lines):
    """A partition arrives with a checkpoint: its totals belong to the process that did the
    work. A partition leaves: what this process did before the revoke still counts."""
    sa = fake_worker()
    cut = len(lines) // 2
    task = feed(sa, 0, lines[:cut])
    sa.ingest.store.save(0, task.snapshot())
    before = task.ingest.accepted
    sa.ingest.revoke({0})  # no scrape in between: the revoked task's counts still count
    assert value(sa, "ordermon_events_total", status="accepted") == before
    assert value(sa, "ordermon_tracked_orders") == 0  # state gauges follow the assignment
    fresh = fake_worker()  # another process takes the partition over from the checkpoint
    fresh.ingest.store = sa.ingest.store
    resumed = fresh.ingest.task(0)
    assert resumed.ingest.accepted == before  # restored totals ...
    assert value(fresh, "ordermon_events_total", status="accepted") == 0  # ... are not ours
    feed(fresh, 0, lines[cut:])
    assert value(fresh, "ordermon_events_total", status="accepted") == (
        resumed.ingest.accepted - before
    )


def test_state_gauges_read_lag_readiness_and_checkpoints():
    sa = fake_worker()
    s = sa.s
    tp = _TP(s.input_topic, 1)
    sa.app.consumer.assigned = {tp, _TP(s.facts_topic, 1)}
    sa.app.consumer.hw[tp] = 40
    task = sa.ingest.task(1)
    task.offset = 24  # 25 of 40 messages done
    sa.ingest.store.save(1, task.snapshot())
    assert value(sa, "ordermon_consumer_lag_messages", topic=s.input_topic, partition="1") == 15
    assert value(sa, "ordermon_ready") == 1
    assert value(sa, "ordermon_assigned_partitions", topic=s.input_topic) == 1
    assert value(sa, "ordermon_assigned_partitions", topic=s.partials_topic) == 0
    assert value(sa, "ordermon_checkpoint_bytes", stage="ingest") == sa.ingest.store.sizes[1] > 0
    assert value(sa, "ordermon_stream_stalled") == 0
    sa.live.arrival(1, 0.0)
    sa.live.stall.firing_since = 0.0
    assert value(sa, "ordermon_stream_stalled") == 1
    assert value(sa, "ordermon_alerts_firing", kind="stream_stall", category="data_quality",
                 severity="critical") == 1  # fmt: skip
    assert value(sa, "ordermon_last_event_received_timestamp_seconds") is not None


def test_latency_histogram_buckets_are_cumulative():
    h = Hist((0.001, 0.01))
    for v in (0.0005, 0.001, 0.005, 0.5):
        h.observe(v)
    assert h.buckets() == [("0.001", 2.0), ("0.01", 3.0), ("+Inf", 4.0)]
    assert h.sum == pytest.approx(0.5065)


# -- per-publisher series: 1000 publishers, N = 5 ----------------------------------------
PUBS = [f"pub-{i:04d}" for i in range(1000)]
BURST = "pub-0500"  # a small publisher


def _window(k: int, burst: bool = False) -> WindowAcc:
    """One closed window: five large publishers, 995 small ones, a steady reason mix."""
    acc = WindowAcc(k, PARAMS.window_s)
    for i, pub in enumerate(PUBS):
        vec = [0] * SLOTS
        vec[ORDERS] = o = 200 - 30 * i if i < 5 else 2 + i % 7
        for reason, share in (("refund", 0.08), ("fraud", 0.01), ("cancel", 0.04)):
            n = int(o * share + ((k * 7 + i * 13) % 10) / 10)
            vec[REASON_INDEX[reason]] += n
            vec[TOTAL] += n
            vec[RAW] += n
        acc.pubs[pub] = vec
    if burst:
        vec = acc.pubs[BURST]
        vec[REASON_INDEX["fraud"]] += 30
        vec[TOTAL] += 30
        vec[RAW] += 30
    acc.events = acc.arrivals = sum(v[ORDERS] for v in acc.pubs.values())
    return acc


def _publisher_labels(sa: SimpleNamespace) -> dict[str, set]:
    fams = families(sa)
    out = {}
    for name in ("ordermon_publisher_orders", "ordermon_publisher_invalidations",
                 "ordermon_publisher_expected_invalidations", "ordermon_publisher_anomaly_score",
                 "ordermon_publisher_alerting"):  # fmt: skip
        out[name] = {s.labels["publisher_id"] for s in fams[name].samples}
    return out


def test_publisher_series_are_bounded_and_leave_with_the_publisher():
    sa = fake_worker(top=5)
    det = sa.detection.task(0).detection
    top5 = set(PUBS[:5])
    series_counts = []
    k, alerted, resolved = 100, None, None
    while resolved is None and k < 200:
        acc = _window(k, burst=k == 115)
        det.close(acc, acc.end)
        for a in det.take_alerts():
            if a.publisher_id == BURST:
                if a.status == "firing":
                    alerted = _publisher_labels(sa)
                    alerting = value(sa, "ordermon_publisher_alerting", publisher_id=BURST)
                    firing = sum(value(sa, "ordermon_alerts_firing", kind="publisher_spike",
                                       category="publisher", severity=sev)
                                 for sev in ("info", "warning", "critical"))  # fmt: skip
                else:
                    resolved = k
        series_counts.append(len(families(sa)["ordermon_publisher_invalidations"].samples))
        k += 1
    assert alerted is not None and resolved is not None, "the burst did not fire and resolve"
    # while alerting: the 5 largest plus the alerting one, in every per-publisher family
    assert all(labels == top5 | {BURST} for labels in alerted.values()), alerted
    assert alerting == 1 and firing == 1
    # resolved and small: its series are gone at the next scrape
    after = _publisher_labels(sa)
    assert all(labels == top5 for labels in after.values()), after
    assert value(sa, "ordermon_publisher_orders", publisher_id=BURST) is None
    # 1000 publishers never mean more than (5 + alerting) x 6 reasons invalidation series
    assert max(series_counts) == 6 * 6 and min(series_counts) == 5 * 6
    assert value(sa, "ordermon_tracked_publishers") == 1000
    assert value(sa, "ordermon_platform_orders") == sum(
        v[ORDERS] for v in _window(k - 1).pubs.values()
    )
    assert value(sa, "ordermon_watermark_delay_seconds") is None  # no partial merged yet
    assert value(sa, "ordermon_windows_closed_total") == k - 100
