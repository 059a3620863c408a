"""Per-order lifecycle stage: de-duplication, transition checks, time since payment.

State per order is **one integer** under its ``order_id`` key: ~72 bytes with its dict slot
at 2.7M orders (``order_footprint_bytes``; checked by ``tests/unit/test_lifecycle.py``),
plus the key string (~70 bytes for a 19-digit id). An integer, not a tuple, because the
garbage collector does not track integers: a dict of millions of tuples is walked on every
full collection, a dict of integers never is. The fields, from the low bits up (times are
integer epoch seconds modulo 2**34, i.e. until the year 2514):

==========  =====  =========================================================================
field       bits   meaning
==========  =====  =========================================================================
rank        3      furthest step seen: created 0, paid 1, confirmed 2, settled 3, invalidated 4
rank_at     34     event time of that step
paid        34     event time of payment + 1 (0: not seen paid)
last        34     newest event time seen (retention)
recent      1      touched since the cap's last sweep passed it (second chance, below)
publisher   32     CRC-32 of the ``publisher_id`` (UTF-8): a change of publisher is missed
                   only where the two ids' CRCs are equal, ~1 in 4e9 per change
marks       33*k   CRC-32 of each accepted ``event_id`` (the 8 newest), 33 bits each with a
                   marker bit. A collision needs two events of the *same order* with equal
                   CRCs, ~1 in 4e9 per pair.
==========  =====  =========================================================================

A step behind the furthest one is a violation only if it *happened* later (an earlier step
merely *delivered* later, e.g. ``created`` arriving after ``paid``, is ordinary
out-of-order delivery).

Orders leave after ``retention_s`` of event time without a step (default 45 days, longer
than a refund or a settlement takes), and, so memory stays bounded whatever the input
(a flood of junk order ids), when more than ``max_orders`` are tracked (``[monitor]
max_tracked_orders``, 5 million by default: ~0.7 GB with the keys): the dict's
insertion order is a queue, and a sweep walks it from the oldest, giving an order touched
since it was queued a second chance (to the back, unmarked) and evicting the others, until
1/64 of the cap is free again (amortised: one sweep per 1/64 of the cap of new orders).
An event of an evicted order is then treated like the first sighting of that order: a
``created``/``paid`` counts as a new order, an ``invalidated`` counts without a time since
payment, a redelivery of an event seen before the eviction is not recognised as a
duplicate, and nothing is a violation. That is the same rule as after the retention, and
the eviction counters (``evicted``, of which ``evicted_cap`` over the cap) say how often it
can have happened.
"""

from __future__ import annotations

import math
import sys
import zlib
from enum import StrEnum
from itertools import islice
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
DEFAULT_MAX_ORDERS = 5_000_000


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
_VIOLATION = {v: Step(False, v, False, None, False) for v in Violation}

# the packed order state (see the module docstring)
_T34 = (1 << 34) - 1
_RANK_AT, _PAID, _LAST, _RECENT_BIT, _PUB, _MARKS = 3, 37, 71, 105, 106, 138
_RECENT = 1 << _RECENT_BIT
# the bit layout of an order's packed integer, as snapshots store it: bump it with any
# change of the fields above, so that a snapshot of another layout is refused, not misread
# (layout 1 held an index into a publisher table instead of the CRC: it is converted)
STATE_LAYOUT = 2
_LAST_FIELD = _T34 << _LAST
_PAID_FIELD = _T34 << _PAID
_PUB_MASK = (1 << 32) - 1
_PUB_FIELD = _PUB_MASK << _PUB
_MARK = 1 << 32  # marker bit: an event mark is never zero, so marks can be counted
_CHUNK = (1 << 33) - 1
_MARKS_MASK = (1 << (33 * 8)) - 1  # keep the 8 newest
_trunc = math.trunc  # int(x) for a float, at half the cost
_crc32 = zlib.crc32  # a module global: one lookup less per event
_SWEEP_SHARE = 64  # a sweep over the cap frees 1/64 of it
# a new order's state in one multiply-add (each big-integer operation costs): its time goes
# to rank_at and last, and to paid for a payment; its rank, paid's +1 and the marker bit of
# its first event mark are constants
_NEW_SPREAD = tuple(1 << _RANK_AT | 1 << _LAST | (1 << _PAID if r == 1 else 0) for r in range(5))
_NEW_BASE = tuple(r | (1 << _PAID if r == 1 else 0) | _MARK << _MARKS for r in range(5))


def _pack(rank: int, rank_at: int, paid: int, last: int) -> int:
    """The four time/step fields (the low 105 bits)."""
    return (
        rank | (rank_at & _T34) << _RANK_AT | ((paid + 1) & _T34) << _PAID | (last & _T34) << _LAST
    )


