"""The cardinality attack, scaled down (issue 7 item 2): 200k junk publisher ids and 500k
order ids through a Monitor with caps of a tenth of each, in its own process
(``tests/attack.py``; the full 2M/5M size: ``python -m tests.attack``).

State stays within the caps, the evictions are counted and reach /metrics, resident
memory stays under a bound derived from the caps, and the number of Prometheus series is
the same for 10k publishers as for 200k.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streams import tasks as stream_tasks
from streams.tasks import IngestTask, partition_for
from tests.attack import REAL, events, params

ROOT = Path(__file__).resolve().parents[2]
PUBLISHERS, ORDERS = 200_000, 500_000
MAX_PUBLISHERS, MAX_ORDERS = 20_000, 50_000
MB = 1 << 20


def attack(publishers: int, orders: int, max_publishers: int, max_orders: int) -> dict[str, Any]:
    """Run ``python -m tests.attack`` in a fresh process; its figures."""
    cmd = [sys.executable, "-m", "tests.attack", "--publishers", str(publishers),
           "--orders", str(orders), "--max-publishers", str(max_publishers),
           "--max-orders", str(max_orders), "--metrics"]  # fmt: skip
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def big() -> dict[str, Any]:
    return attack(PUBLISHERS, ORDERS, MAX_PUBLISHERS, MAX_ORDERS)


def test_publisher_state_stays_within_its_cap_and_evictions_are_counted(big):
    assert big["events"] > ORDERS  # every order placed, a tenth invalidated too
    assert big["tracked_publishers_max"] <= MAX_PUBLISHERS
    distinct = PUBLISHERS + REAL
    assert big["evicted_publishers_cap"] >= distinct - MAX_PUBLISHERS
    assert big["evicted_publishers"] == big["evicted_publishers_cap"]  # none idle 2 weeks
    assert big["real_publishers_tracked"] == REAL  # steady traffic outranks one-off ids
    # the eviction is visible in metrics, as are the tracked counts
    assert big["metric_evictions_publisher"] == big["evicted_publishers"]
    assert big["metric_tracked_publishers"] == big["tracked_publishers"]
    assert big["metric_tracked_orders"] == big["tracked_orders"]


def test_order_state_stays_within_its_cap(big):
    assert big["tracked_orders_max"] <= MAX_ORDERS
    assert big["evicted_orders_cap"] >= ORDERS - MAX_ORDERS
    assert big["evicted_orders"] == big["evicted_orders_cap"]  # none past 45 days
    assert big["metric_evictions_order"] == big["evicted_orders"]


def test_resident_memory_is_bounded_by_the_caps(big):
    """Peak RSS growth within 1.25x of (caps x measured bytes per entry) + 16 MB for open
    windows and allocator slack (the per-order figure includes its ``order_id`` key; an
    order keeps no publisher id alive: its publisher is a CRC in its integer).
    Without either cap the growth would be over 70 MB more than this bound."""
    state = MAX_PUBLISHERS * big["publisher_bytes"] + MAX_ORDERS * big["order_bytes"]
    bound = 1.25 * state + 16 * MB
    grew = big["rss_peak"] - big["rss_base"]
    assert 0 < big["publisher_bytes"] < 1000 and 0 < big["order_bytes"] < 1000
    assert grew <= bound, f"RSS grew {grew / MB:.0f} MB, bound {bound / MB:.0f} MB"


def test_series_count_does_not_grow_with_publishers(big):
    small = attack(PUBLISHERS // 20, ORDERS // 20, MAX_PUBLISHERS // 20, MAX_ORDERS // 20)
    assert small["tracked_publishers"] >= small["metric_top"]  # the top-N set is full in both
    assert small["metric_series"] == big["metric_series"]
    assert small["metric_publisher_series"] == big["metric_publisher_series"] > 0
    for run in (small, big):  # top N by volume plus the alerting ones, never more
        assert run["metric_publishers"] <= run["metric_top"] + run["open_publisher_alerts"]


def test_attack_events_are_valid_and_use_the_asked_ids():
    from monitor.decode import decode

    evs = [decode(line) for line in events(1000, 3000, hours=1.0)]
    assert all(type(e).__name__ == "OrderEvent" for e in evs)
    junk = {e.publisher_id for e in evs if e.publisher_id.startswith("junk-")}
    assert len(junk) == 1000
    assert len({e.order_id for e in evs}) == 3000
    p = params(123, 456)
    assert (p.publisher.max_publishers, p.max_tracked_orders) == (123, 456)


def test_publisher_routing_memo_is_bounded(monkeypatch):
    monkeypatch.setattr(stream_tasks, "ROUTE_MEMO", 100)
    task = IngestTask(params(10, 10), 0, 4)
    for i in range(1000):
        pub = f"p-{i}"
        assert task._partition_of(pub) == partition_for(pub.encode(), 4)
        assert len(task._route) <= 100
