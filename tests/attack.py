"""The cardinality attack (issue 7, item 2): millions of distinct publisher and order ids.

A flood of junk ids (each junk publisher places a few orders, some invalidated, then is
never seen again) mixed with a handful of steady real publishers, through the one-process
``monitor.pipeline.Monitor`` with the memory caps set. Prints one JSON object of figures:
tracked and evicted publishers/orders, bytes of state per entry, resident memory before
and at its peak, and the size of the per-publisher metrics set.

    python -m tests.attack --publishers 2000000 --orders 5000000   # the full size
    python -m tests.attack --publishers 200000 --orders 500000     # what make test runs

It is a separate process on purpose: resident memory is then this run's alone
(``tests/unit/test_attack.py`` runs it as a subprocess and checks the figures).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from monitor.model import Kind
from monitor.pipeline import Monitor, MonitorParams

START = dt.datetime(2026, 11, 2, tzinfo=dt.UTC).timestamp()
REAL = 20  # steady real publishers among the junk
REAL_SHARE = 0.1  # of the orders
INV_SHARE = 0.1  # junk orders invalidated (fraud) half a minute after creation
_EVENT = (
    '{"schema_version":1,"event_id":"%s","order_id":"%s","publisher_id":"%s",'
    '"status":"%s","amount":50.0,"commission":2.5,"occurred_at":"%s"%s}'
)


def rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc``)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status: the attack measures memory on Linux")


def events(publishers: int, orders: int, hours: float, seed: int = 1) -> Iterator[bytes]:
    """``orders`` orders in event-time order over ``hours``: junk ones spread over
    ``publishers`` distinct ids (consecutive orders share one, so each id lives for a
    moment), every tenth-ish one from one of ``REAL`` steady publishers."""
    rng = random.Random(seed)
    step = hours * 3600.0 / orders
    stamps: dict[int, str] = {}
    junk_orders = max(1, round(orders * (1 - REAL_SHARE)))
    j = 0
    for i in range(orders):
        ts = START + i * step
        if rng.random() < REAL_SHARE or j >= junk_orders:
            pub = f"real-{rng.randrange(REAL)}"
            reason = "refund" if rng.random() < 0.05 else None
        else:
            pub = f"junk-{j * publishers // junk_orders}"
            j += 1
            reason = "fraud" if rng.random() < INV_SHARE else None
        oid = f"o-{i}"
        yield _line(f"e-{i}c", oid, pub, "created", ts, stamps)
        if reason is not None:
            yield _line(f"e-{i}i", oid, pub, "invalidated", ts + 30, stamps, reason)


def _line(
    eid: str, oid: str, pub: str, status: str, ts: float, stamps: dict[int, str], reason=None
) -> bytes:
    sec = int(ts)
    at = stamps.get(sec)
    if at is None:
        if len(stamps) > 4096:
            stamps.clear()
        at = stamps[sec] = dt.datetime.fromtimestamp(sec, dt.UTC).isoformat()
    extra = f',"reason":"{reason}"' if reason else ""
    return (_EVENT % (eid, oid, pub, status, at, extra)).encode()


def params(max_publishers: int, max_orders: int) -> MonitorParams:
    """Monitor parameters with the two caps set."""
    p = MonitorParams(max_tracked_orders=max_orders)
    return dataclasses.replace(
        p, publisher=dataclasses.replace(p.publisher, max_publishers=max_publishers)
    )


def run(
    publishers: int,
    orders: int,
    max_publishers: int,
    max_orders: int,
    hours: float = 24.0,
    top: int = 50,
    metrics: bool = False,
) -> dict[str, Any]:
    """Drive the attack through a Monitor; the figures as a dict. ``metrics``: also scrape
    a worker's Prometheus registry reading the attacked state (``metric_*`` figures)."""
    p = params(max_publishers, max_orders)
    mon = Monitor(p)
    with tempfile.TemporaryDirectory(prefix="ordermon-attack-") as tmp:
        sa = stream_app(mon, p, tmp, top) if metrics else None
        figs = _drive(mon, publishers, orders, hours, top)
        if sa is not None:
            figs |= scrape(sa)
    figs |= {
        "publishers": publishers,
        "orders": orders,
        "max_publishers": max_publishers,
        "max_orders": max_orders,
    }
    return figs


