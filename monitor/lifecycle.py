"""Per-order lifecycle stage: de-duplication, transition checks, time since payment.

State per order is one tuple ``(publisher_id, rank, rank_at, paid_at, last_seen, event_crcs)``:

- ``publisher_id`` is interned (one string object per publisher, shared by its orders);
- ``rank`` is the furthest step seen (created 0 .. settled 3, invalidated 4) and ``rank_at``
  its event time: a step behind it is a violation only if it *happened* later (an earlier
  step merely *delivered* later, e.g. ``created`` arriving after ``paid``, is ordinary
  out-of-order delivery and accepted);
- ``paid_at`` / ``last_seen`` are integer epoch seconds (``-1`` = unknown);
- ``event_crcs`` holds the CRC-32 of each accepted ``event_id`` of the order (a lifecycle has
  at most a handful of steps, so a tuple beats a set; a collision needs two events of the
  *same order* with equal CRCs, ~1 in 4e9 per pair).

Footprint, measured by ``tests/unit/test_lifecycle.py``: about 285 bytes of state per
tracked order on CPython 3.11 plus the ``order_id`` key string the dict holds (49 bytes
+ its length). Orders leave after ``retention_s`` of event time without a step (default
45 days, longer than a refund or a settlement takes).
"""

from __future__ import annotations

import sys
import zlib
from enum import StrEnum
from typing import NamedTuple

from monitor.model import OrderEvent, Status

RANK: dict[Status, int] = {
    Status.CREATED: 0,
    Status.PAID: 1,
    Status.CONFIRMED: 2,
    Status.SETTLED: 3,
    Status.INVALIDATED: 4,
}
_INVALIDATED = 4


class Violation(StrEnum):
    BACKWARDS = "backwards"
    AFTER_INVALIDATED = "after_invalidated"
    PUBLISHER_CHANGED = "publisher_changed"


class Step(NamedTuple):
    """What the lifecycle stage says about one event."""

    duplicate: bool
    violation: Violation | None
    new_order: bool  # first sighting of an order at created/paid: an order placed now
    since_paid: float | None  # for invalidations: seconds since the order was paid
    counts_invalidation: bool  # an invalidation that should be counted (not dup, not repeat)


_DUP = Step(True, None, False, None, False)
_AMEND = Step(False, None, False, None, False)
# first sightings, by rank: created/paid are new orders, invalidated counts
_FIRST = tuple(Step(False, None, r <= 1, None, r == 4) for r in range(5))


class Lifecycle:
    """Tracks every open order; pure, deterministic, snapshot-able."""

    def __init__(self, retention_s: float = 45 * 86400) -> None:
        self.retention_s = retention_s
        self.orders: dict[str, tuple] = {}
        self._pubs: dict[str, str] = {}
        self.evicted = 0

    def __len__(self) -> int:
        return len(self.orders)

    def step(self, ev: OrderEvent, ts: float) -> Step:
        crc = zlib.crc32(ev.event_id.encode())
        rank = RANK[ev.status]
        t = int(ts)
        state = self.orders.get(ev.order_id)
        if state is None:
            pub = self._pubs.setdefault(ev.publisher_id, ev.publisher_id)
            paid = t if rank == 1 else -1
            self.orders[ev.order_id] = (pub, rank, t, paid, t, (crc,))
            return _FIRST[rank]
        pub, old_rank, rank_at, paid, last, crcs = state
        if crc in crcs:
            return _DUP
        crcs = crcs + (crc,) if len(crcs) < 8 else crcs[1:] + (crc,)
        violation: Violation | None = None
        if pub != ev.publisher_id:
            violation = Violation.PUBLISHER_CHANGED
        elif rank < old_rank and t > rank_at:
            violation = (
                Violation.AFTER_INVALIDATED if old_rank == _INVALIDATED else Violation.BACKWARDS
            )
        elif rank == old_rank == _INVALIDATED:
            # a second invalidation with a new event_id: an amendment, not a new invalidation
            self.orders[ev.order_id] = (pub, old_rank, rank_at, paid, max(last, t), crcs)
            return _AMEND
        if violation is not None:
            self.orders[ev.order_id] = (pub, old_rank, rank_at, paid, max(last, t), crcs)
            return Step(False, violation, False, None, False)
        if rank == 1 and (paid < 0 or t < paid):
            paid = t
        if rank >= old_rank:
            old_rank, rank_at = rank, t
        self.orders[ev.order_id] = (pub, old_rank, rank_at, paid, max(last, t), crcs)
        if rank != _INVALIDATED:
            return _AMEND
        return Step(False, None, False, (ts - paid) if paid >= 0 else None, True)

    def evict(self, now_ts: float) -> int:
        """Forget orders with no step for ``retention_s`` of event time; returns how many."""
        horizon = now_ts - self.retention_s
        stale = [k for k, v in self.orders.items() if v[4] < horizon]
        for k in stale:
            del self.orders[k]
        self.evicted += len(stale)
        if stale:  # publishers no order refers to any more can go from the intern table
            live = {v[0] for v in self.orders.values()}
            self._pubs = {p: p for p in self._pubs if p in live}
        return len(stale)

    def snapshot(self) -> dict:
        return {
            "retention_s": self.retention_s,
            "evicted": self.evicted,
            "orders": [[k, *v[:5], list(v[5])] for k, v in self.orders.items()],
        }

    @classmethod
    def restore(cls, snap: dict) -> Lifecycle:
        lc = cls(snap["retention_s"])
        lc.evicted = snap["evicted"]
        for k, pub, rank, rank_at, paid, last, crcs in snap["orders"]:
            pub = lc._pubs.setdefault(pub, pub)
            lc.orders[k] = (pub, rank, rank_at, paid, last, tuple(crcs))
        return lc


def order_footprint_bytes(lc: Lifecycle) -> float:
    """Average bytes of state per tracked order (values, tuples and CRC ints; keys excluded)."""
    if not lc.orders:
        return 0.0
    total = sys.getsizeof(lc.orders) / len(lc.orders)
    sample = list(lc.orders.values())[:1000]
    per = 0
    for v in sample:
        per += sys.getsizeof(v) + sys.getsizeof(v[5]) + sum(sys.getsizeof(c) for c in v[5])
        per += sum(sys.getsizeof(x) for x in v[1:5] if not (-5 <= x <= 256))
    return total + per / len(sample)