def _unpack(state: int) -> tuple[int, int, int, int]:
    """(rank, rank_at, paid or -1, last) of a packed state."""
    return (
        state & 7,
        state >> _RANK_AT & _T34,
        (state >> _PAID & _T34) - 1,
        state >> _LAST & _T34,
    )


def _marks_list(marks: int) -> list[int]:
    """The CRCs in a marks integer, oldest first."""
    out = []
    while marks:
        out.append(marks & 0xFFFFFFFF)
        marks >>= 33
    return out[::-1]


class Lifecycle:
    """Tracks every open order; pure, deterministic, snapshot-able."""

    def __init__(
        self, retention_s: float = 45 * 86400, max_orders: int = DEFAULT_MAX_ORDERS
    ) -> None:
        if max_orders < 1:
            raise ValueError(f"max_orders must be at least 1, got {max_orders}")
        self.retention_s = retention_s
        self.max_orders = max_orders
        self.orders: dict[str, int] = {}
        self.evicted = 0  # orders forgotten: stale (retention) or over the cap
        self.evicted_cap = 0  # of those, over ``max_orders``

    def __len__(self) -> int:
        return len(self.orders)

    def step(self, ev: OrderEvent, ts: float) -> Step:
        crc = _crc32(ev.event_id.encode())
        rank = RANK[ev.status]
        t = _trunc(ts)
        orders = self.orders
        key = ev.order_id
        state = orders.get(key)
        pub = _crc32(ev.publisher_id.encode())
        if state is None:  # most events: the hottest path of the monitor, kept short
            orders[key] = (
                (t & _T34) * _NEW_SPREAD[rank] + _NEW_BASE[rank] + (pub << _PUB) + (crc << _MARKS)
            )
            if len(orders) > self.max_orders:
                self._sweep()
            return _FIRST[rank]
        mark = crc | _MARK
        marks = state >> _MARKS
        m = marks
        while m:
            if m & _CHUNK == mark:
                return _DUP
            m >>= 33
        # the publisher index stays, the mark joins the newest marks, the order is recent;
        # the fields below are rewritten
        keep = state & _PUB_FIELD | _RECENT | ((marks << 33 | mark) & _MARKS_MASK) << _MARKS
        old_rank = state & 7
        if (
            rank >= old_rank
            and (rank != _INVALIDATED or old_rank != _INVALIDATED)
            and state >> _PUB & _PUB_MASK == pub
        ):
            # the usual next step (same publisher, not behind the furthest step, not a second
            # invalidation): what the general path below does, with only the fields that
            # change unpacked. The step and its time replace the furthest ones.
            last = state >> _LAST & _T34
            if t > last:
                last = t
            paid_field = state & _PAID_FIELD
            if rank == 1:
                paid = (paid_field >> _PAID) - 1
                if paid < 0 or t < paid:
                    paid_field = ((t + 1) & _T34) << _PAID
            orders[key] = rank | (t & _T34) << _RANK_AT | paid_field | (last & _T34) << _LAST | keep
            if rank != _INVALIDATED:
                return _AMEND
            paid = (paid_field >> _PAID) - 1
            return Step(False, None, False, (ts - paid) if paid >= 0 else None, True)
        old_rank, rank_at, paid, last = _unpack(state)
        if t > last:
            last = t
        violation: Violation | None = None
        if state >> _PUB & _PUB_MASK != pub:
            violation = Violation.PUBLISHER_CHANGED
        elif rank < old_rank and t > rank_at:
            violation = (
                Violation.AFTER_INVALIDATED if old_rank == _INVALIDATED else Violation.BACKWARDS
            )
        elif rank == old_rank == _INVALIDATED:
            # a second invalidation with a new event_id: an amendment, not a new invalidation
            orders[key] = _pack(old_rank, rank_at, paid, last) | keep
            return _AMEND
        if violation is not None:
            orders[key] = _pack(old_rank, rank_at, paid, last) | keep
            return _VIOLATION[violation]
        if rank == 1 and (paid < 0 or t < paid):
            paid = t
        if rank >= old_rank:
            old_rank, rank_at = rank, t
        orders[key] = _pack(old_rank, rank_at, paid, last) | keep
        if rank != _INVALIDATED:
            return _AMEND
        return Step(False, None, False, (ts - paid) if paid >= 0 else None, True)

    def _sweep(self) -> None:
        """Over ``max_orders``: evict, oldest queued first, until 1/64 of the cap is free.

        An order touched since it was queued (``recent``) is queued again at the back with
        the mark cleared instead (second chance, the CLOCK approximation of least recently
        used); each pass over a chunk evicts or requeues every order in it, and a requeued
        order is evicted when the sweep reaches it again untouched, so the loop ends.
        """
        orders = self.orders
        target = self.max_orders - max(1, self.max_orders // _SWEEP_SHARE)
        while len(orders) > target:
            for key, state in list(islice(orders.items(), len(orders) - target)):
                del orders[key]
                if state & _RECENT:
                    orders[key] = state ^ _RECENT
                else:
                    self.evicted += 1
                    self.evicted_cap += 1

    def evict(self, now_ts: float) -> int:
        """Forget orders with no step for ``retention_s`` of event time; returns how many."""
        horizon = now_ts - self.retention_s
        if not horizon > 0:
            return 0  # every ``last`` is >= 0 (this also covers -inf and NaN)
        # ``last < horizon`` compared in place, one big-integer operation an order instead
        # of two (the walk covers every tracked order): for an integer ``last`` (< 2**34)
        # that is ``last < ceil(horizon)``
        below = math.ceil(min(horizon, _T34 + 1)) << _LAST
        orders = self.orders
        stale = [k for k, v in orders.items() if v & _LAST_FIELD < below]
        for k in stale:
            del orders[k]
        self.evicted += len(stale)
        return len(stale)

    def snapshot(self) -> dict:
        """The state, cheap to take: order ids, each order's packed integer as its
        little-endian bytes. A checkpoint of a partition with ~750k orders took 3.9 s when
        every order was unpacked into a list; this takes ~0.35 s. ``layout`` names the bit
        layout of the integers (``STATE_LAYOUT``)."""
        return {
            "retention_s": self.retention_s,
            "max_orders": self.max_orders,
            "evicted": self.evicted,
            "evicted_cap": self.evicted_cap,
            "layout": STATE_LAYOUT,
            "order_ids": list(self.orders),
            "states": [
                v.to_bytes((v.bit_length() + 7) // 8, "little") for v in self.orders.values()
            ],  # fmt: skip
        }

    @classmethod
    def restore(cls, snap: dict, max_orders: int | None = None) -> Lifecycle:
        """The state of ``snapshot()``; ``max_orders`` (configuration) overrides the
        snapshot's cap. Snapshots of layout 1 (a publisher table, the integers holding
        indexes into it) and from before the cap (no ``recent`` flag) load too."""
        cap = max_orders or snap.get("max_orders", DEFAULT_MAX_ORDERS)
        lc = cls(snap["retention_s"], cap)
        lc.evicted = snap["evicted"]
        lc.evicted_cap = snap.get("evicted_cap", 0)
        if "states" in snap:
            layout = snap.get("layout")
            if layout not in (1, STATE_LAYOUT):
                raise ValueError(f"lifecycle snapshot of state layout {layout}, "
                                 f"this version reads 1 and {STATE_LAYOUT}")  # fmt: skip
            frombytes = int.from_bytes
            states = [frombytes(b, "little") for b in snap["states"]]
            if layout == 1:
                states = _from_publisher_table(states, snap["publishers"]["ids"])
            lc.orders = dict(zip(snap["order_ids"], states, strict=True))
            if len(lc.orders) > lc.max_orders:  # restored under a smaller cap
                lc._sweep()
            return lc
        # the earlier form: one unpacked list per order
        for k, pub, rank, rank_at, paid, last, crcs, *recent in snap["orders"]:
            marks = 0
            for crc in crcs:
                marks = marks << 33 | crc | _MARK
            state = _pack(rank, rank_at, paid, last) | marks << _MARKS
            state |= _crc32(pub.encode()) << _PUB
            lc.orders[k] = state | _RECENT if recent and recent[0] else state
        if len(lc.orders) > lc.max_orders:  # restored under a smaller cap
            lc._sweep()
        return lc


def order_footprint_bytes(lc: Lifecycle) -> float:
    """Average bytes of state per tracked order: its dict slot and its integer (the
    ``order_id`` key string is excluded)."""
    if not lc.orders:
        return 0.0
    total = sys.getsizeof(lc.orders) / len(lc.orders)
    sample = list(islice(lc.orders.values(), 1000))
    return total + sum(sys.getsizeof(v) for v in sample) / len(sample)


def _from_publisher_table(states: list[int], ids: list[str | None]) -> list[int]:
    """Layout-1 states (publisher field: an index into ``ids``) with the publisher's CRC."""
    crcs = [0 if pub is None else _crc32(pub.encode()) for pub in ids]
    return [v & ~_PUB_FIELD | crcs[v >> _PUB & _PUB_MASK] << _PUB for v in states]
