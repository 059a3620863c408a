from __future__ import annotations

import datetime as dt

from monitor.lifecycle import Lifecycle, Violation, order_footprint_bytes
from monitor.model import OrderEvent, Reason, Status

T0 = dt.datetime(2026, 11, 11, tzinfo=dt.UTC)


def ev(eid, order, status, minutes=0, pub="pub-1", reason=None):
    return OrderEvent(
        schema_version=1,
        event_id=eid,
        order_id=order,
        publisher_id=pub,
        status=status,
        amount=10.0,
        commission=1.0,
        occurred_at=T0 + dt.timedelta(minutes=minutes),
        reason=reason,
    )


def step(lc, e):
    return lc.step(e, e.occurred_at.timestamp())


def test_redelivered_event_is_a_duplicate_and_changes_nothing():
    lc = Lifecycle()
    first = step(lc, ev("e1", "o1", Status.PAID))
    again = step(lc, ev("e1", "o1", Status.PAID))
    assert first.new_order and not first.duplicate
    assert again.duplicate and not again.new_order


def test_invalidation_reports_time_since_payment():
    lc = Lifecycle()
    step(lc, ev("e1", "o1", Status.CREATED))
    step(lc, ev("e2", "o1", Status.PAID, minutes=1))
    s = step(lc, ev("e3", "o1", Status.INVALIDATED, minutes=31, reason=Reason.FRAUD))
    assert s.counts_invalidation and s.since_paid == 30 * 60


def test_backwards_step_after_invalidated_and_publisher_change_are_violations():
    lc = Lifecycle()
    step(lc, ev("e1", "o1", Status.CONFIRMED))
    assert step(lc, ev("e2", "o1", Status.PAID, minutes=1)).violation is Violation.BACKWARDS
    step(lc, ev("e3", "o2", Status.INVALIDATED, reason=Reason.REFUND))
    s = step(lc, ev("e4", "o2", Status.SETTLED, minutes=1))
    assert s.violation is Violation.AFTER_INVALIDATED
    s = step(lc, ev("e5", "o1", Status.SETTLED, minutes=2, pub="pub-2"))
    assert s.violation is Violation.PUBLISHER_CHANGED


def test_confirmed_may_be_skipped_and_settled_may_be_invalidated():
    lc = Lifecycle()
    for e in (
        ev("a", "o", Status.PAID),
        ev("b", "o", Status.SETTLED, 5),
        ev("c", "o", Status.INVALIDATED, 9, reason=Reason.REFUND),
    ):
        s = step(lc, e)
        assert s.violation is None
    assert s.counts_invalidation


def test_orders_first_seen_midway_are_not_new_orders():
    lc = Lifecycle()
    assert not step(lc, ev("a", "o", Status.CONFIRMED)).new_order
    assert step(lc, ev("b", "p", Status.CREATED)).new_order
    assert not step(lc, ev("c", "p", Status.PAID)).new_order


def test_orders_leave_after_retention_and_the_footprint_is_bounded():
    lc = Lifecycle(retention_s=86400)
    for i in range(5000):
        step(lc, ev(f"e{i}", f"order-{i:08d}", Status.PAID, minutes=i % 60))
    per_order = order_footprint_bytes(lc)
    assert 40 < per_order < 120, per_order  # documented in monitor/lifecycle.py
    assert lc.evict(T0.timestamp() + 86400 + 3600) == 5000
    assert len(lc) == 0 and lc.evicted == 5000


def test_snapshot_restores_identical_state():
    lc = Lifecycle()
    step(lc, ev("e1", "o1", Status.PAID))
    step(lc, ev("e2", "o1", Status.INVALIDATED, 3, reason=Reason.CANCEL))
    lc2 = Lifecycle.restore(lc.snapshot())
    assert lc2.orders == lc.orders
    assert step(lc2, ev("e2", "o1", Status.INVALIDATED, 3, reason=Reason.CANCEL)).duplicate


def test_an_earlier_step_delivered_late_is_out_of_order_not_a_violation():
    lc = Lifecycle()
    assert step(lc, ev("b", "o", Status.PAID, minutes=1)).new_order
    late_created = step(lc, ev("a", "o", Status.CREATED, minutes=0))
    assert late_created.violation is None and not late_created.new_order
    step(lc, ev("c", "o", Status.INVALIDATED, 5, reason=Reason.CANCEL))
    assert step(lc, ev("d", "o", Status.CONFIRMED, minutes=3)).violation is None
    after = step(lc, ev("e", "o", Status.CONFIRMED, minutes=9))
    assert after.violation is Violation.AFTER_INVALIDATED


