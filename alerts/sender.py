"""Deliver the outbox: per receiver in order, with timeouts, back-off and dead letters.

Each receiver's pending deliveries go out oldest first; a failed one holds the ones behind
it until its retry (order is kept, and a 429's ``Retry-After`` applies to the receiver).
Retryable failures back off exponentially (``backoff_initial`` doubling up to
``backoff_max``, scaled by a random factor in ``[1 - jitter, 1]``), never sooner than
``Retry-After``; one whose next try would come later than ``max_age`` after it was queued
is dead-lettered. A refused one (4xx) is kept as rejected with the response. Delivered
ones leave the outbox: the record of that is the acknowledgement.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping

import aiohttp
import structlog

from alerts.config import DeliveryConfig
from alerts.metrics import AlertMetrics
from alerts.notice import Delivery
from alerts.receivers import FailReason, Http, Receiver, Result
from alerts.store import OutboxRow, Store

log = structlog.get_logger("ordermon.alerts")


class Sender:
    def __init__(
        self,
        store: Store,
        receivers: Mapping[str, Receiver],
        delivery: DeliveryConfig,
        metrics: AlertMetrics,
        clock: Callable[[], float],
        rng: random.Random | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.store = store
        self.receivers = receivers
        self.cfg = delivery
        self.metrics = metrics
        self.clock = clock
        self.rng = rng or random.Random()
        self.timer = timer
        self.session: aiohttp.ClientSession | None = None
        self.outcomes: Counter[tuple[str, str]] = Counter()  # (receiver, outcome) this run

    async def start(self) -> None:
        if self.session is None:
            self.session = aiohttp.ClientSession()

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    def backoff(self, failures: int) -> float:
        base = min(self.cfg.backoff_max, self.cfg.backoff_initial * 2 ** (failures - 1))
        return base * (1.0 - self.cfg.jitter * self.rng.random())

    async def deliver_due(self) -> int:
        """Attempt every delivery that is due now; the number of attempts made."""
        await self.start()
        queues: dict[str, list[OutboxRow]] = defaultdict(list)
        for row in self.store.pending():
            queues[row.receiver].append(row)
        counts = await asyncio.gather(*(self._receiver(rows) for rows in queues.values()))
        return sum(counts)

    def next_due(self) -> float | None:
        heads: dict[str, float] = {}
        for row in self.store.pending():
            heads.setdefault(row.receiver, row.next_at)
        return min(heads.values(), default=None)

    async def drain(
        self, timeout: float, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    ) -> bool:
        """Deliver until the outbox is empty (True) or ``timeout`` seconds have passed."""
        deadline = self.clock() + timeout
        while True:
            await self.deliver_due()
            nxt = self.next_due()
            if nxt is None:
                return True
            if nxt > deadline:
                return False
            await sleep(max(0.0, nxt - self.clock()))

    async def _receiver(self, rows: list[OutboxRow]) -> int:
        attempts = 0
        for row in rows:
            if row.next_at > self.clock():
                break
            rcv = self.receivers.get(row.receiver)
            if rcv is None:
                log.warning("receiver_not_configured", receiver=row.receiver, pending=len(rows))
                break
            attempts += 1
            if not await self._attempt(rcv, row):
                break
        return attempts

    async def _attempt(self, rcv: Receiver, row: OutboxRow) -> bool:
        """One request; True when the receiver's queue may go on to the next delivery."""
        assert self.session is not None
        http = Http(self.session, self.cfg.timeout)
        d = Delivery(row.receiver, row.key, row.items, row.body)
        t0 = self.timer()
        try:
            result = await rcv.send(d, http, self.clock())
        except Exception as exc:  # a bug in a receiver must not stop delivery to others
            result = Result(False, False, FailReason.OTHER, detail=type(exc).__name__)
            log.exception("receiver_failed", receiver=row.receiver)
        self.metrics.latency.labels(row.receiver).observe(self.timer() - t0)
        now = self.clock()
        blog = log.bind(receiver=row.receiver, idempotency_key=row.key, attempt=row.attempts + 1)
        if result.ok:
            self.store.ack(row, now)
            self._outcome(row.receiver, "delivered")
            blog.info("notification_delivered", status=result.status, items=len(row.items),
                      queued_s=round(now - row.created_at, 3))  # fmt: skip
            return True
        reason = result.reason or FailReason.OTHER
        self.metrics.failed.labels(row.receiver, reason.value).inc()
        error = f"{reason.value} {result.status or ''} {result.detail}".strip()
        if not result.retryable:
            self.store.give_up(row, "rejected", error)
            self._outcome(row.receiver, "rejected")
            blog.error("notification_rejected", reason=reason.value, status=result.status,
                       response=result.detail)  # fmt: skip
            return True
        delay = self.backoff(row.attempts + 1)
        if result.retry_after is not None:
            delay = max(delay, result.retry_after)
        if now + delay - row.created_at > self.cfg.max_age:
            self.store.give_up(row, "dead", error)
            self.metrics.failed.labels(row.receiver, FailReason.MAX_AGE.value).inc()
            self._outcome(row.receiver, "dead_lettered")
            blog.error("notification_dead_lettered", reason=reason.value, status=result.status,
                       age_s=round(now - row.created_at, 3), response=result.detail)  # fmt: skip
            return True
        self.store.retry_later(row, now + delay, error)
        blog.warning("notification_retry_scheduled", reason=reason.value, status=result.status,
                     retry_in_s=round(delay, 3), retry_after=result.retry_after)  # fmt: skip
        return False

    def _outcome(self, receiver: str, outcome: str) -> None:
        self.metrics.notifications.labels(receiver, outcome).inc()
        self.outcomes[(receiver, outcome)] += 1
