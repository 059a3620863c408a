"""The composition root of delivery: configuration in, a running alert service out.

    svc = AlertService(load_alerts_config(path), registry=REGISTRY)
    async with svc:
        svc.accept(alert)            # durable at return: commit the input offset after it
        await svc.run(stop_event)    # flushes due groups, delivers the outbox, until stop

``accept``/``flush`` take the pipeline's time (``now``): the wall clock by default, event
time in a replay. Delivery always runs on the injected wall clock.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from types import TracebackType

from prometheus_client import CollectorRegistry

from alerts.config import AlertsConfig
from alerts.dispatch import Dispatcher
from alerts.metrics import AlertMetrics
from alerts.receivers import Receiver, build_receiver
from alerts.sender import Sender
from alerts.stages import Dedup, Enqueue, Inhibit, Silence, Stage, decide, run_stages
from alerts.store import Store
from monitor.model import Alert


def build_stages(
    cfg: AlertsConfig,
    store: Store,
    receivers: Mapping[str, Receiver],
    known: Callable[[], Iterable[Alert]],
    clock: Callable[[], float],
) -> list[Stage]:
    """The flush pipeline, in order: inhibit → silence → decide → dedup → enqueue."""
    return [
        Inhibit(cfg.inhibit_rules, known),
        Silence(cfg.silences),
        decide,
        Dedup(store),
        Enqueue(store, receivers, clock),
    ]


class AlertService:
    def __init__(
        self,
        cfg: AlertsConfig,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        store: Store | None = None,
        receivers: Mapping[str, Receiver] | None = None,
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.store = store or Store(cfg.outbox)
        self.receivers = dict(receivers or {r.name: build_receiver(r, cfg) for r in cfg.receivers})
        self.registry = registry or CollectorRegistry()
        self.metrics = AlertMetrics(self.registry, self.store, self.receivers)
        stages = build_stages(cfg, self.store, self.receivers, self._known, clock)
        self.dispatcher = Dispatcher(
            cfg.route, self.store, partial(run_stages, stages),
            send_resolved={n: r.send_resolved for n, r in self.receivers.items()},
            inhibit_rules=cfg.inhibit_rules, inhibit_retention=cfg.inhibit_retention,
        )  # fmt: skip
        self.sender = Sender(self.store, self.receivers, cfg.delivery, self.metrics, clock, rng)
        self._wake = asyncio.Event()

    def _known(self) -> Iterable[Alert]:
        return self.dispatcher.known()

    def accept(self, alert: Alert, now: float | None = None) -> bool:
        """Take one alert record (durably); False when it was already known or closed."""
        took = self.dispatcher.accept(alert, self.clock() if now is None else now)
        if took:
            self._wake.set()
        return took

    def flush(self, now: float | None = None, force: bool = False) -> int:
        """Run the flush pipeline on due groups (all with ``force``): queue notifications."""
        flushed = self.dispatcher.flush_due(self.clock() if now is None else now, force)
        if flushed:
            self._wake.set()
        return flushed

    async def tick(self) -> int:
        self.flush()
        return await self.sender.deliver_due()

    async def drain(self, timeout: float | None = None) -> bool:
        t = self.cfg.delivery.drain_timeout if timeout is None else timeout
        return await self.sender.drain(t)

    async def run(self, stop: asyncio.Event, idle: float = 5.0) -> None:
        """Flush and deliver until ``stop`` is set, sleeping until the next timer is due."""
        while not stop.is_set():
            self._wake.clear()
            await self.tick()
            due = [t for t in (self.dispatcher.next_due(), self.sender.next_due()) if t]
            delay = min([idle, *(t - self.clock() for t in due)])
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            try:
                await asyncio.wait(waits, timeout=max(0.0, delay),
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            finally:
                for w in waits:
                    w.cancel()

    async def start(self) -> None:
        await self.sender.start()

    async def close(self) -> None:
        await self.sender.close()
        self.store.close()

    async def __aenter__(self) -> AlertService:
        await self.start()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