def _drive(mon: Monitor, publishers: int, orders: int, hours: float, top: int) -> dict:
    rss_base = rss_bytes()
    peak = rss_base
    det = mon.detection.publisher
    max_tracked_pubs = max_tracked_orders = 0
    n = 0
    t0 = time.perf_counter()
    for n, line in enumerate(events(publishers, orders, hours), 1):
        mon.process(line)
        if n % 20000 == 0:
            peak = max(peak, rss_bytes())
            max_tracked_pubs = max(max_tracked_pubs, len(det.state))
            max_tracked_orders = max(max_tracked_orders, len(mon.lifecycle))
    mon.flush()
    secs = time.perf_counter() - t0
    peak = max(peak, rss_bytes())
    lc = mon.lifecycle
    overview = mon.detection.overview
    open_pub_alerts = len(mon.detection.book.firing(Kind.PUBLISHER_SPIKE))
    return {
        "events": n,
        "seconds": round(secs, 1),
        "events_per_s": round(n / secs),
        "tracked_publishers": len(det.state),
        "tracked_publishers_max": max(max_tracked_pubs, len(det.state)),
        "evicted_publishers": det.evicted,
        "evicted_publishers_cap": det.evicted_cap,
        "real_publishers_tracked": sum(f"real-{i}" in det.state for i in range(REAL)),
        "tracked_orders": len(lc),
        "tracked_orders_max": max(max_tracked_orders, len(lc)),
        "evicted_orders": lc.evicted,
        "evicted_orders_cap": lc.evicted_cap,
        "publisher_bytes": round(det.footprint_bytes()),
        "order_bytes": round(_order_bytes(mon)),
        "rss_base": rss_base,
        "rss_peak": peak,
        "metric_top": top,
        "metric_publishers": len(overview.metric_publishers(top)),
        "open_publisher_alerts": open_pub_alerts,
        "alerts": len(mon.alerts),
        "windows_closed": mon.detection.windows_closed,
    }


def stream_app(mon: Monitor, p: MonitorParams, datadir: str, top: int) -> Any:
    """A worker's ``StreamApp`` (built, not started: no broker needed) whose stage tasks
    hold ``mon``'s state, loaded as its runners load them, so its /metrics registry counts
    what ``mon`` does from now on and reads ``mon``'s state at scrape time."""
    from streams.app import StreamApp
    from streams.settings import StreamSettings
    from streams.tasks import DetectTask, IngestTask, WindowTask

    s = StreamSettings(store="memory://", web_port=0, datadir=datadir, metrics_top_publishers=top)
    sa = StreamApp(s, p, 1)
    ingest, windowing, detect = IngestTask(p, 0, 1), WindowTask(p, 0, 1), DetectTask(p, 1)
    ingest.ingest, windowing.windowing, detect.detection = mon.ingest, mon.windowing, mon.detection
    for runner, task in ((sa.ingest, ingest), (sa.windowing, windowing), (sa.detection, detect)):
        runner.tasks[0] = task
        sa.metrics.task_loaded(runner.stage, 0, task)
    return sa


def scrape(sa: Any) -> dict[str, Any]:
    """Series counts and the eviction/tracking values of one /metrics exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    from streams.metrics import render

    body, _ = render(sa.metrics.registry)
    series = publisher_series = 0
    values: dict[tuple[str, str], float] = {}
    for fam in text_string_to_metric_families(body.decode()):
        for sample in fam.samples:
            series += 1
            publisher_series += "publisher_id" in sample.labels
            if sample.name in ("ordermon_evictions_total", "ordermon_tracked_publishers",
                               "ordermon_tracked_orders"):  # fmt: skip
                values[(sample.name, sample.labels.get("what", ""))] = sample.value
    return {
        "metric_series": series,
        "metric_publisher_series": publisher_series,
        "metric_evictions_publisher": values.get(("ordermon_evictions_total", "publisher")),
        "metric_evictions_order": values.get(("ordermon_evictions_total", "order")),
        "metric_tracked_publishers": values.get(("ordermon_tracked_publishers", "")),
        "metric_tracked_orders": values.get(("ordermon_tracked_orders", "")),
    }


def _order_bytes(mon: Monitor) -> float:
    """Bytes per tracked order including its ``order_id`` key (the lifecycle's own
    figure leaves the key out)."""
    from monitor.lifecycle import order_footprint_bytes

    lc = mon.lifecycle
    if not len(lc):
        return 0.0
    keys = list(lc.orders)[:1000]
    return order_footprint_bytes(lc) + sum(sys.getsizeof(k) for k in keys) / len(keys)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.attack", description=__doc__.split("\n")[0])
    ap.add_argument("--publishers", type=int, default=2_000_000)
    ap.add_argument("--orders", type=int, default=5_000_000)
    ap.add_argument("--max-publishers", type=int, default=None, help="default: 10%% of them")
    ap.add_argument("--max-orders", type=int, default=None, help="default: 10%% of them")
    ap.add_argument("--hours", type=float, default=24.0, help="event time the stream spans")
    ap.add_argument("--metrics", action="store_true", help="also scrape a worker's registry")
    args = ap.parse_args(argv)
    figs = run(
        args.publishers,
        args.orders,
        args.max_publishers or max(1, args.publishers // 10),
        args.max_orders or max(1, args.orders // 10),
        args.hours,
        metrics=args.metrics,
    )
    print(json.dumps(figs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
