"""Keeping a worker honest about the broker: probes, readiness, log hygiene, restarts.

- ``StatusServer``: ``/healthz``, ``/readyz`` (503) and ``/status`` on the worker's web port
  *before* faust runs (while the broker is unreachable, while topics are prepared, and
  during a restart's back-off). faust's own web server starts only with the worker, and a
  readiness probe that cannot connect tells Kubernetes nothing.
- ``BrokerWatch`` (a faust timer in the running worker): a Metadata round-trip every
  second, run in a thread. From the second failure in a row the worker is not ready
  (``/readyz`` 503, reason ``broker unreachable``); it logs ``broker_unreachable`` with a
  back-off (1 s doubling to 30 s), ``broker_reachable`` when it answers again. aiokafka
  reconnects by itself.
  It also checks an invariant no healthy broker breaks: a partition's log never ends below
  an offset this worker has already processed. If it does, the broker lost data (a
  memory-storage broker restarted, a topic deleted and re-created, an unclean leader
  election): the worker's state and offsets describe a log that no longer exists, so it
  logs ``broker_lost_data`` and asks for a restart with fresh state.
  And a watchdog: aiokafka's consumer can stay stuck after a broker restart, never rejoining
  (aio-libs/aiokafka#1154). A worker that stays not-ready for ``stuck_after_s`` while the
  broker answers (table recovery excepted: it may legitimately take long) logs
  ``worker_stuck`` and asks for a restart that keeps its state.
  A broker unreachable for ``outage_restart_s`` also ends the process in a restart that
  keeps its state (``broker_outage_restart``): the new process waits for the broker with
  the stand-in status server and writes nothing until it has checked the logs. Riding the
  outage out in place, faust's clients would reconnect to a broker that came back empty
  and write records and checkpoints derived from logs it no longer has (and a
  memory-storage Tansu re-creates topics named in a Metadata request, with offsets that
  go wrong: produce then fails with ``UnknownError``).
- ``restart_self``: the supervised restart of ``ordermon run``: back-off (status server up,
  SIGTERM ends it), then ``exec`` of the same command line. A fresh process image: no faust
  or aiokafka state survives, the pid stays (so does the container). The outbox (SQLite)
  is what carries "already delivered" across it.
- ``RepeatFilter``: aiokafka logs every failed reconnect (about 20 lines a second while the
  broker is down); repeats of a message are dropped for 10 s and then counted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog

from streams.broker import bootstrap_of, probe_metadata

log = structlog.get_logger("ordermon.stream")

RESTARTS_ENV = "ORDERMON_RESTARTS"  # restarts so far, carried across exec
RESTART_REASON_ENV = "ORDERMON_RESTART_REASON"
FRESH_SINCE_ENV = "ORDERMON_FRESH_SINCE"  # wall time of the last restart with fresh state
EX_RESTART = 75  # EX_TEMPFAIL: "restart me" to a supervisor that is not ``ordermon run``


class StatusServer:
    """A stand-in for the worker's web pages while faust is not running (stdlib, thread)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.state: dict[str, Any] = {"ready": False, "phase": "starting", "reason": "starting"}
        self._server: ThreadingHTTPServer | None = None

    def update(self, **kw: Any) -> None:
        self.state = {**self.state, **kw}  # replaced, not mutated: handler threads read it

    def start(self) -> StatusServer:
        if self.port <= 0 or self._server is not None:
            return self
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                st = outer.state
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    code, body = 200, {"status": "ok", "phase": st["phase"]}
                elif path == "/readyz":
                    code, body = 503, {"ready": False, "reason": st["reason"]}
                elif path == "/status":
                    code, body = 200, {**st, "ready": False, "pid": os.getpid()}
                else:
                    code, body = 404, {"error": "not found"}
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        try:
            self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        except OSError as exc:  # the port is taken: faust would fail on it too, later
            log.warning("status_server_unavailable", port=self.port, error=str(exc))
            return self
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="ordermon-status",
                         daemon=True).start()  # fmt: skip
        return self

    def stop(self) -> None:
        """Close the port (faust binds it next)."""
        srv, self._server = self._server, None
        if srv is not None:
            srv.shutdown()
            srv.server_close()


class RepeatFilter(logging.Filter):
    """Let a (logger, message template) through at most once per ``every_s``; the next one
    let through says how many were dropped."""

    def __init__(self, every_s: float = 10.0, prefixes: tuple[str, ...] = ("aiokafka",)) -> None:
        super().__init__()
        self.every_s = every_s
        self.prefixes = prefixes
        self.last: dict[tuple[str, str], float] = {}
        self.dropped: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes) or record.levelno >= logging.CRITICAL:
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        if now - self.last.get(key, -1e9) < self.every_s:
            self.dropped[key] = self.dropped.get(key, 0) + 1
            return False
        self.last[key] = now
        n = self.dropped.pop(key, 0)
        if n:
            record.msg = f"{record.msg} [{n} repeats in the last {self.every_s:g}s not logged]"
        if len(self.last) > 1000:  # bounded: templates, not values, are the keys
            self.last.clear()
        return True


