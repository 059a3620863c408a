"""The monitor split into stages a stream driver can run on different partitions.

::

    Ingest (per input partition)  --facts-->  Windowing (per publisher partition)
        --partials-->  Detection (one, in ``monitor.pipeline``)  --> alert records

- ``Ingest`` decodes, runs the order lifecycle and the source's clock guard, and turns
  every input message into *facts* (plain tuples, below). It keeps the per-order state.
- ``Windowing`` applies facts to the event-time windows (``monitor.windows.WindowSet``);
  when the watermark closes windows it emits ``Partial`` records: one window's counts of
  the publishers this partition holds, plus its quality counters and watermark.
- ``Detection`` merges the partials of a window from every windowing partition and runs the
  detectors and the alert book.

``monitor.pipeline.Monitor`` runs the three in one process with one partition each (replay,
tests); ``streams/`` runs them as faust agents. Both are deterministic functions of their
input order; no clocks, no I/O here.

Facts (first field the kind, then the source and the source's clock after the fact):

==========  ===============================================================================
``EV``      ``(EV, src, clock, pub, ts, contrib | None, violation | None, early_rejects,
            late)``: a valid event arrived; ``contrib`` (buyer, publisher, new_order, reason
            slot, fast) is placed at ``ts`` unless the guard holds it (``None``); ``late``: its
            window had closed by the source's own watermark when it arrived
``DUP``     ``(DUP, src, clock, pub)``: a duplicate arrived
``REJ``     ``(REJ, src, clock, code)``: a rejected message arrived
``FUT``     ``(FUT, src, clock, n)``: ``n`` held events turned out to be future-stamped
``REL``     ``(REL, src, clock, pub, ts, contrib)``: a held event is placed (a real jump)
``TICK``    ``(TICK, src, clock)``: the source's clock passed a window boundary (stream driver
            only: tells every windowing partition, so each can close windows)
==========  ===============================================================================

Lateness is decided where the source's clock is exact (Ingest): an event is late when its
window ends at or before its source's watermark (clock - lateness) as it arrives. That is
the one-process rule (there, the closed windows are exactly those), and it makes every
windowing partition count the same events late however the sources' facts interleave.
Windowing also counts an event late whose window it has already closed (possible only after
it stopped waiting for a source marked idle).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitor.decode import decode, event_time
from monitor.lifecycle import Lifecycle
from monitor.model import REASON_INDEX, Rejection
from monitor.windows import HELD, JUMP, ClockGuard, WindowAcc, WindowSet

_CART_REASONS = (REASON_INDEX["cancel"], REASON_INDEX["refund"])  # a buyer's decisions

if TYPE_CHECKING:
    from monitor.pipeline import MonitorParams

EV, DUP, REJ, FUT, REL, TICK = range(6)
FACT_KINDS = ("ev", "dup", "rej", "fut", "rel", "tick")


def fact_publisher(fact: tuple) -> str | None:
    """The publisher a fact belongs to (its routing key), or None for stream-wide facts."""
    kind = fact[0]
    return fact[3] if kind in (EV, DUP, REL) else None


class Ingest:
    """Decode -> lifecycle -> clock guard, for one or more sources; facts go to ``emit``
    (by default appended to ``out``).

    ``ticks``: also emit a ``TICK`` fact whenever a source's clock passes a window boundary
    (shifted by the lateness, i.e. whenever the source could close a window).
    ``evict_every_s``: evict stale orders whenever a source's clock enters a new period of
    this length (the stream driver; the one-process ``Monitor`` evicts when Detection
    closes a day's first window instead, as it always did).
    """

    def __init__(
        self, params: MonitorParams, ticks: bool = False, evict_every_s: float | None = None
    ) -> None:
        p = params
        self.max_bytes = p.max_event_bytes
        self.fast_s = p.fast_after_payment_s
        self.tolerance = p.future_tolerance_s
        self.confirm = p.jump_confirm
        self.width = p.window_s
        self.lateness = p.lateness_s
        self.ticks = ticks
        self.evict_every = evict_every_s
        self.lifecycle = Lifecycle(p.retention_s, p.max_tracked_orders)
        self.guards: dict[int, ClockGuard] = {}
        self.tick_at: dict[int, int] = {}  # source -> boundary index of its last tick
        self.evict_at = -1
        self.out: list[tuple] = []
        # where facts go: into ``out`` for the driver to route; the one-process ``Monitor``
        # sends them straight to its ``Windowing.apply`` instead (no list in between)
        self.emit: Callable[[tuple], None] = self._to_out
        # where a valid event's fields go: by default an ``EV`` fact to ``emit``; the
        # one-process ``Monitor`` sets ``Windowing.event`` (the same fields, no tuple)
        self.on_event: Callable[..., None] = self._event_fact
        self.periodic = ticks or bool(evict_every_s)  # ``_periodic`` has work to do
        self.accepted = 0
        self.rejected: Counter[str] = Counter()
        self.duplicates = 0
        self.violations: Counter[str] = Counter()
        self.invalidations: Counter[str] = Counter()
        self.early_rejects = 0  # before any event set a clock

    def _to_out(self, fact: tuple) -> None:
        self.out.append(fact)

    def _event_fact(
        self,
        source: int,
        clock: float,
        pub: str,
        ts: float,
        contrib: tuple | None,
        violation: str | None,
        early: int,
        late: bool,
    ) -> None:
        self.emit((EV, source, clock, pub, ts, contrib, violation, early, late))

    def _guard(self, source: int) -> ClockGuard:
        g = self.guards.get(source)
        if g is None:
            g = self.guards[source] = ClockGuard(self.tolerance, self.confirm)
        return g

    def process(self, raw: bytes, source: int = 0) -> Rejection | None:
        """One message: its facts go to ``emit``; a rejection is also returned.

        The per-message path of the whole monitor, so the common case (a valid event near
        its source's clock) calls no helper; the rest is in ``_reject`` and ``_unusual``.
        """
        ev = decode(raw, self.max_bytes)
        guard = self.guards.get(source) or self._guard(source)
        if type(ev) is Rejection:
            self._reject(ev, source, guard.clock)
            return ev
        ts = event_time(ev)  # type: ignore[arg-type]
        dup, violation, new_order, since_paid, counts = self.lifecycle.step(ev, ts)  # type: ignore[arg-type]
        pub = ev.publisher_id  # type: ignore[union-attr]
        if dup:
            self.duplicates += 1
            self.emit((DUP, source, guard.clock, pub))
            return None
        self.accepted += 1
        reason = -1
        fast = False
        if counts:
            reason = REASON_INDEX[ev.reason]  # type: ignore[union-attr,index]
            self.invalidations[ev.reason] += 1  # type: ignore[union-attr,index]
            fast = since_paid is not None and since_paid <= self.fast_s
        if violation is not None:
            self.violations[violation] += 1
        buyer = ev.parent_order_id  # type: ignore[union-attr]
        if buyer is None:
            # a feed without carts: a buyer's cancel or refund of a whole cart is its items
            # invalidated at one instant, counted as one decision (``monitor.windows``)
            buyer = f"@{ts!r}" if reason in _CART_REASONS else ev.order_id  # type: ignore[union-attr]
        contrib: tuple | None = (buyer, pub, new_order, reason, fast)
        clock = guard.clock
        late = False
        if (
            clock is not None
            and clock - self.lateness <= ts <= clock + self.tolerance
            and not guard.pending
        ):
            # nearly every event: near its source's clock, so neither late (its window is
            # the watermark's or newer) nor held: what ``ClockGuard.offer`` says, uncalled
            todo = 0
        else:
            late = clock is not None and int(ts // self.width) < int(
                (clock - self.lateness) // self.width
            )
            todo = guard.offer(ts, contrib)
        if todo == 0:  # place it now; the clock is the largest placed time
            if clock is None or ts > clock:
                clock = guard.clock = ts
        else:
            clock = self._unusual(todo, guard, source, ts)
            if todo < 0:
                contrib = None
        early = self.early_rejects
        if early:
            self.early_rejects = 0
        self.on_event(source, clock, pub, ts, contrib, violation, early, late)
        if self.periodic:
            self._periodic(source, clock)  # type: ignore[arg-type]
        return None

    def _reject(self, rej: Rejection, source: int, clock: float | None) -> None:
        self.rejected[rej.code] += 1
        if clock is None:
            self.early_rejects += 1
        else:
            self.emit((REJ, source, clock, rej.code))

    def _unusual(self, todo: int, guard: ClockGuard, source: int, ts: float) -> float:
        """The clock guard held the event (``HELD``), confirmed a jump (``JUMP``: the held
        events are placed now, as ``REL`` facts) or found held events future (``n > 0``:
        a ``FUT`` fact, then the event is placed). Returns the source clock after it."""
        if todo == HELD:
            return guard.clock  # type: ignore[return-value]
        if todo == JUMP:
            for t, c in guard.take_jump():
                self.emit((REL, source, guard.moved(t), c[1], t, c))
            return guard.clock  # type: ignore[return-value]
        self.emit((FUT, source, guard.clock, guard.take_future()))
        return guard.moved(ts)

    def _periodic(self, source: int, clock: float) -> None:
        if self.ticks:
            b = int((clock - self.lateness) // self.width)
            if b != self.tick_at.get(source):
                self.tick_at[source] = b
                self.emit((TICK, source, clock))
        if self.evict_every:
            period = int(clock // self.evict_every)
            if period > self.evict_at:
                if self.evict_at >= 0:
                    self.lifecycle.evict(clock - self.lateness)
                self.evict_at = period

    def flush(self) -> None:
        """End of input: held events count as future."""
        for source, guard in self.guards.items():
            if guard.pending:
                self.emit((FUT, source, guard.clock, guard.take_future()))

    def snapshot(self) -> dict[str, Any]:
        return {
            "lifecycle": self.lifecycle.snapshot(),
            "guards": [[k, g.snapshot()] for k, g in self.guards.items()],
            "tick_at": [[k, v] for k, v in self.tick_at.items()],
            "evict_at": self.evict_at,
            "accepted": self.accepted,
            "rejected": dict(self.rejected),
            "duplicates": self.duplicates,
            "violations": dict(self.violations),
            "invalidations": dict(self.invalidations),
            "early_rejects": self.early_rejects,
        }

    def restore(self, snap: dict[str, Any]) -> None:
        self.lifecycle = Lifecycle.restore(snap["lifecycle"], self.lifecycle.max_orders)
        self.guards = {}
        for k, g in snap["guards"]:
            self._guard(k).restore(g)
        self.tick_at = {k: v for k, v in snap["tick_at"]}
        self.evict_at = snap["evict_at"]
        self.accepted = snap["accepted"]
        self.rejected = Counter(snap["rejected"])
        self.duplicates = snap["duplicates"]
        self.violations = Counter(snap["violations"])
        self.invalidations = Counter(snap["invalidations"])
        self.early_rejects = snap["early_rejects"]


@dataclass(slots=True)
class Partial:
    """One closed window as one windowing partition saw it."""

    part: int  # windowing partition
    acc: WindowAcc  # its publishers' counts and its share of the quality counters
    watermark: float | None  # the partition's watermark when it closed the window


class Windowing:
    """Facts in, ``Partial`` records out (in ``out``) as the watermark closes windows.

    ``expected_sources`` / ``idle_after_s`` are those of ``WindowSet``: the one-process
    monitor keeps the event-time idle rule; the stream driver names its sources and marks
    idle ones (``set_idle``) from the wall clock.
    """

    def __init__(
        self,
        params: MonitorParams,
        part: int = 0,
        expected_sources: int | None = None,
        idle_after_s: float | None = -1,
    ) -> None:
        p = params
        idle = p.idle_after_s if idle_after_s == -1 else idle_after_s
        self.set = WindowSet(p.window_s, p.lateness_s, idle, expected_sources)
        self.part = part
        self.width = p.window_s
        self.lateness = p.lateness_s
        self.next_close = float("-inf")
        self.out: list[Partial] = []
        # where closed windows go: into ``out`` for the driver; the one-process ``Monitor``
        # sends them straight to its detection instead
        self.emit: Callable[[Partial], None] = self._to_out

    def _to_out(self, partial: Partial) -> None:
        self.out.append(partial)

    @property
    def watermark(self) -> float | None:
        return self.set.watermark

    def apply(self, f: tuple) -> None:
        kind = f[0]
        ws = self.set
        if kind == EV:
            _, src, clock, pub, ts, contrib, violation, early, late = f
            self.event(src, clock, pub, ts, contrib, violation, early, late)
        elif kind == DUP:
            acc = ws.arrive(f[1], f[2])
            if acc is not None:
                acc.duplicates += 1
                acc.arrivals += 1
        elif kind == REJ:
            acc = ws.arrive(f[1], f[2])
            if acc is not None:
                code = f[3]
                acc.rejected += 1
                acc.arrivals += 1
                acc.rejected_by_code[code] = acc.rejected_by_code.get(code, 0) + 1
        elif kind == REL:
            _, src, clock, _pub, ts, contrib = f
            ws.set_clock(src, clock)
            ws.place(src, ts, contrib)
        elif kind == FUT:
            ws.set_clock(f[1], f[2])
            ws.count_future(f[1], f[3])
        elif kind == TICK:
            ws.set_clock(f[1], f[2])
            if f[2] >= self.next_close:
                self._close(ws.advance())
        else:
            raise ValueError(f"unknown fact kind {kind!r}")

    def event(
        self,
        src: int,
        clock: float,
        pub: str,
        ts: float,
        contrib: tuple | None,
        violation: str | None,
        early: int,
        late: bool,
    ) -> None:
        """A valid event: an ``EV`` fact's fields (``Ingest.on_event`` in one process)."""
        ws = self.set
        acc = ws.arrive(src, clock)
        if contrib is not None:
            ws.place(src, ts, contrib, late)
        if acc is not None:
            acc.arrivals += 1
            if early:
                acc.rejected += early
                acc.arrivals += early
            if violation is not None:
                acc.violations += 1
                acc.violations_by_type[violation] = acc.violations_by_type.get(violation, 0) + 1
        if clock >= self.next_close:
            self._close(ws.advance())

    def set_idle(self, source: int, idle: bool = True) -> None:
        """Stream driver: the source has had no traffic for a while (or has again)."""
        self.set.set_idle(source, idle)
        if idle:
            self._close(self.set.advance())

    def _close(self, closed: list[WindowAcc]) -> None:
        if closed:
            wm = self.set.watermark
            for acc in closed:
                self.emit(Partial(self.part, acc, wm))
        self.next_close = (self.set.closed_through + 2) * self.width + self.lateness

    def flush(self) -> None:
        """End of input (replay): close every window the stream has fully passed."""
        self._close(self.set.flush())

    def snapshot(self) -> dict[str, Any]:
        nc = self.next_close
        return {"set": self.set.snapshot(), "next_close": None if nc == float("-inf") else nc}

    def restore(self, snap: dict[str, Any]) -> None:
        self.set.restore(snap["set"])
        nc = snap["next_close"]
        self.next_close = float("-inf") if nc is None else nc
