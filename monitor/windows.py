"""Event-time windows: a stream clock per source, a watermark, tumbling window accumulators.

- Each source (a Kafka partition; replay has one) keeps a clock (``ClockGuard``): the
  largest event time it accepted. An event stamped more than ``future_tolerance_s`` past
  its source clock is *future* (a producer writing local time as UTC, say) and does not
  move the clock: it is held, and counted as future as soon as an on-time event follows.
  Only when ``jump_confirm`` such events arrive in a row does the clock accept the jump (a
  real gap in traffic) and the held events count as on time. A handful of skewed events
  therefore never closes the open windows.
- The watermark is the minimum of ``clock - lateness_s`` over active sources; a source whose
  clock trails the fastest by more than ``idle_after_s`` is idle and does not hold time back.
- Windows are tumbling, ``[k*width, (k+1)*width)``; a window closes when the watermark
  passes its end. Events for a closed window are *late*: counted, not added.
- Rejections, duplicates, lifecycle violations, late and future events have no trustworthy
  event time: they are counted in the window that holds their source's clock.

Two pieces, so the stream driver can run them in different stages: ``ClockGuard`` (one per
source, where the source's events are decoded: ``monitor.stages.Ingest``) decides which
events move the clock, and ``WindowSet`` (``monitor.stages.Windowing``) holds the open
windows and derives the watermark from the clocks it is told. ``Windows`` composes the two
for callers that have both in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import trunc as _trunc
from typing import Any

# Per-publisher count vector layout. The invalidation channels (reasons, fast, total) count
# distinct *buyer* orders (``parent_order_id``, else ``order_id``) per reason: a buyer who
# cancels a four-item cart is one decision, not four, and counting it four times makes
# ordinary traffic look bursty. A feed that sends no ``parent_order_id`` still shows a
# cart: its items are cancelled or refunded at one instant, so there a publisher's cancels
# (refunds) stamped with the same ``occurred_at`` count once. Not the reasons a platform
# or network decides in batches (fraud, violation, data_anomaly, other): those stay counted
# by order. ``RAW`` keeps the sub-order count.
REASON_SLOTS = 6
FAST = 6
TOTAL = 7
ORDERS = 8
RAW = 9
SLOTS = 10
CHANNELS = 8  # reasons + fast + total: the channels detectors test


@dataclass(slots=True)
class WindowAcc:
    """Counts of one tumbling window while it is open, and once closed."""

    index: int
    width: int
    pubs: dict[str, list[int]] = field(default_factory=dict)
    events: int = 0  # on-time, non-duplicate valid events (by event time)
    rejected: int = 0
    rejected_by_code: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    violations: int = 0
    violations_by_type: dict[str, int] = field(default_factory=dict)
    future: int = 0
    late: int = 0
    arrivals: int = 0  # every input line/message attributed to this window by stream clock
    buyers: set = field(default_factory=set)  # (publisher, parent order, reason) counted

    @property
    def start(self) -> int:
        return self.index * self.width

    @property
    def end(self) -> int:
        return (self.index + 1) * self.width

    def platform(self) -> list[int]:
        """Sum of the per-publisher vectors."""
        if not self.pubs:
            return [0] * SLOTS
        return [sum(column) for column in zip(*self.pubs.values(), strict=True)]


HELD = -1  # ClockGuard.offer: the event is held (possibly future)
JUMP = -2  # ClockGuard.offer: a run of held events confirms a jump; call take_jump()


class ClockGuard:
    """One source's stream clock and its future-skew guard.

    ``offer(ts, item)`` says what to do with an event: ``0`` place it now (then call
    ``moved(ts)``), ``n > 0`` first count the ``n`` held events as future (``take_future``),
    then place it; ``HELD``: it is held; ``JUMP``: the run of held events is a real jump,
    ``take_jump()`` returns them (this one included) to place in order.
    """

    __slots__ = ("clock", "pending", "tolerance", "confirm")

    def __init__(self, tolerance: float = 900, confirm: int = 20) -> None:
        self.clock: float | None = None
        self.pending: list[tuple[float, Any]] = []
        self.tolerance = tolerance
        self.confirm = confirm

    def offer(self, ts: float, item: Any) -> int:
        clock = self.clock
        if clock is None:
            self.clock = ts
            return 0
        if ts > clock + self.tolerance:
            self.pending.append((ts, item))
            return HELD if len(self.pending) < self.confirm else JUMP
        return len(self.pending)

    def moved(self, ts: float) -> float:
        """An event at ``ts`` was placed: the clock is the largest placed time."""
        if ts > self.clock:  # type: ignore[operator]
            self.clock = ts
        return self.clock  # type: ignore[return-value]

    def take_future(self) -> int:
        n = len(self.pending)
        self.pending = []
        return n

    def take_jump(self) -> list[tuple[float, Any]]:
        held, self.pending = self.pending, []
        self.clock = min(t for t, _ in held)
        return held

    def snapshot(self) -> list:
        return [self.clock, [[t, list(c)] for t, c in self.pending]]

    def restore(self, snap: list) -> None:
        self.clock = snap[0]
        self.pending = [(t, tuple(c)) for t, c in snap[1]]


@dataclass(slots=True)
class _Src:
    clock: float | None = None
    acc_index: int = -1  # cache: the open window holding this source's clock
    acc: WindowAcc | None = None
    acc_end: float = float("-inf")  # the end of that window (s)


class WindowSet:
    """Open windows, the watermark over the sources' clocks, closing.

    ``expected_sources`` (stream driver): the sources ``0..n-1`` that will report; one that
    has not reported yet holds time back unless marked idle. ``idle_after_s`` (replay): a
    source whose clock trails the newest by more than this is idle; ``None`` turns the
    event-time rule off (the stream driver marks sources idle on the wall clock instead,
    ``set_idle``). When every source is idle, the newest clock sets the watermark.
    """

    def __init__(
        self,
        width_s: int = 300,
        lateness_s: int = 120,
        idle_after_s: float | None = 900,
        expected_sources: int | None = None,
    ) -> None:
        self.width = width_s
        self.lateness = lateness_s
        self.idle_after = idle_after_s
        self.expected = expected_sources
        self.sources: dict[int, _Src] = {}
        self.idle: set[int] = set()
        self.open: dict[int, WindowAcc] = {}
        self.closed_through = -1  # every window index <= this is closed
        self.watermark: float | None = None
        self.late_total = 0
        self.future_total = 0

    def set_clock(self, source: int, clock: float | None) -> None:
        src = self.sources.get(source)
        if src is None:
            src = self.sources[source] = _Src()
        if clock is not None and (src.clock is None or clock > src.clock):
            src.clock = clock
        if self.idle:
            self.idle.discard(source)

    def arrive(self, source: int, clock: float | None) -> WindowAcc | None:
        """A message from ``source``, whose clock is ``clock`` after it: the clock moves
        (never back), the source is active again, and the open window holding the clock is
        returned (``stream_window``), or None while the source has no clock yet.

        ``set_clock`` and ``stream_window`` in one call: the per-message path of the monitor.
        """
        src = self.sources.get(source)
        if src is None:
            src = self.sources[source] = _Src()
        if self.idle:
            self.idle.discard(source)
        if clock is not None and (src.clock is None or clock > src.clock):
            src.clock = clock
        elif src.clock is None:
            return None
        if src.clock < src.acc_end and src.acc_index > self.closed_through:
            return src.acc  # the clock is still in the cached window, and it is open
        return self._clock_window(src)

    def set_idle(self, source: int, idle: bool = True) -> None:
        if idle:
            self.idle.add(source)
        else:
            self.idle.discard(source)

    def stream_window(self, source: int) -> WindowAcc | None:
        """The open window holding the source's clock (for events without a usable time)."""
        src = self.sources.get(source)
        if src is None or src.clock is None:
            return None
        return self._clock_window(src)

    def _clock_window(self, src: _Src) -> WindowAcc:
        """The open window of the source's clock (the first open one if that has closed),
        cached on the source: closed windows never reopen, so the cache stays valid."""
        index = int(src.clock // self.width)  # type: ignore[operator]
        if index <= self.closed_through:
            index = self.closed_through + 1
        acc = src.acc
        if index != src.acc_index or acc is None:
            src.acc_index = index
            acc = src.acc = self._acc(index)
            src.acc_end = (index + 1) * self.width
        return acc

    def _acc(self, index: int) -> WindowAcc:
        acc = self.open.get(index)
        if acc is None:
            acc = self.open[index] = WindowAcc(index, self.width)
        return acc

    def count_future(self, source: int, n: int) -> None:
        acc = self.stream_window(source)
        if acc is not None:
            acc.future += n
        self.future_total += n

    def place(self, source: int, ts: float, contrib: tuple, late: bool = False) -> str:
        """Count one valid event at ``ts`` (the source clock already includes it).

        ``contrib`` is (buyer order id, publisher, new_order, reason slot or -1, fast);
        ``late``: the caller knows the event is late (its source's watermark had passed
        its window). Returns 'on_time' or 'late'.
        """
        index = _trunc(ts // self.width)  # int(), at half the cost
        if late or index <= self.closed_through:
            self.late_total += 1
            clock = self.sources[source].clock
            acc = self._acc(max(int(clock // self.width), self.closed_through + 1))  # type: ignore[operator]
            acc.late += 1
            return "late"
        acc = self.open.get(index) or self._acc(index)
        acc.events += 1
        buyer, pub, new_order, reason, fast = contrib
        vec = acc.pubs.get(pub)
        if vec is None:
            vec = acc.pubs[pub] = [0] * SLOTS
        if new_order:
            vec[ORDERS] += 1
        if reason >= 0:
            vec[RAW] += 1
            key = (pub, buyer, reason)
            if key not in acc.buyers:
                acc.buyers.add(key)
                vec[reason] += 1
                vec[TOTAL] += 1
                if fast:
                    vec[FAST] += 1
        return "on_time"

    # -- watermark --------------------------------------------------------------------
    def advance(self) -> list[WindowAcc]:
        """Recompute the watermark; return the windows it closes, oldest first."""
        clocks = [(s, src.clock) for s, src in self.sources.items() if src.clock is not None]
        if not clocks:
            return []
        idle = self.idle
        if self.expected is not None:
            known = {s for s, _ in clocks}
            if any(s not in known and s not in idle for s in range(self.expected)):
                return []  # a source that has not reported yet holds time back
        newest = max(c for _, c in clocks)
        active = [c for s, c in clocks if s not in idle]
        if self.idle_after is not None:
            active = [c for c in active if c >= newest - self.idle_after]
        wm = (min(active) if active else newest) - self.lateness
        if self.watermark is not None and wm <= self.watermark:
            return []
        self.watermark = wm
        last_closed = int(wm // self.width) - 1  # windows whose end <= wm
        return self._close_through(last_closed)

    def _close_through(self, last: int) -> list[WindowAcc]:
        if last <= self.closed_through:
            return []
        first = self.closed_through + 1
        if self.closed_through < 0 and self.open:
            first = min(self.open)
        closed = []
        # empty windows in between close too (detectors must see silence), but a gap of
        # more than a day closes only the windows that hold data plus the last one
        indices: range | list[int] = range(first, last + 1)
        if last - first > 288:
            indices = sorted({i for i in self.open if i <= last} | {last})
        for i in indices:
            acc = self.open.pop(i, None) or WindowAcc(i, self.width)
            acc.buyers = set()  # only needed while the window is open
            closed.append(acc)
        self.closed_through = last
        return closed

    def flush(self) -> list[WindowAcc]:
        """End of input: close every window the stream has fully passed in event time.

        The window holding the newest event is still being filled when the input ends, so
        it is dropped rather than judged on a part of its traffic (a replay must not end
        with a false volume drop).
        """
        clocks = [s.clock for s in self.sources.values() if s.clock is not None]
        if not clocks or not self.open:
            return []
        last_complete = int(max(clocks) // self.width) - 1
        closed = self._close_through(last_complete)
        self.open.clear()
        return closed

    def snapshot(self) -> dict:
        return {
            "sources": [[k, s.clock] for k, s in self.sources.items()],
            "idle": sorted(self.idle),
            "open": [_acc_snapshot(a) for a in self.open.values()],
            "closed_through": self.closed_through,
            "watermark": self.watermark,
            "late_total": self.late_total,
            "future_total": self.future_total,
        }

    def restore(self, d: dict) -> None:
        self.sources = {k: _Src(clock) for k, clock in d["sources"]}
        self.idle = set(d["idle"])
        self.open = {a["index"]: _acc_restore(a, self.width) for a in d["open"]}
        self.closed_through = d["closed_through"]
        self.watermark = d["watermark"]
        self.late_total = d["late_total"]
        self.future_total = d["future_total"]


class Windows:
    """Clock guards and a window set in one object (all sources in one place)."""

    def __init__(
        self,
        width_s: int = 300,
        lateness_s: int = 120,
        future_tolerance_s: int = 900,
        jump_confirm: int = 20,
        idle_after_s: int = 900,
    ) -> None:
        self.set = WindowSet(width_s, lateness_s, idle_after_s)
        self.future_tolerance = future_tolerance_s
        self.jump_confirm = jump_confirm
        self.sources: dict[int, ClockGuard] = {}

    def __getattr__(self, name: str) -> Any:  # open, closed_through, watermark, totals
        return getattr(self.__dict__["set"], name)

    def add(self, source: int, ts: float, contrib: tuple) -> str:
        """Place one valid, non-duplicate event; returns 'on_time', 'late' or 'held'."""
        guard = self.sources.get(source)
        if guard is None:
            guard = self.sources[source] = ClockGuard(self.future_tolerance, self.jump_confirm)
        ws = self.set
        todo = guard.offer(ts, contrib)
        if todo == HELD:
            return "held"
        if todo == JUMP:
            for t, c in guard.take_jump():
                ws.set_clock(source, guard.moved(t))
                ws.place(source, t, c)
            return "on_time"
        if todo > 0:
            ws.count_future(source, guard.take_future())
        ws.set_clock(source, guard.moved(ts))
        return ws.place(source, ts, contrib)

    def advance(self) -> list[WindowAcc]:
        return self.set.advance()

    def flush(self) -> list[WindowAcc]:
        """End of input: held future events count as future, then ``WindowSet.flush``."""
        for source, guard in self.sources.items():
            if guard.pending:
                self.set.count_future(source, guard.take_future())
        return self.set.flush()


def _acc_snapshot(acc: WindowAcc) -> dict:
    return {
        "index": acc.index,
        "pubs": acc.pubs,
        "events": acc.events,
        "rejected": acc.rejected,
        "rejected_by_code": acc.rejected_by_code,
        "duplicates": acc.duplicates,
        "violations": acc.violations,
        "violations_by_type": acc.violations_by_type,
        "future": acc.future,
        "late": acc.late,
        "arrivals": acc.arrivals,
        "buyers": [list(k) for k in acc.buyers],
    }


def _acc_restore(d: dict, width: int) -> WindowAcc:
    acc = WindowAcc(d["index"], width)
    acc.pubs = {k: list(v) for k, v in d["pubs"].items()}
    for name in ("events", "rejected", "duplicates", "violations", "future", "late", "arrivals"):
        setattr(acc, name, d[name])
    acc.rejected_by_code = dict(d["rejected_by_code"])
    acc.violations_by_type = dict(d["violations_by_type"])
    acc.buyers = {tuple(k) for k in d["buyers"]}
    return acc
