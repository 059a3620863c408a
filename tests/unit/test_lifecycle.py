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
    assert 60 < per_order < 200, per_order  # documented in monitor/lifecycle.py
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
