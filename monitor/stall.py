"""``stream_stall``: no events for longer than the traffic makes plausible.

Live only: it reads arrival times on the wall clock, which a replay does not have. The
clock is data here (``now`` is passed in), so the detector stays pure and testable.

Plausible silence is ``max(min_s, factor x median inter-arrival gap of the last hour)``:
a feed with an event every 50 ms is stalled after ``min_s`` (default 5 min); a feed with
an event every minute only after 10 minutes of silence. An alert fires once when the
silence passes that bound and resolves when events arrive again.

Examples
--------
>>> s = StallDetector(min_s=300.0, factor=10.0)
>>> for t in range(0, 600, 2):
...     s.arrival(float(t))
>>> s.check(700.0) is None  # 102 s of silence: plausible
True
>>> s.check(950.0).status
'firing'
>>> s.arrival(951.0)
>>> s.check(951.5).status
'resolved'
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StallChange:
    status: str  # "firing" or "resolved"
    since: float  # wall time of the last event before the silence
    silent_s: float  # silence so far (firing) or in total (resolved)
    bound_s: float  # the silence that was plausible
    median_gap_s: float | None


class StallDetector:
    def __init__(self, min_s: float = 300.0, factor: float = 10.0, window_s: float = 3600.0,
                 max_gaps: int = 2048) -> None:  # fmt: skip
        self.min_s = min_s
        self.factor = factor
        self.window_s = window_s
        self.gaps: deque[tuple[float, float]] = deque(maxlen=max_gaps)  # (at, gap)
        self.last: float | None = None
        self.firing_since: float | None = None
        self.bound = min_s

    def arrival(self, now: float) -> None:
        last = self.last
        if last is not None and now > last:
            self.gaps.append((now, now - last))
        self.last = now if last is None or now > last else last

    def median_gap(self, now: float) -> float | None:
        horizon = now - self.window_s
        while self.gaps and self.gaps[0][0] < horizon:
            self.gaps.popleft()
        if not self.gaps:
            return None
        ordered = sorted(g for _, g in self.gaps)
        return ordered[len(ordered) // 2]

    def check(self, now: float) -> StallChange | None:
        """A change of state at ``now``, if any."""
        if self.last is None:
            return None
        silent = now - self.last
        if self.firing_since is not None:
            if self.last > self.firing_since:  # events again
                since, self.firing_since = self.firing_since, None
                return StallChange("resolved", since, self.last - since, self.bound, None)
            return None
        med = self.median_gap(self.last)
        self.bound = max(self.min_s, self.factor * med) if med is not None else self.min_s
        if silent > self.bound:
            self.firing_since = self.last
            return StallChange("firing", self.last, silent, self.bound, med)
        return None
