"""Per-order lifecycle stage: de-duplication, transition checks, time since payment.

State per order is one tuple ``(publisher_id, packed, event_marks)`` (about 150 bytes, see
``order_footprint_bytes``; measured by ``tests/unit/test_lifecycle.py``), plus the
``order_id`` key string the dict holds:

- ``publisher_id`` is interned (one string object per publisher, shared by its orders);
- ``packed`` holds, as one integer, the furthest step seen (``rank``: created 0 ..
  settled 3, invalidated 4) and its event time ``rank_at``, ``paid_at`` and
  ``last_seen`` (integer epoch seconds, 34 bits each). A step behind the furthest one is a
  violation only if it *happened* later (an earlier step merely *delivered* later, e.g.
  ``created`` arriving after ``paid``, is ordinary out-of-order delivery);
- ``event_marks`` holds the CRC-32 of each accepted ``event_id`` of the order (at most 8),
  33 bits each with a marker bit, in one integer. A collision needs two events of the
  *same order* with equal CRCs, ~1 in 4e9 per pair.

Orders leave after ``retention_s`` of event time without a step (default 45 days, longer
than a refund or a settlement takes).
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

# packed order state: rank (3 bits) | rank_at | paid_at + 1 | last_seen (34 bits each)
_T34 = (1 << 34) - 1
_LAST_SHIFT = 71
_MARK = 1 << 32  # marker bit: an event mark is never zero, so marks can be counted
_CHUNK = (1 << 33) - 1
_MARKS_MASK = (1 << (33 * 8)) - 1  # keep the 8 newest


def _pack(rank: int, rank_at: int, paid: int, last: int) -> int:
    return rank | (rank_at & _T34) << 3 | ((paid + 1) & _T34) << 37 | (last & _T34) << 71


def _marks_list(marks: int) -> list[int]:
    """The CRCs in a marks integer, oldest first."""
    out = []
    while marks:
        out.append(marks & 0xFFFFFFFF)
        marks >>= 33
    return out[::-1]


def _unpack(packed: int) -> tuple[int, int, int, int]:
    return (
        packed & 7,
        packed >> 3 & _T34,
        (packed >> 37 & _T34) - 1,
        packed >> 71,
    )


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
        mark = zlib.crc32(ev.event_id.encode()) | _MARK
        rank = RANK[ev.status]
        t = int(ts)
        state = self.orders.get(ev.order_id)
        if state is None:
            pub = self._pubs.setdefault(ev.publisher_id, ev.publisher_id)
            self.orders[ev.order_id] = (pub, _pack(rank, t, t if rank == 1 else -1, t), mark)
            return _FIRST[rank]
        pub, packed, marks = state
        m = marks
        while m:
            if m & _CHUNK == mark:
                return _DUP
            m >>= 33
        marks = (marks << 33 | mark) & _MARKS_MASK
        old_rank, rank_at, paid, last = _unpack(packed)
        last = max(last, t)
        violation: Violation | None = None
        if pub != ev.publisher_id:
            violation = Violation.PUBLISHER_CHANGED
        elif rank < old_rank and t > rank_at:
            violation = (
                Violation.AFTER_INVALIDATED if old_rank == _INVALIDATED else Violation.BACKWARDS
            )
        elif rank == old_rank == _INVALIDATED:
            # a second invalidation with a new event_id: an amendment, not a new invalidation
            self.orders[ev.order_id] = (pub, _pack(old_rank, rank_at, paid, last), marks)
            return _AMEND
        if violation is not None:
            self.orders[ev.order_id] = (pub, _pack(old_rank, rank_at, paid, last), marks)
            return Step(False, violation, False, None, False)
        if rank == 1 and (paid < 0 or t < paid):
            paid = t
        if rank >= old_rank:
            old_rank, rank_at = rank, t
        self.orders[ev.order_id] = (pub, _pack(old_rank, rank_at, paid, last), marks)
        if rank != _INVALIDATED:
            return _AMEND
        return Step(False, None, False, (ts - paid) if paid >= 0 else None, True)

    def evict(self, now_ts: float) -> int:
        """Forget orders with no step for ``retention_s`` of event time; returns how many."""
        horizon = now_ts - self.retention_s
        stale = [k for k, v in self.orders.items() if v[1] >> _LAST_SHIFT < horizon]
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
            # unpacked: msgpack and JSON carry integers of at most 64 bits
            "orders": [
                [k, v[0], *_unpack(v[1]), _marks_list(v[2])] for k, v in self.orders.items()
            ],
        }

    @classmethod
    def restore(cls, snap: dict) -> Lifecycle:
        lc = cls(snap["retention_s"])
        lc.evicted = snap["evicted"]
        for k, pub, rank, rank_at, paid, last, crcs in snap["orders"]:
            pub = lc._pubs.setdefault(pub, pub)
            marks = 0
            for crc in crcs:
                marks = marks << 33 | crc | _MARK
            lc.orders[k] = (pub, _pack(rank, rank_at, paid, last), marks)
        return lc


def order_footprint_bytes(lc: Lifecycle) -> float:
    """Average bytes of state per tracked order: dict slot, tuple and integers (the interned
    publisher id is shared; the ``order_id`` key string is excluded)."""
    if not lc.orders:
        return 0.0
    total = sys.getsizeof(lc.orders) / len(lc.orders)
    sample = list(lc.orders.values())[:1000]
    per = sum(sys.getsizeof(v) + sys.getsizeof(v[1]) + sys.getsizeof(v[2]) for v in sample)
    return total + per / len(sample)