def test_a_second_invalidation_with_a_new_event_id_is_not_counted_twice():
    lc = Lifecycle()
    assert step(lc, ev("a", "o", Status.INVALIDATED, 1, reason=Reason.REFUND)).counts_invalidation
    again = step(lc, ev("b", "o", Status.INVALIDATED, 2, reason=Reason.REFUND))
    assert not again.counts_invalidation and again.violation is None


def test_snapshot_travels_through_msgpack():
    import msgspec

    lc = Lifecycle()
    for i in range(5):
        step(lc, ev(f"e{i}", "o1", Status.PAID if i == 0 else Status.CONFIRMED, minutes=i))
    snap = msgspec.msgpack.decode(msgspec.msgpack.encode(lc.snapshot()))
    lc2 = Lifecycle.restore(snap)
    assert lc2.orders == lc.orders
    assert step(lc2, ev("e3", "o1", Status.CONFIRMED, minutes=3)).duplicate


# -- the cap on tracked orders ------------------------------------------------------------


def fill(lc, orders, minutes=0, status=Status.PAID, prefix="o"):
    for i in orders:
        step(lc, ev(f"{prefix}{i}-{minutes}", f"{prefix}{i}", status, minutes, pub=f"pub-{i % 7}"))


def test_over_the_cap_the_least_recently_seen_orders_leave_and_are_counted():
    lc = Lifecycle(max_orders=640)  # a sweep frees 640 // 64 = 10 slots
    fill(lc, range(640))
    fill(lc, range(20), minutes=1, status=Status.CONFIRMED)  # the oldest 20, seen again
    fill(lc, range(640, 660))  # 20 new orders: two sweeps
    assert len(lc) <= 640
    assert lc.evicted == lc.evicted_cap == 660 - len(lc) > 0
    # the orders seen again had a second chance; the oldest untouched ones left
    assert all(f"o{i}" in lc.orders for i in range(20))
    assert all(f"o{i}" in lc.orders for i in range(640, 660))
    assert "o20" not in lc.orders and "o21" not in lc.orders


def test_an_event_of_an_evicted_order_is_a_first_sighting_not_a_violation():
    lc = Lifecycle(max_orders=64)
    step(lc, ev("p1", "victim", Status.PAID, minutes=0))
    step(lc, ev("s1", "victim", Status.SETTLED, minutes=1))
    step(lc, ev("s2", "victim", Status.SETTLED, minutes=2))  # touched: survives one sweep
    fill(lc, range(200), minutes=3)
    assert "victim" not in lc.orders and lc.evicted_cap > 0
    # a step backwards would be a violation for a tracked order; here it opens the order anew
    again = step(lc, ev("p2", "victim", Status.PAID, minutes=4))
    assert again.new_order and again.violation is None and not again.duplicate
    fill(lc, range(200, 400), minutes=5)
    assert "victim" not in lc.orders
    # a redelivery from before the eviction is not recognised; an invalidation counts,
    # without a time since payment (the payment was forgotten)
    assert not step(lc, ev("s1", "victim", Status.SETTLED, minutes=1)).duplicate
    fill(lc, range(400, 600), minutes=6)
    inv = step(lc, ev("i1", "victim", Status.INVALIDATED, minutes=7, reason=Reason.FRAUD))
    assert inv.counts_invalidation and inv.since_paid is None and inv.violation is None


def test_a_flood_of_publishers_leaves_no_state_beyond_the_tracked_orders():
    import sys

    lc = Lifecycle(max_orders=64, retention_s=3600)
    for i in range(1000):  # a flood of one-order publishers
        step(lc, ev(f"e{i}", f"o{i}", Status.PAID, pub=f"junk-{i}"))
    # the lifecycle's only container is its orders: a publisher is a field of its orders
    assert [k for k, v in vars(lc).items() if sys.getsizeof(v) > 1000] == ["orders"]
    assert len(lc) <= 64
    # and a tracked order still knows its publisher
    last = next(reversed(lc.orders))
    i = int(last.removeprefix("o"))
    moved = step(lc, ev("x", last, Status.SETTLED, minutes=1, pub=f"junk-{i + 1}"))
    assert moved.violation is Violation.PUBLISHER_CHANGED
    assert step(lc, ev("y", last, Status.SETTLED, minutes=2, pub=f"junk-{i}")).violation is None
    tracked = len(lc)
    assert lc.evict(T0.timestamp() + 7200) == tracked and len(lc) == 0


