"""``ordermon run``: connect (with back-off), create topics, run one worker until a signal.

Shutdown on SIGTERM or SIGINT: every partition's buffered outputs are sent and its state
checkpointed, the producer is flushed and the offsets committed, then faust stops the
worker; the process exits 0. Broker unreachable at start: retries with exponential
back-off (capped at ``connect_retry_max_s``), each attempt logged, until the broker answers
or a signal stops the wait (exit 0 then too; nothing was started).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
from typing import IO, Any

import structlog

from monitor.pipeline import MonitorParams
from streams.broker import BrokerUnavailable, bootstrap_of, wait_for_broker
from streams.settings import StreamSettings
from streams.topics import TopicError, ensure_topics, topic_partitions

log = structlog.get_logger("ordermon.stream")


def configure_logging(level: str = "info", json: bool | None = None) -> None:
    """structlog to stderr (stdout carries alerts): console renderer on a terminal, JSON
    otherwise."""
    json = not sys.stderr.isatty() if json is None else json
    lvl = {"warn": "warning"}.get(level, level).upper()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, lvl, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def connect(broker: str, retry_max_s: float, stop: threading.Event) -> bool:
    """Wait for the broker with logged retries and exponential back-off. False if ``stop``
    was set before it answered."""
    delay, attempt = 0.5, 0
    while not stop.is_set():
        attempt += 1
        try:
            wait_for_broker(broker, timeout=min(5.0, max(1.0, delay)))
            if attempt > 1:
                log.info("broker_reachable", broker=broker, attempts=attempt)
            return True
        except BrokerUnavailable as exc:
            log.warning("broker_unreachable", broker=broker, attempt=attempt,
                        retry_in_s=round(delay, 1), error=str(exc))  # fmt: skip
        if stop.wait(delay):
            break
        delay = min(delay * 2, retry_max_s)
    return False


async def prepare_topics(s: StreamSettings) -> int:
    """Create what is missing; return the input topic's partition count (P). The dead
    letters and facts follow P; partials and alerts have one partition."""
    bootstrap = bootstrap_of(s.broker)
    have = await topic_partitions(bootstrap, [s.input_topic])
    P = have.get(s.input_topic, s.partitions)
    if s.input_topic in have and s.partitions != P:
        log.info("input_partitions_from_broker", topic=s.input_topic, partitions=P)
    await ensure_topics(bootstrap, {s.input_topic: P, s.dlq_topic: P, s.facts_topic: P,
                                    s.partials_topic: 1, s.alerts_topic: 1})  # fmt: skip
    return P


def _worker_class() -> Any:
    import faust

    class OrdermonWorker(faust.Worker):  # type: ignore[misc]
        """faust's worker, with a drain before the stop on SIGTERM/SIGINT."""

        def __init__(self, stream_app: Any, **kw: Any) -> None:
            super().__init__(stream_app.app, **kw)
            self.stream_app = stream_app

        async def _stop_on_signal(self, sig: signal.Signals) -> None:
            log.info("stopping", signal=sig.name)
            try:
                await asyncio.wait_for(self.stream_app.drain(), 20)
            except Exception as exc:  # stop anyway: a restart replays from the last checkpoint
                log.error("drain_failed", error=f"{type(exc).__name__}: {exc}")
            await self.stop()

    return OrdermonWorker


def run_service(
    s: StreamSettings,
    params: MonitorParams,
    out: IO[str] | None = None,
    config_path: str | None = None,
) -> int:
    configure_logging("info" if s.log_level in ("info", "debug") else "warning")
    stop = threading.Event()
    prev = {sig: signal.signal(sig, lambda *_: stop.set())
            for sig in (signal.SIGTERM, signal.SIGINT)}  # fmt: skip
    try:
        if not connect(bootstrap_of(s.broker), s.connect_retry_max_s, stop):
            log.info("stopped_before_connecting")
            return 0
        try:
            P = asyncio.run(prepare_topics(s))
        except (TopicError, ValueError) as exc:
            log.error("topics_unusable", error=str(exc))
            return 1
    finally:
        for sig, handler in prev.items():
            signal.signal(sig, handler)
    if stop.is_set():
        return 0
    from alerts.config import load_alerts_config
    from streams.app import StreamApp

    alerts_cfg = load_alerts_config(config_path)  # errors here are errors before starting
    notify = None
    if alerts_cfg.receivers:
        from alerts.service import AlertService

        notify = AlertService(alerts_cfg)
        log.info("alert_delivery", receivers=[r.name for r in alerts_cfg.receivers],
                 outbox=alerts_cfg.outbox)  # fmt: skip
    sa = StreamApp(s, params, P, out=out, notify=notify)
    log.info("worker_starting", app_id=s.app_id, broker=s.broker, partitions=P, store=s.store,
             web=f"http://{s.web_host}:{s.web_port}" if s.web_port else None)  # fmt: skip
    asyncio.set_event_loop(asyncio.new_event_loop())
    worker = _worker_class()(sa, loglevel=s.log_level, redirect_stdouts=False, quiet=True)
    worker.spinner = None  # stdout carries alerts only (the spinner writes cursor codes)
    t0 = time.monotonic()
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        log.info("worker_stopped", exit_code=code, seconds=round(time.monotonic() - t0, 1))
        return code
    return 0
