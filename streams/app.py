"""The faust application: topics, checkpoint tables, thin agents, timers, status pages.

Topology (P = input partitions; the internal topics are created with the same count)::

    orders (P, key order_id) --ingest--> <app>.facts (P, by publisher) --windowing-->
    <app>.partials (1) --detection--> ordermon.alerts (1, key alert_id) --delivery--> console
                     \\--> orders.dlq (P): rejected bytes + error headers

Every agent is the same loop: take a message, hand it to the partition's task
(``streams.tasks``), send what the task returns, let the ``PartitionRunner`` checkpoint
and acknowledge. No detection logic lives here.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from typing import IO, Any

import msgspec
import structlog

from monitor.model import Alert, Rejection
from monitor.pipeline import MonitorParams, partial_to_wire
from monitor.render import alert_line
from monitor.replay import encode_alert
from monitor.stall import StallDetector
from streams.broker import bootstrap_of
from streams.checkpoint import CheckpointStore, table_options
from streams.live import LiveSignals
from streams.runners import PartitionRunner
from streams.sendgate import SendGate
from streams.settings import StreamSettings
from streams.supervise import FRESH_SINCE_ENV
from streams.tasks import IDLE, DetectTask, IngestTask, WindowTask

log = structlog.get_logger("ordermon.stream")
_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder()
QUIET_CHECKPOINT_S = 1.0  # a partition this quiet is checkpointed (and acknowledged)
DELIVERED_KEEP = 10_000  # (alert_id, status) keys remembered for console de-duplication
REVOKE_SETTLE_S = 5.0  # revocation waits this long for pending checkpoints to complete
DRAIN_SETTLE_S = 15.0  # shutdown waits this long for them


class StreamApp:
    """Composition root of one worker: builds the faust app from settings."""

    def __init__(
        self,
        settings: StreamSettings,
        params: MonitorParams,
        partitions: int,
        out: IO[str] | None = None,
        on_alert: Callable[[Alert], None] | None = None,
        notify: Any = None,
        registry: Any = None,
    ) -> None:
        import faust
        from prometheus_client import CollectorRegistry

        from streams.metrics import StreamMetrics

        s = self.s = settings
        self.params = params
        self.P = P = partitions
        self.out = out or sys.stdout
        self.on_alert = on_alert
        # alerts.service.AlertService when [alerts] receivers are configured: every alert
        # is handed to its durable outbox; its sender runs as a task of this worker
        self.notify = notify
        self.color = s.color or bool(getattr(self.out, "isatty", lambda: False)())
        self.app = app = faust.App(
            s.app_id,
            broker=";".join(f"kafka://{h}" for h in bootstrap_of(s.broker).split(",")),
            store=s.store,
            datadir=s.datadir,
            topic_partitions=P,
            broker_session_timeout=s.broker_session_timeout,
            broker_heartbeat_interval=s.broker_heartbeat_interval,
            broker_rebalance_timeout=s.broker_rebalance_timeout,
            broker_commit_interval=1.0,
            recovery_consistency_check=not s.embedded,
            consumer_auto_offset_reset="earliest",
            stream_wait_empty=False,  # acks are ours: unacknowledged messages are expected
            table_standby_replicas=0,
            producer_linger_ms=10,
            producer_max_batch_size=256 * 1024,
            web_enabled=s.web_port > 0,
            web_port=s.web_port or 6066,
            web_bind=s.web_host,
            web_host=s.web_host,
            autodiscover=False,
        )

        def raw_topic(name: str, n: int) -> Any:
            return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw",
                             value_serializer="raw", partitions=n)  # fmt: skip

        self.t_orders = raw_topic(s.input_topic, P)
        self.t_dlq = raw_topic(s.dlq_topic, P)
        self.t_facts = raw_topic(s.facts_topic, P)
        self.t_partials = raw_topic(s.partials_topic, 1)
        self.t_alerts = raw_topic(s.alerts_topic, 1)

        # every send is tracked: input is acknowledged only behind outputs on the broker
        self.gate = SendGate(self._send_failed)
        # set by streams.service to the worker's restart; without it a failed send crashes
        self.request_restart: Callable[[str, bool], None] | None = None

        def table(name: str, n: int) -> CheckpointStore:
            # serializers follow the types: str keys as JSON, bytes values raw
            t = app.Table(name, partitions=n, key_type=str, value_type=bytes,
                          options=table_options())  # fmt: skip
            store = CheckpointStore(t, not_before=float(os.environ.get(FRESH_SINCE_ENV, 0)))
            store.on_send = self.gate.track
            return store

        every = (s.checkpoint_interval_s, s.checkpoint_events, self.gate)
        self.ingest = PartitionRunner(
            "ingest", table("ingest-ckpt", P), lambda p: IngestTask(params, p, P),
            self._send_facts, *every,
        )  # fmt: skip
        self.windowing = PartitionRunner(
            "windowing", table("windowing-ckpt", P), lambda q: WindowTask(params, q, P),
            self._send_partials, *every,
        )  # fmt: skip
        self.detection = PartitionRunner(
            "detection", table("detection-ckpt", 1), lambda _: DetectTask(params, P),
            self._send_alerts, *every,
        )  # fmt: skip
        self.runners = {s.input_topic: self.ingest, s.facts_topic: self.windowing,
                        s.partials_topic: self.detection}  # fmt: skip
        self.live = LiveSignals(self, StallDetector(s.stall_min_s, s.stall_factor))
        self.last_flush: dict[int, float] = {}
        self.unready_reason: str | None = None  # set by streams.supervise.BrokerWatch
        self.idle_sent: set[int] = set()
        self.assigned_none = False  # the last assignment gave this worker nothing
        self.assigned_at = time.monotonic()
        # (alert_id, status) printed, oldest first; bounded: re-sent records come from
        # replays of the last minutes, not from days ago (memory of a long-lived worker)
        self.delivered: dict[tuple[str, str], None] = {}
        self.counts = {"dead_lettered": 0, "alerts_sent": 0, "alerts_printed": 0,
                       "alerts_repeated": 0, "partials_sent": 0, "fact_records": 0}  # fmt: skip
        # one registry for /metrics: the alert service's delivery metrics register in it too
        registry = registry or getattr(notify, "registry", None) or CollectorRegistry()
        self.metrics = StreamMetrics(registry, s.metrics_top_publishers,
                                     announce_delivery=notify is None)  # fmt: skip
        self.metrics.attach(self)

        app.agent(self.t_orders, name="ordermon-ingest")(self._ingest_agent)
        app.agent(self.t_facts, name="ordermon-windowing")(self._windowing_agent)
        app.agent(self.t_partials, name="ordermon-detection")(self._detection_agent)
        app.agent(self.t_alerts, name="ordermon-delivery")(self._delivery_agent)
        app.timer(0.25, name="ordermon-housekeeping")(self._housekeeping)
        if notify is not None:
            app.task(self._notify_task)
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        if s.embedded:
            self._patch_recovery()
        app.ordermon_fetch_max_wait_ms = s.fetch_max_wait_ms  # type: ignore[attr-defined]
        self._patch_fetch_wait()
        if s.web_port > 0:
            from streams.web import add_pages

            add_pages(self)
        from streams.memprobe import install as install_memprobe
        from streams.memprobe import tune_malloc

        tune_malloc()  # large blocks mmapped: freed memory goes back (see its docstring)
        install_memprobe(self)  # ORDERMON_TRACEMALLOC=path: memory diagnostics (off)

    # -- agents -----------------------------------------------------------------------
    async def _ingest_agent(self, stream: Any) -> None:
        runner, linger = self.ingest, self.s.facts_linger_s
        observe = self.metrics.latency["ingest"].observe
        async for event in stream.noack().events():
            msg = event.message
            p = msg.partition
            task = runner.task(p)
            raw = event.value if event.value is not None else b""
            t0 = time.monotonic()
            rej = task.process(raw, msg.offset)
            if rej is not None:
                self._dead_letter(msg, raw, rej)
            now = time.monotonic()
            observe(now - t0)
            self.live.arrival(p, now)
            if p in self.idle_sent:
                self.idle_sent.discard(p)
            if now - self.last_flush.get(p, 0.0) >= linger:
                self._send_facts(p, task)
            runner.done(p, event, now)

    async def _windowing_agent(self, stream: Any) -> None:
        def after(q: int, task: WindowTask, _: Any) -> None:
            if task.windowing.out:
                self._send_partials(q, task)

        await self._stage_loop(stream, self.windowing, "windowing", after)

    async def _detection_agent(self, stream: Any) -> None:
        def after(q: int, task: DetectTask, closed: Any) -> None:
            if closed:
                self.live.windows_closed(task.detection.watermark)
            if task.detection.alerts:
                self._send_alerts(q, task)

        await self._stage_loop(stream, self.detection, "detection", after)

    async def _stage_loop(self, stream: Any, runner: PartitionRunner, stage: str,
                          after: Callable[[int, Any, Any], None]) -> None:  # fmt: skip
        """An internal stage's agent: decode the record, apply it to its partition's
        task, send what it produced (``after``), time it, hand it to the runner."""
        observe = self.metrics.latency[stage].observe
        async for event in stream.noack().events():
            msg = event.message
            task = runner.task(msg.partition)
            t0 = time.monotonic()
            after(msg.partition, task, task.apply(_dec.decode(event.value), msg.offset))
            now = time.monotonic()
            observe(now - t0)
            runner.done(msg.partition, event, now)

    async def _delivery_agent(self, stream: Any) -> None:
        async for value in stream:
            try:
                alert = msgspec.json.decode(value, type=Alert)
            except msgspec.DecodeError as exc:
                log.warning("alert_record_unreadable", error=str(exc))
                continue
            self.deliver(alert)

    # -- outputs ----------------------------------------------------------------------
    def _send_facts(self, p: int, task: IngestTask) -> None:
        self.last_flush[p] = time.monotonic()
        for q, record in task.take():
            self.gate.track(self.t_facts.send_soon(value=_enc.encode(record), partition=q),
                            "facts")  # fmt: skip
            self.counts["fact_records"] += 1

    def _send_partials(self, q: int, task: WindowTask) -> None:
        for seq, partial in task.take_numbered():
            wire = partial_to_wire(partial)
            wire["seq"] = seq
            self.gate.track(self.t_partials.send_soon(value=_enc.encode(wire), partition=0),
                            "partials")  # fmt: skip
            self.counts["partials_sent"] += 1

    def _send_alerts(self, _: int, task: DetectTask) -> None:
        for alert in task.take():
            self.send_alert(alert)

    def send_alert(self, alert: Alert) -> None:
        self.gate.track(self.t_alerts.send_soon(key=alert.alert_id.encode(),
                                                value=encode_alert(alert)[:-1], partition=0),
                        "alerts")  # fmt: skip
        self.counts["alerts_sent"] += 1
        self.metrics.alert(alert.kind, alert.category, alert.severity, alert.status)
        log.info("alert_emitted", alert_id=alert.alert_id, kind=alert.kind, status=alert.status,
                 severity=alert.severity, publisher_id=alert.publisher_id,
                 window_end=alert.window_end)  # fmt: skip

    def _dead_letter(self, msg: Any, raw: bytes, rej: Rejection) -> None:
        headers = [
            ("ordermon-error-code", rej.code.value.encode()),
            ("ordermon-error-message", rej.message.encode()),
            ("ordermon-error-field", (rej.field or "").encode()),
            ("ordermon-source-topic", msg.topic.encode()),
            ("ordermon-source-partition", str(msg.partition).encode()),
            ("ordermon-source-offset", str(msg.offset).encode()),
        ]
        self.gate.track(self.t_dlq.send_soon(key=msg.key, value=raw, partition=msg.partition,
                                             headers=headers), "dead letters")  # fmt: skip
        self.counts["dead_lettered"] += 1
        log.debug("message_dead_lettered", topic=msg.topic, partition=msg.partition,
                  offset=msg.offset, code=rej.code.value, field=rej.field)  # fmt: skip

    async def _notify_task(self) -> None:
        """Runs the alert service's sender for the worker's lifetime (pending deliveries in
        the outbox resume here after a restart)."""
        await self.notify.start()
        stop = asyncio.Event()
        try:
            await self.notify.run(stop)
        finally:
            await self.notify.close()

    def deliver(self, alert: Alert) -> None:
        """Console output once per (alert_id, status) per worker, and every record to the
        alert service, whose outbox de-duplicates by (receiver, alert_id, status) across
        restarts too; accept() is durable on return, before the offset is committed."""
        if self.notify is not None:
            self.notify.accept(alert)
        key = (alert.alert_id, alert.status)
        if key in self.delivered:
            self.counts["alerts_repeated"] += 1
            return
        self.delivered[key] = None
        if len(self.delivered) > DELIVERED_KEEP:
            del self.delivered[next(iter(self.delivered))]
        self.counts["alerts_printed"] += 1
        if self.on_alert is not None:
            self.on_alert(alert)
        if self.s.console:
            print(alert_line(alert, self.color), file=self.out, flush=True)

    # -- time-driven work ---------------------------------------------------------------
    async def _housekeeping(self) -> None:
        now = time.monotonic()
        for p, task in list(self.ingest.tasks.items()):
            if task.buf and now - self.last_flush.get(p, 0.0) >= self.s.facts_linger_s:
                self._send_facts(p, task)
        for runner in (self.ingest, self.windowing, self.detection):
            runner.checkpoint_quiet(now, QUIET_CHECKPOINT_S)
        self._mark_idle(now)
        self.live.check(now)

    def _input_partitions(self) -> list[int]:
        try:
            assigned = self.app.consumer.assignment()
        except Exception:  # consumer not started yet
            return []
        return sorted(tp.partition for tp in assigned if tp.topic == self.s.input_topic)

    def _mark_idle(self, now: float) -> None:
        """Tell every windowing partition about input partitions that are caught up and
        have been quiet for ``idle_after_s``: idle sources do not hold time back."""
        for p in self._input_partitions():
            if p in self.idle_sent:
                continue
            last = self.live.last_arrival.get(p, self.assigned_at)
            if now - last < self.s.idle_after_s or not self._caught_up(p):
                continue
            task = self.ingest.tasks.get(p)
            if task is not None and task.buf:
                self._send_facts(p, task)
            for q in range(self.P):
                self.gate.track(self.t_facts.send_soon(value=_enc.encode([p, IDLE, True]),
                                                       partition=q), "facts")  # fmt: skip
            self.idle_sent.add(p)
            log.info("input_partition_idle", partition=p)

    def _caught_up(self, p: int) -> bool:
        from faust.types import TP

        try:
            hw = self.app.consumer.highwater(TP(self.s.input_topic, p))
        except Exception:
            return False
        task = self.ingest.tasks.get(p)
        done = task.offset + 1 if task is not None else 0
        return hw is not None and done >= hw

    # -- rebalancing --------------------------------------------------------------------
    async def _on_revoked(self, app: Any, revoked: Any, **_: Any) -> None:
        self.assigned_none = False  # rebalancing
        # checkpoints taken before the revocation are written and acknowledged first
        if not await self.gate.settled(REVOKE_SETTLE_S):
            log.warning("checkpoints_unsettled_at_revocation", waiting=self.gate.pending(),
                        failed=self.gate.failed)  # fmt: skip
        by_topic: dict[str, set[int]] = {}
        for tp in revoked:
            by_topic.setdefault(tp.topic, set()).add(tp.partition)
        for topic, parts in by_topic.items():
            runner = self.runners.get(topic)
            if runner is not None:
                runner.revoke(parts)
        self.idle_sent -= by_topic.get(self.s.input_topic, set())

    async def _on_assigned(self, app: Any, assigned: Any, **_: Any) -> None:
        # an empty assignment is a settled group with more members than partitions: this
        # worker is an idle standby, ready (and not stuck: see streams.supervise)
        self.assigned_none = not assigned
        if self.assigned_none:
            log.info("no_partitions_assigned", reason="more workers than partitions")
        self.assigned_at = time.monotonic()
        self.idle_sent.clear()

    async def drain(self) -> None:
        """Shutdown: send what is buffered and checkpoint every partition, so the final
        commit covers everything processed."""
        for p, task in list(self.ingest.tasks.items()):
            self._send_facts(p, task)
        for runner in (self.ingest, self.windowing, self.detection):
            runner.checkpoint_all()
        await self.app.producer.flush()
        if not await self.gate.settled(DRAIN_SETTLE_S):
            log.error("drain_unsettled", waiting=self.gate.pending(), failed=self.gate.failed)
        await self.app.consumer.commit()
        log.info("drained", **self.counts)

    def _send_failed(self, what: str, exc: BaseException) -> None:
        """A record did not reach the broker: acknowledge nothing more (``SendGate``) and
        restart, so the input behind it is read again from the last committed offset."""
        error = f"{type(exc).__name__}: {exc}"
        self.unready_reason = f"a {what} record was not sent ({error}); restarting"
        log.error("output_send_failed", output=what, error=error,
                  unacknowledged={r.stage: r.unacked() for r in self.runners.values()})  # fmt: skip
        if self.request_restart is not None:
            self.request_restart(f"{what} send failed: {error}", False)
        else:
            asyncio.ensure_future(self.app.crash(exc))

    # -- embedded broker ----------------------------------------------------------------
    def _patch_fetch_wait(self) -> None:
        """faust creates its consumer with ``fetch_max_wait_ms=1500``. Kafka answers a fetch
        as soon as data arrives, but a broker that holds it to the deadline (Tansu does)
        adds that much to each hop of a sparse topic (partials, alerts): up to 3 s between
        an event and its alert. The consumer reads the value when it starts, so it is set
        on the consumer object faust creates."""
        from faust.transport.drivers import aiokafka as drv

        cls = drv.AIOKafkaConsumerThread
        orig = cls._create_worker_consumer
        if getattr(orig, "ordermon_patched", False):
            return

        def create(thread: Any, transport: Any) -> Any:
            consumer = orig(thread, transport)
            wait = getattr(thread.app, "ordermon_fetch_max_wait_ms", None)
            if wait is not None:
                consumer._fetch_max_wait_ms = wait
            return consumer

        create.ordermon_patched = True  # type: ignore[attr-defined]
        cls._create_worker_consumer = create  # type: ignore[method-assign,assignment]

    def _patch_recovery(self) -> None:
        from streams.highwater import patch_app

        patch_app(self.app, bootstrap_of(self.s.broker))