def test_snapshot_keeps_the_cap_state_and_restore_continues_identically():
    import msgspec

    a = Lifecycle(max_orders=128)
    fill(a, range(150))
    fill(a, range(130, 140), minutes=1, status=Status.SETTLED)
    snap = msgspec.msgpack.decode(msgspec.msgpack.encode(a.snapshot()))
    b = Lifecycle.restore(snap)
    assert (b.evicted, b.evicted_cap, b.max_orders) == (a.evicted, a.evicted_cap, 128)
    for lc in (a, b):
        fill(lc, range(150, 300), minutes=2)
    assert b.snapshot() == a.snapshot()  # same orders, same order of eviction
    # the configured cap wins over the snapshot's; a smaller one evicts at once
    c = Lifecycle.restore(a.snapshot(), max_orders=64)
    assert len(c) <= 64 and c.evicted_cap > a.evicted_cap


def test_snapshots_from_before_the_cap_restore():
    lc = Lifecycle()
    step(lc, ev("e1", "o1", Status.PAID))
    from monitor.lifecycle import _MARKS, _marks_list, _unpack

    # the first form: one unpacked list per order, without the ``recent`` flag
    snap = {"retention_s": lc.retention_s, "evicted": 0,
            "orders": [[k, "pub-1", *_unpack(v), _marks_list(v >> _MARKS)]
                       for k, v in lc.orders.items()]}  # fmt: skip
    old = Lifecycle.restore(snap)
    assert old.evicted_cap == 0 and old.max_orders == Lifecycle().max_orders
    assert old.orders == lc.orders  # the same packed state
    assert step(old, ev("e1", "o1", Status.PAID)).duplicate


def test_a_layout_1_snapshot_with_its_publisher_table_restores_to_the_same_state():
    from monitor.lifecycle import _PUB, _PUB_FIELD

    lc = Lifecycle()
    for i, pub in enumerate(["pub-1", "pub-2", "pub-1", "pub-3"]):
        step(lc, ev(f"e{i}", f"o{i}", Status.PAID, pub=pub))
    step(lc, ev("e9", "o3", Status.SETTLED, minutes=1, pub="pub-3"))
    # layout 1 held an index into a publisher table (None where an index was free)
    ids = [None, "pub-3", "pub-1", "pub-2"]
    index = {pub: i for i, pub in enumerate(ids) if pub}
    old = lc.snapshot() | {"layout": 1, "publishers": {"ids": ids}}
    old["states"] = []
    for k, v in lc.orders.items():
        pub = {"o0": "pub-1", "o1": "pub-2", "o2": "pub-1", "o3": "pub-3"}[k]
        v = v & ~_PUB_FIELD | index[pub] << _PUB
        old["states"].append(v.to_bytes((v.bit_length() + 7) // 8, "little"))
    back = Lifecycle.restore(old)
    assert back.orders == lc.orders
    s = step(back, ev("e10", "o1", Status.SETTLED, minutes=2, pub="pub-1"))
    assert s.violation is Violation.PUBLISHER_CHANGED
    assert step(back, ev("e9", "o3", Status.SETTLED, minutes=1, pub="pub-3")).duplicate


def test_a_snapshot_of_another_state_layout_is_refused_not_misread():
    import pytest

    lc = Lifecycle()
    step(lc, ev("e1", "o1", Status.PAID))
    snap = lc.snapshot()
    snap["layout"] += 1
    with pytest.raises(ValueError, match="state layout"):
        Lifecycle.restore(snap)


def test_the_cap_is_configured_in_the_monitor_section():
    import pytest

    from monitor.config import ConfigError, load_params
    from monitor.pipeline import Monitor

    params = load_params(env={"ORDERMON_MONITOR_MAX_TRACKED_ORDERS": "1000"})
    assert Monitor(params).lifecycle.max_orders == 1000
    assert Monitor().lifecycle.max_orders == 5_000_000
    with pytest.raises(ConfigError, match="max_tracked_orders"):
        load_params(env={"ORDERMON_MONITOR_MAX_TRACKED_ORDERS": "0"})