def install_repeat_filter(flt: RepeatFilter) -> None:
    """On every root handler (faust installs its handlers when the worker starts)."""
    for h in logging.getLogger().handlers:
        if flt not in h.filters:
            h.addFilter(flt)


class BrokerWatch:
    """Broker reachability and the log-never-shrinks invariant, checked once a second."""

    LOG_MAX_S = 30.0

    def __init__(self, stream_app: Any, on_restart: Callable[[str, bool], None],
                 probe_timeout: float = 1.0, stuck_after_s: float = 60.0,
                 outage_restart_s: float = 0.0) -> None:  # fmt: skip
        self.sa = stream_app
        self.outage_restart_s = outage_restart_s  # 0: ride out outages in place
        self.on_restart = on_restart  # (reason, fresh state?)
        self.stuck_after_s = stuck_after_s
        self.unready_since: float | None = None
        self.addrs = [a.rsplit(":", 1) for a in bootstrap_of(stream_app.s.broker).split(",")]
        self.probe_timeout = probe_timeout
        self.down_since: float | None = None
        self.failures = 0
        self.next_log = 0.0
        self.log_every = 1.0
        self.outages = 0
        self.processed: dict[tuple[str, int], int] = {}  # highest offset processed
        self.lost: str | None = None
        self.filter = RepeatFilter()

    def probe(self) -> str | None:
        """None when a broker answers Metadata; else the error (blocking: run in a thread)."""
        err = "no address"
        for h, p in self.addrs:
            try:
                brokers, _ = probe_metadata(h, int(p), timeout=self.probe_timeout)
                if brokers:
                    return None
                err = "metadata without brokers"
            except (OSError, ValueError) as exc:
                err = f"{type(exc).__name__}: {exc}"
        return err

    async def tick(self) -> None:
        install_repeat_filter(self.filter)
        err = await asyncio.get_running_loop().run_in_executor(None, self.probe)
        was_down = self.down_since is not None
        now = time.monotonic()
        self.observe(err, now)
        if err is not None or self.lost is not None:
            self.unready_since = None  # an outage is not the worker being stuck
            return
        from streams.web import readiness

        self.watchdog(*readiness(self.sa), now)
        self.remember()
        # back from an outage: check every log at once, before the group rejoins and
        # stale state is processed further; otherwise only logs that look short
        suspects = sorted(self.processed) if was_down else self.suspects()
        if suspects:
            lost = await self.confirm(suspects)
            if lost is not None:
                self.declare_lost(*lost)

    def observe(self, err: str | None, now: float) -> None:
        """Track the outage, the readiness reason and the back-off of its log lines."""
        if err is not None:
            if self.down_since is None:
                self.down_since, self.failures, self.next_log, self.log_every = now, 0, now, 1.0
                self.outages += 1
            self.failures += 1
            if self.failures >= 2:  # one slow answer on a loaded machine is not an outage
                self.sa.unready_reason = f"broker unreachable: {err}"
            down_s = now - self.down_since
            if 0 < self.outage_restart_s <= down_s and self.lost is None:
                # the broker may come back empty (a memory-storage broker, a re-created
                # cluster): clients of this process would then write records and
                # checkpoints derived from logs it no longer has before the loss is
                # noticed. A fresh process waits for the broker without writing anything
                self.lost = f"broker unreachable for {down_s:.0f}s"
                self.sa.unready_reason = f"{self.lost}; restarting"
                log.error("broker_outage_restart", down_s=round(down_s, 1), error=err)
                self.on_restart(self.lost, False)
                return
            if now >= self.next_log:
                log.warning("broker_unreachable", broker=self.sa.s.broker, attempt=self.failures,
                            down_s=round(now - self.down_since, 1),
                            next_log_in_s=self.log_every, error=err)  # fmt: skip
                self.next_log = now + self.log_every
                self.log_every = min(self.log_every * 2, self.LOG_MAX_S)
            return
        if self.down_since is not None:
            log.info("broker_reachable", broker=self.sa.s.broker, attempts=self.failures,
                     down_s=round(now - self.down_since, 1))  # fmt: skip
            self.down_since = None
        if self.lost is None:
            self.sa.unready_reason = None

    def watchdog(self, ready: bool, why: str, now: float) -> None:
        """Restart (keeping state) a worker not ready for ``stuck_after_s`` with the
        broker answering; table recovery does not count."""
        if ready or "recovering" in why:
            self.unready_since = None
            return
        if self.unready_since is None:
            self.unready_since = now
        elif now - self.unready_since >= self.stuck_after_s and self.lost is None:
            self.lost = f"not ready for {now - self.unready_since:.0f}s: {why}"
            log.error("worker_stuck", reason=why, seconds=round(now - self.unready_since, 1))
            self.on_restart(f"stuck ({self.lost})", False)

    def remember(self) -> None:
        """The highest offset processed per (topic, partition), kept across revocations."""
        for topic, runner in self.sa.runners.items():
            for p, task in list(runner.tasks.items()):
                off = getattr(task, "offset", -1)
                if off is not None and off > self.processed.get((topic, p), -1):
                    self.processed[(topic, p)] = off

    def suspects(self) -> list[tuple[str, int]]:
        """Assigned partitions whose last fetch reported a log end below what was
        processed (confirmed by ``confirm`` before anything is concluded)."""
        consumer = self.sa.app.consumer
        try:
            assigned = consumer.assignment()
        except Exception:  # consumer not started yet
            return []
        out = []
        for tp in assigned:
            done = self.processed.get((tp.topic, tp.partition))
            if done is None:
                continue
            try:
                hw = consumer.highwater(tp)
            except Exception:
                continue
            if hw is not None and hw < done + 1:
                out.append((tp.topic, tp.partition))
        return out

    async def confirm(self, tps: list[tuple[str, int]]) -> tuple[str, int, int | None] | None:
        """(topic, partition, log end or None if gone) of the first partition whose log
        ends below what was processed, asked afresh: which topics exist (a listing, never
        a lookup by name: Tansu would create the topic), then a fetch per partition."""
        from aiokafka import TopicPartition

        from streams.highwater import fetch_highwaters
        from streams.topics import topic_partitions

        bootstrap = bootstrap_of(self.sa.s.broker)
        try:
            have = await topic_partitions(bootstrap, sorted({t for t, _ in tps}))
            for t, p in tps:
                if p >= have.get(t, 0):
                    return t, p, None
            hws = await fetch_highwaters(bootstrap, [TopicPartition(t, p) for t, p in tps], 5.0)
        except Exception as exc:  # the broker went away again: the next tick retries
            log.warning("broker_check_failed", error=f"{type(exc).__name__}: {exc}")
            return None
        for (t, p), hw in zip(tps, (hws[TopicPartition(t, p)] for t, p in tps), strict=True):
            if hw is not None and hw < self.processed[(t, p)] + 1:
                return t, p, hw
        return None

    def declare_lost(self, topic: str, partition: int, hw: int | None) -> None:
        done = self.processed[(topic, partition)]
        end = "is gone" if hw is None else f"ends at {hw}"
        self.lost = f"{topic}:{partition} {end}, processed through {done}"
        self.sa.unready_reason = f"broker lost data ({self.lost}); restarting"
        log.error("broker_lost_data", topic=topic, partition=partition, high_watermark=hw,
                  processed_through=done)  # fmt: skip
        self.on_restart(self.lost, True)


