"""The stream service against the embedded broker: parity with replay, a SIGKILLed worker,
two workers in one group, the dead-letter topic, librdkafka-produced input.

One simulated stream (300 publishers x 1.5 days, every incident kind) serves the long
tests. Expectations come from the pure code: ``Monitor`` (what ``ordermon replay``
runs) and ``streams.reference.run_partitioned`` (the same topology in one process).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import msgspec
import pytest

from monitor.model import Alert
from monitor.pipeline import Monitor
from monitor.simulate import simulate
from streams.procs import WorkerProc, detection_done, write_config
from streams.produce import produce_file
from streams.reference import run_partitioned
from streams.topics import ensure_topics
from tests.integration.conftest import consume_all
from tests.integration.webhook_sink import WebhookSink

pytestmark = pytest.mark.slow
STREAM_TIMEOUT = 150.0


def key(a: Alert) -> tuple[str, str, str, str, str]:
    return (a.alert_id, a.status, a.kind, a.window_start, a.window_end)


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("stream-sim")
    info = simulate(11, out, publishers=300, days=1.5)
    lines = [ln for ln in Path(info["events_path"]).read_bytes().splitlines() if ln.strip()]
    return {"path": info["events_path"], "lines": lines}


@pytest.fixture(scope="session")
def replay_expected(sim: dict) -> tuple[set, int]:
    """What ``ordermon replay`` says before its end-of-input flush (a live stream never
    ends, so the last, partly filled windows stay open)."""
    mon, alerts = Monitor(), []
    for line in sim["lines"]:
        mon.process(line)
        alerts += mon.take_alerts()
    return {key(a) for a in alerts}, mon.windows.closed_through


@pytest.fixture(scope="session")
def four_partition_expected(sim: dict) -> tuple[set, int]:
    alerts, closed = run_partitioned(sim["lines"], 4)
    return {key(a) for a in alerts}, closed


def _setup(broker, tmp_path: Path, partitions: int, **extra) -> tuple[Path, dict]:
    tag = uuid.uuid4().hex[:8]
    names = {"input_topic": f"orders-{tag}", "dlq_topic": f"orders-{tag}.dlq",
             "alerts_topic": f"alerts-{tag}", "app_id": f"om-{tag}"}  # fmt: skip
    cfg = write_config(tmp_path / "ordermon.toml", partitions=partitions, store="memory://",
                       checkpoint_interval_s=2.0, idle_after_s=3.0, **names, **extra)  # fmt: skip
    return cfg, names


async def _produce(broker, path: str, topic: str, partitions: int) -> int:
    res = await produce_file(path, broker.bootstrap, topic, partitions=partitions)
    assert res["failed"] == 0
    return int(res["produced"])


async def _alerts(broker, topic: str) -> list[Alert]:
    recs = await consume_all(broker.bootstrap, topic, timeout=30)
    return [msgspec.json.decode(r.value, type=Alert) for r in recs]


async def test_stream_equals_replay_on_one_input_partition(
    broker, sim, replay_expected, tmp_path, alert_validator
):
    want, closed_through = replay_expected
    cfg, names = _setup(broker, tmp_path, partitions=1)
    await _produce(broker, sim["path"], names["input_topic"], 1)
    w = WorkerProc(broker.url, cfg, tmp_path).start()
    try:
        t0 = time.monotonic()
        w.wait_for(detection_done(closed_through), STREAM_TIMEOUT, "detection of the last window")
        took = time.monotonic() - t0
        alerts = await _alerts(broker, names["alerts_topic"])
    finally:
        code = w.terminate()
    assert code == 0, w.log_tail()
    got = {key(a) for a in alerts}
    assert got == want, f"missing {sorted(want - got)}\nextra {sorted(got - want)}"
    # the stream has incidents of every category (which kinds fire is the detectors' business)
    assert {a.category for a in alerts} == {"publisher", "platform", "data_quality"}
    assert len({a.kind for a in alerts}) >= 5
    for a in alerts:
        alert_validator.validate(msgspec.to_builtins(a))
    print(f"\n1 partition: {len(sim['lines']):,} events to the last window in {took:.1f}s")


async def test_sigkilled_worker_resumes_with_the_same_alerts(
    broker, sim, four_partition_expected, tmp_path
):
    want, closed_through = four_partition_expected
    cfg, names = _setup(broker, tmp_path, partitions=4)
    n = await _produce(broker, sim["path"], names["input_topic"], 4)
    w = WorkerProc(broker.url, cfg, tmp_path).start()
    try:

        def midstream(st: dict) -> bool:  # half the input read, some alerts already out
            offs = (st["stages"]["ingest"]["offsets"] or {}).values()
            read = sum(o + 1 for o in offs if o is not None)
            return read >= n // 2 and st["on_broker"].get("alerts", 0) >= 3

        before = w.wait_for(midstream, STREAM_TIMEOUT, "mid-stream with alerts out")
        w.kill()
        first = await _alerts(broker, names["alerts_topic"])
        t_restart = time.monotonic()
        w.start()
        w.wait_for(lambda st: st["ready"], 60, "readiness after the restart")
        t_ready = time.monotonic() - t_restart
        w.wait_for(lambda st: st["stages"]["ingest"]["messages"] > 0, 60, "processing")
        t_resume = time.monotonic() - t_restart
        after = w.wait_for(detection_done(closed_through), STREAM_TIMEOUT, "the last window")
        alerts = await _alerts(broker, names["alerts_topic"])
    finally:
        w.terminate()
    got = {key(a) for a in alerts}
    assert got == want, f"missing {sorted(want - got)}\nextra {sorted(got - want)}"
    assert len(alerts) >= len(want)  # repeats of alerts re-emitted after the kill are allowed
    assert first and {key(a) for a in first} <= want  # alerts were out before the kill
    assert not after["ingest"]["offset_gaps"] and not after["detection"]["fact_gaps"]
    print(f"\nkilled at {sum(before['stages']['ingest']['offsets'].values()):,} of {n:,} events "
          f"({len(first)} alerts out); restart -> ready {t_ready:.1f}s, -> processing "
          f"{t_resume:.1f}s; replayed offsets skipped {after['ingest']['skipped_replayed']:,}; "
          f"alert records {len(alerts)} for {len(want)} distinct")  # fmt: skip


async def test_two_workers_emit_the_same_alerts_as_one(
    broker, sim, four_partition_expected, tmp_path
):
    want, closed_through = four_partition_expected
    cfg, names = _setup(broker, tmp_path, partitions=4)
    await ensure_topics(broker.bootstrap, {names["input_topic"]: 4})
    a = WorkerProc(broker.url, cfg, tmp_path, "a").start()
    b = WorkerProc(broker.url, cfg, tmp_path, "b").start()
    try:

        def shared(st: dict) -> bool:
            return st["ready"] and any(x.startswith(names["input_topic"] + ":")
                                       for x in st["assigned"])  # fmt: skip

        a.wait_for(shared, 90, "input partitions on worker a")
        b.wait_for(shared, 90, "input partitions on worker b")
        await _produce(broker, sim["path"], names["input_topic"], 4)
        deadline = time.monotonic() + STREAM_TIMEOUT
        done, finished = None, detection_done(closed_through)
        while done is None:
            for w in (a, b):
                st = w.status()
                if st and "stages" in st and finished(st):
                    done = st
            assert time.monotonic() < deadline, f"not done:\n{a.log_tail()}\n{b.log_tail()}"
            time.sleep(0.2)  # polling back-off against the deadline
        sa, sb = a.status() or {}, b.status() or {}
        alerts = await _alerts(broker, names["alerts_topic"])
    finally:
        codes = (a.terminate(), b.terminate())
    got = {key(x) for x in alerts}
    assert got == want, f"missing {sorted(want - got)}\nextra {sorted(got - want)}"
    inputs = [{x for x in s.get("assigned", []) if x.startswith(names["input_topic"] + ":")}
              for s in (sa, sb)]  # fmt: skip
    assert all(inputs) and not (inputs[0] & inputs[1]), inputs
    assert codes == (0, 0)


async def test_a_worker_with_no_partitions_is_an_idle_member_and_ready(broker, tmp_path):
    """One input partition, two workers: every topic has one partition, so the group gives
    one worker everything and the other nothing. That worker is a healthy standby: ready,
    saying why (the stuck-worker watchdog restarts only workers that are not ready)."""
    cfg, names = _setup(broker, tmp_path, partitions=1)
    await ensure_topics(broker.bootstrap, {names["input_topic"]: 1})
    a = WorkerProc(broker.url, cfg, tmp_path, "a").start()
    b = WorkerProc(broker.url, cfg, tmp_path, "b").start()
    try:

        def settled(st: dict) -> bool:
            return st["ready"]

        sa = a.wait_for(settled, 90, "worker a ready")
        sb = b.wait_for(settled, 90, "worker b ready")
        # both ready at once only after the group settled: read both again
        sa, sb = a.wait_for(settled, 30, "a"), b.wait_for(settled, 30, "b")
    finally:
        codes = (a.terminate(), b.terminate())
    busy, idle = (sa, sb) if sa["assigned"] else (sb, sa)
    assert f"{names['input_topic']}:0" in busy["assigned"], busy["assigned"]
    assert idle["assigned"] == [] and idle["reason"].startswith("idle"), idle
    assert codes == (0, 0)


async def test_live_worker_delivers_alerts_through_the_configured_webhook(
    broker, sim, replay_expected, tmp_path
):
    want, closed_through = replay_expected
    firing = {k[0] for k in want if k[1] == "firing"}
    receiver = WebhookSink()
    try:
        cfg, names = _setup(broker, tmp_path, partitions=1)
        with open(cfg, "a") as fh:  # [alerts]: one webhook receiver, no group wait
            fh.write(receiver.config(str(tmp_path / "outbox.sqlite")))
        await _produce(broker, sim["path"], names["input_topic"], 1)
        w = WorkerProc(broker.url, cfg, tmp_path).start()
        try:
            w.wait_for(detection_done(closed_through), STREAM_TIMEOUT, "the last window")
            every = receiver.wait_for({(a, "firing") for a in firing}, 60)
            got = {a for a, st in receiver.processed() if st == "firing"}
            assert every, f"not delivered: {sorted(firing - got)}\n" + w.log_tail()
        finally:
            code = w.terminate()
        assert code == 0, w.log_tail()
    finally:
        receiver.close()
    # every alert the stream raised, and only those, each (alert_id, status) in one request
    assert {a for a, st in receiver.processed() if st == "firing"} == firing
    assert receiver.raw_repeats() == 0 and max(receiver.processed().values()) == 1
