"""Acknowledge input only once everything sent before it is on the broker.

faust's ``send_soon`` returns at once; the record is produced later, and a failed send is
only logged (``_on_published``). faust's commit flushes the producer but does not look at
the outcome: a fact, partial, alert or dead letter whose send failed is lost once the
input offset behind it is committed. The same holds for the checkpoint written to a
table's changelog.

``SendGate`` closes that gap. Every send of the worker is ``track``-ed. ``after(fn)`` runs
``fn`` once every send tracked *before* the call has succeeded (at once if none is
pending), in call order. A ``PartitionRunner`` checkpoint is two such steps: after the
partition's outputs are on the broker, write its snapshot (whose own changelog records
are tracked); after that, acknowledge the input messages it covers. So a committed
offset always lies behind durable outputs and a durable snapshot.

The first failed send stops the gate for good: nothing is acknowledged or written any
more, and ``on_failure`` is called once (the worker restarts and replays from the last
committed offset; downstream stages skip what they already applied, by sequence number).
"""

from __future__ import annotations

import asyncio
import heapq
from collections import deque
from collections.abc import Callable
from typing import Any


class SendGate:
    """Callbacks released in order once the sends tracked before them have succeeded."""

    def __init__(self, on_failure: Callable[[str, BaseException], None] | None = None) -> None:
        self.on_failure = on_failure
        self.issued = 0  # sends tracked so far; a send's number is its rank
        self.open: set[int] = set()  # numbers of sends not completed yet
        self._heap: list[int] = []  # the same numbers, for the lowest (lazy deletion)
        self.waiting: deque[tuple[int, Callable[[], None]]] = deque()
        self.failed: str | None = None
        self.completed = 0
        self.on_broker: dict[str, int] = {}  # completed sends by what was sent
        self._releasing = False
        self._settled = asyncio.Event()
        self._settled.set()

    def track(self, fut: Any, what: str) -> Any:
        """Follow one send (an ``asyncio.Future`` that resolves when the broker has the
        record, like faust's ``FutureMessage``); returns ``fut``."""
        self.issued += 1
        n = self.issued
        self.open.add(n)
        heapq.heappush(self._heap, n)
        fut.add_done_callback(lambda f: self._done(n, f, what))
        return fut

    def after(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once every send tracked so far has succeeded; never after a failure."""
        if self.failed is not None:
            return
        self.waiting.append((self.issued, fn))
        self._settled.clear()
        self._release()

    def pending(self) -> int:
        """Callbacks waiting for sends."""
        return len(self.waiting)

    async def settled(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until no callback waits; False on timeout/failure."""
        try:
            await asyncio.wait_for(self._settled.wait(), timeout)
        except TimeoutError:
            return False
        return self.failed is None

    def _lowest_open(self) -> int | None:
        heap, open_ = self._heap, self.open
        while heap and heap[0] not in open_:
            heapq.heappop(heap)
        return heap[0] if heap else None

    def _done(self, n: int, fut: Any, what: str) -> None:
        self.open.discard(n)
        exc: BaseException | None
        exc = asyncio.CancelledError("send cancelled") if fut.cancelled() else fut.exception()
        if exc is None:
            self.completed += 1
            self.on_broker[what] = self.on_broker.get(what, 0) + 1
            self._release()
            return
        if self.failed is None:
            self.failed = f"{what}: {type(exc).__name__}: {exc}"
            self.waiting.clear()
            self._settled.set()  # nothing will be released: waiters must not hang
            if self.on_failure is not None:
                self.on_failure(what, exc)

    def _release(self) -> None:
        if self._releasing:  # a callback that tracks sends or adds callbacks: the loop
            return  # below picks them up
        self._lowest_open()  # prunes completed sends off the heap even with nothing waiting
        self._releasing = True
        try:
            while self.waiting and self.failed is None:
                low = self._lowest_open()
                mark, fn = self.waiting[0]
                if low is not None and low <= mark:
                    break
                self.waiting.popleft()
                fn()
        finally:
            self._releasing = False
        if not self.waiting:
            self._settled.set()
