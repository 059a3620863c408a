"""Event-time windows: a stream clock per source, a watermark, tumbling window accumulators.

- Each source (a Kafka partition; replay has one) keeps a clock: the largest event time it
  accepted. An event stamped more than ``future_tolerance_s`` past its source clock is
  *future* (a producer writing local time as UTC, say) and does not move the clock: it is
  held, and counted as future as soon as an on-time event follows. Only when
  ``jump_confirm`` such events arrive in a row does the clock accept the jump (a real gap in
  traffic) and the held events count as on time. A handful of skewed events therefore
  never closes the open windows.
- The watermark is the minimum of ``clock - lateness_s`` over active sources; a source whose
  clock trails the fastest by more than ``idle_after_s`` is idle and does not hold time back.
- Windows are tumbling, ``[k*width, (k+1)*width)``; a window closes when the watermark
  passes its end. Events for a closed window are *late*: counted, not added.
- Rejections, duplicates, lifecycle violations, late and future events have no trustworthy
  event time: they are counted in the window that holds their source's clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Per-publisher count vector layout. The invalidation channels (reasons, fast, total) count
# distinct *buyer* orders (``parent_order_id``, else ``order_id``) per reason: a buyer who
# cancels a four-item cart is one decision, not four, and counting it four times makes
# ordinary traffic look bursty. ``RAW`` keeps the sub-order count.
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
        tot = [0] * SLOTS
        for v in self.pubs.values():
            for i in range(SLOTS):
                tot[i] += v[i]
        return tot


@dataclass(slots=True)
class _SourceClock:
    clock: float | None = None
    pending: list = field(default_factory=list)
    acc_index: int = -1  # cache: the open window holding this source's clock
    acc: WindowAcc | None = None


class Windows:
    """Clocks, watermark and open windows for all sources."""

    def __init__(
        self,
        width_s: int = 300,
        lateness_s: int = 120,
        future_tolerance_s: int = 900,
        jump_confirm: int = 20,
        idle_after_s: int = 900,
    ) -> None:
        self.width = width_s
        self.lateness = lateness_s
        self.future_tolerance = future_tolerance_s
        self.jump_confirm = jump_confirm
        self.idle_after = idle_after_s
        self.sources: dict[int, _SourceClock] = {}
        self.open: dict[int, WindowAcc] = {}
        self.closed_through = -1  # every window index <= this is closed
        self.watermark: float | None = None
        self.late_total = 0
        self.future_total = 0

    # -- clocks ---------------------------------------------------------------------
    def _source(self, source: int) -> _SourceClock:
        src = self.sources.get(source)
        if src is None:
            src = self.sources[source] = _SourceClock()
        return src

    def stream_window(self, source: int) -> WindowAcc | None:
        """The open window holding the source's clock (for events without a usable time)."""
        src = self.sources.get(source)
        if src is None or src.clock is None:
            return None
        index = int(src.clock // self.width)
        if index <= self.closed_through:
            index = self.closed_through + 1
        if index != src.acc_index:  # closed windows never reopen, so the cache stays valid
            src.acc_index = index
            src.acc = self._acc(index)
        return src.acc

    def _acc(self, index: int) -> WindowAcc:
        acc = self.open.get(index)
        if acc is None:
            acc = self.open[index] = WindowAcc(index, self.width)
        return acc

    def add(self, source: int, ts: float, contrib: tuple) -> str:
        """Place one valid, non-duplicate event; returns 'on_time', 'late', 'future' or 'held'.

        ``contrib`` is (buyer order id, publisher, new_order, reason slot or -1, fast).
        """
        src = self._source(source)
        if src.clock is None:
            src.clock = ts
        elif ts > src.clock + self.future_tolerance:
            src.pending.append((ts, contrib))
            if len(src.pending) < self.jump_confirm:
                return "held"
            # a run of jump_confirm events all far ahead: the stream really moved on
            held, src.pending = src.pending, []
            src.clock = min(t for t, _ in held)
            for t, c in held:
                self._place(src, t, c)
            return "on_time"
        if src.pending:
            self._flush_future(source, src)
        return self._place(src, ts, contrib)

    def _flush_future(self, source: int, src: _SourceClock) -> None:
        n = len(src.pending)
        src.pending = []
        acc = self.stream_window(source)
        if acc is not None:
            acc.future += n
        self.future_total += n

    def _place(self, src: _SourceClock, ts: float, contrib: tuple) -> str:
        if ts > src.clock:  # type: ignore[operator]
            src.clock = ts
        index = int(ts // self.width)
        if index <= self.closed_through:
            self.late_total += 1
            acc = self._acc(max(int(src.clock // self.width), self.closed_through + 1))  # type: ignore[operator]
            acc.late += 1
            return "late"
        acc = self._acc(index)
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
        clocks = [s.clock for s in self.sources.values() if s.clock is not None]
        if not clocks:
            return []
        newest = max(clocks)
        active = [c for c in clocks if c >= newest - self.idle_after]
        wm = min(active) - self.lateness
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
        indices = range(first, last + 1)
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

        Held future events count as future. The window holding the newest event is still
        being filled when the input ends, so it is dropped rather than judged on a part of
        its traffic (a replay must not end with a false volume drop).
        """
        for source, src in self.sources.items():
            if src.pending:
                self._flush_future(source, src)
        clocks = [s.clock for s in self.sources.values() if s.clock is not None]
        if not clocks or not self.open:
            return []
        last_complete = int(max(clocks) // self.width) - 1
        closed = self._close_through(last_complete)
        self.open.clear()
        return closed


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


def windows_snapshot(w: Windows) -> dict:
    return {
        "sources": {
            str(k): [s.clock, [[t, list(c)] for t, c in s.pending]] for k, s in w.sources.items()
        },
        "open": [_acc_snapshot(a) for a in w.open.values()],
        "closed_through": w.closed_through,
        "watermark": w.watermark,
        "late_total": w.late_total,
        "future_total": w.future_total,
    }


def windows_restore(w: Windows, d: dict) -> None:
    w.sources = {
        int(k): _SourceClock(clock, [(t, tuple(c)) for t, c in pending])
        for k, (clock, pending) in d["sources"].items()
    }
    w.open = {a["index"]: _acc_restore(a, w.width) for a in d["open"]}
    w.closed_through = d["closed_through"]
    w.watermark = d["watermark"]
    w.late_total = d["late_total"]
    w.future_total = d["future_total"]
