"""``ordermon run``: connect (with back-off), create topics, run one worker until a signal.

Shutdown on SIGTERM or SIGINT: every partition's buffered outputs are sent and its state
checkpointed, the producer is flushed and the offsets committed, then faust stops the
worker; the process exits 0. Broker unreachable at start: retries with exponential
back-off (capped at ``connect_retry_max_s``), each attempt logged, until the broker answers
or a signal stops the wait (exit 0 then too; nothing was started). Meanwhile the web port
answers ``/readyz`` 503 (``streams.supervise.StatusServer``).

While running, ``streams.supervise.BrokerWatch`` turns an unreachable broker into
not-ready and rate-limited ``broker_unreachable`` lines (aiokafka reconnects by itself),
and a broker that lost data (a log now shorter than what was processed) into a supervised
restart: the worker stops, its local table data is set aside, and ``ordermon run``
re-executes itself after a back-off (0.5 s doubling to ``connect_retry_max_s``; reset
after a minute of running). Without ``supervise`` the exit code 75 asks the caller to.
A worker stuck not-ready with the broker up (aiokafka#1154) is restarted the same way,
keeping its table data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from typing import IO, Any

import structlog
from prometheus_client import CollectorRegistry

from monitor.pipeline import MonitorParams
from streams.broker import BrokerUnavailable, bootstrap_of, wait_for_broker
from streams.logs import REDACTOR, alert_secrets, install_stdlib_redaction, processors
from streams.settings import StreamSettings
from streams.supervise import (
    EX_RESTART,
    FRESH_SINCE_ENV,
    RESTART_REASON_ENV,
    RESTARTS_ENV,
    BrokerWatch,
    StatusServer,
    restart_delay,
    restart_self,
    set_aside,
)
from streams.topics import TopicError, ensure_topics, topic_partitions

log = structlog.get_logger("ordermon.stream")


def configure_logging(level: str = "info", json: bool | None = None) -> None:
    """structlog to stderr (stdout carries alerts): console renderer on a terminal, JSON
    otherwise; secrets masked in every line (``streams.logs``)."""
    json = not sys.stderr.isatty() if json is None else json
    lvl = {"warn": "warning"}.get(level, level).upper()
    install_stdlib_redaction()
    structlog.configure(
        processors=processors(json),
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, lvl, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def connect(broker: str, retry_max_s: float, stop: threading.Event,
            status: StatusServer | None = None) -> bool:  # fmt: skip
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
            if status is not None:
                status.update(phase="connecting", reason=f"broker unreachable: {exc}",
                              attempts=attempt, retry_in_s=round(delay, 1))  # fmt: skip
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
            self.restart_reason: str | None = None
            self.restart_fresh = False

        def request_restart(self, reason: str, fresh: bool) -> None:
            """Stop without a drain (state that describes lost logs is not worth a
            checkpoint; a stuck consumer cannot commit); ``run_service`` then restarts the
            worker, with its local table data set aside if ``fresh``."""
            if self.restart_reason is None:
                self.restart_reason, self.restart_fresh = reason, fresh
                asyncio.ensure_future(self.stop())

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
    supervise: bool = False,
) -> int:
    """One worker until a signal (0 on a clean stop). A worker ``BrokerWatch`` stops for a
    restart re-executes this process when ``supervise`` (``ordermon run``), else returns
    ``EX_RESTART`` for the caller to restart it."""
    configure_logging("info" if s.log_level in ("info", "debug") else "warning",
                      {"json": True, "console": False}.get(s.log_format))  # fmt: skip
    structlog.contextvars.bind_contextvars(app_id=s.app_id, pid=os.getpid())
    if os.environ.get(RESTARTS_ENV):
        log.warning("worker_restarted", restart=int(os.environ[RESTARTS_ENV]),
                    reason=os.environ.get(RESTART_REASON_ENV, ""))  # fmt: skip
    status = StatusServer(s.web_host, s.web_port).start()  # /readyz 503 until faust's web
    stop = threading.Event()
    prev = {sig: signal.signal(sig, lambda *_: stop.set())
            for sig in (signal.SIGTERM, signal.SIGINT)}  # fmt: skip
    try:
        if not connect(bootstrap_of(s.broker), s.connect_retry_max_s, stop, status):
            log.info("stopped_before_connecting")
            return 0
        status.update(phase="preparing", reason="creating topics")
        try:
            P = asyncio.run(prepare_topics(s))
        except (TopicError, ValueError) as exc:
            log.error("topics_unusable", error=str(exc))
            return 1
    finally:
        status.stop()
        for sig, handler in prev.items():
            signal.signal(sig, handler)
    if stop.is_set():
        return 0
    from alerts.config import load_alerts_config
    from streams.app import StreamApp

    alerts_cfg = load_alerts_config(config_path)  # errors here are errors before starting
    for secret in alert_secrets(alerts_cfg):
        REDACTOR.add(secret)
    registry = CollectorRegistry()  # /metrics: the worker's and the delivery metrics
    notify = None
    if alerts_cfg.receivers:
        from alerts.service import AlertService

        notify = AlertService(alerts_cfg, registry=registry)
        log.info("alert_delivery", receivers=[r.name for r in alerts_cfg.receivers],
                 outbox=alerts_cfg.outbox)  # fmt: skip
    sa = StreamApp(s, params, P, out=out, notify=notify, registry=registry)
    log.info("worker_starting", app_id=s.app_id, broker=s.broker, partitions=P, store=s.store,
             web=f"http://{s.web_host}:{s.web_port}" if s.web_port else None)  # fmt: skip
    asyncio.set_event_loop(asyncio.new_event_loop())
    worker = _worker_class()(sa, loglevel=s.log_level, redirect_stdouts=False, quiet=True)
    worker.spinner = None  # stdout carries alerts only (the spinner writes cursor codes)
    sa.unready_reason = None  # BrokerWatch's; /readyz answers 503 with it
    sa.request_restart = worker.request_restart  # a failed send restarts the worker
    stuck_s = max(60.0, 6 * s.broker_session_timeout)
    watch = BrokerWatch(sa, worker.request_restart, stuck_after_s=stuck_s,
                        outage_restart_s=s.outage_restart_s)  # fmt: skip
    sa.app.timer(1.0, name="ordermon-broker-watch")(watch.tick)
    t0 = time.monotonic()
    code = 0
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    ran_s = time.monotonic() - t0
    log.info("worker_stopped", exit_code=code, seconds=round(ran_s, 1),
             restart=worker.restart_reason)  # fmt: skip
    if worker.restart_reason is None:
        return code
    return _restart(s, worker.restart_reason, worker.restart_fresh, ran_s, notify, supervise)


def _restart(s: StreamSettings, reason: str, fresh: bool, ran_s: float, notify: Any,
             supervise: bool) -> int:  # fmt: skip
    """After ``BrokerWatch`` stopped the worker: close the outbox, set the local table data
    aside if ``fresh`` (it describes logs the broker lost), wait the back-off, exec."""
    if notify is not None:
        with contextlib.suppress(Exception):
            notify.store.close()
    if fresh:  # checkpoints written until now describe logs the broker lost
        os.environ[FRESH_SINCE_ENV] = repr(time.time())
    if fresh and s.store.startswith("rocksdb"):
        moved = set_aside(s.datadir)
        if moved:
            log.warning("table_data_set_aside", datadir=s.datadir, moved_to=moved)
    if not supervise:
        return EX_RESTART
    restarts = 0 if ran_s > 60 else int(os.environ.get(RESTARTS_ENV, "0") or 0)
    os.environ[RESTARTS_ENV] = str(restarts)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    status = StatusServer(s.web_host, s.web_port).start()
    try:
        restart_self(reason, restart_delay(restarts, s.connect_retry_max_s), stop, status)
    finally:
        status.stop()
    log.info("stopped_before_restart")
    return 0