def restart_delay(restarts: int, cap: float) -> float:
    """0.5 s, 1 s, 2 s, ... up to ``cap``: the n-th restart in a row waits this long."""
    return min(cap, 0.5 * 2 ** max(0, restarts))


def set_aside(datadir: str) -> str | None:
    """Move a worker's local table data out of the way (kept for inspection): it
    describes logs the broker no longer has."""
    if not os.path.exists(datadir):
        return None
    dest = f"{datadir.rstrip('/')}.lost-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    shutil.move(datadir, dest)
    return dest


def restart_self(reason: str, delay: float, stop: threading.Event,
                 status: StatusServer | None = None) -> bool:  # fmt: skip
    """Wait ``delay`` (False if ``stop`` is set meanwhile), then exec this same command
    line with the restart count and reason in the environment. Does not return on exec."""
    restarts = int(os.environ.get(RESTARTS_ENV, "0") or 0) + 1
    log.warning("worker_restarting", reason=reason, restart=restarts, in_s=round(delay, 1))
    if status is not None:
        status.update(phase="restarting", reason=f"restarting: {reason}", restarts=restarts)
    if stop.wait(delay):
        return False
    if status is not None:
        status.stop()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    env = os.environ | {RESTARTS_ENV: str(restarts), RESTART_REASON_ENV: reason[:500]}
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
    return True  # pragma: no cover - exec does not return
