"""SIGKILL a worker at five random points of a stream with every incident kind.

The worker (RocksDB store, one data dir, a webhook receiver behind the SQLite outbox) is
killed whenever its consumed input reaches the next of five seeded random offsets, and
restarted on the same data dir each time. Afterwards:

- the alert records on the alerts topic are those of an uninterrupted run
  (``streams.reference.run_partitioned``: the same topology in one process); repeats of a
  record re-emitted after a kill are allowed there;
- the webhook receiver got every (alert_id, status) of that run, each under one
  idempotency key: exactly once for a receiver that honours the key. A raw repeat of a
  request is possible only if a kill lands between the receiver's HTTP 200 and the
  outbox's commit of it (counted and printed; never a different key for the same item).

The stream is produced live (2,000 events/s) while the worker runs, so that detection keeps
pace with ingest and kills land while alerts are raised and delivered (a backlog read at
full speed closes most windows only at its end). Kill points come from consumed-offset
progress polled from ``/status``, never from sleeps.
Short consumer-group timeouts (3 s session) make a restart take ~5 s instead of ~20 s.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from pathlib import Path

import msgspec
import pytest

from monitor.model import Alert
from monitor.simulate import simulate
from streams.procs import WorkerProc, detection_done, write_config
from streams.produce import produce_file
from streams.reference import run_partitioned
from tests.integration.conftest import consume_all
from tests.integration.webhook_sink import WebhookSink

pytestmark = pytest.mark.slow
SEED = 20261126  # the kill points
KILLS = 5
PARTITIONS = 4
RATE = 2000.0  # events/s produced while the worker runs: ~32 s of stream
FAST_GROUP = {"broker_session_timeout": 3.0, "broker_heartbeat_interval": 0.5,
              "broker_rebalance_timeout": 3.0}  # fmt: skip


def key(a: Alert) -> tuple[str, str, str, str, str]:
    return (a.alert_id, a.status, a.kind, a.window_start, a.window_end)


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """150 publishers x 1.25 days, seed 5 (~65k events): every incident kind the simulator
    injects (10, plus traps); its uninterrupted 4-partition run raises 19 alert records of
    7 kinds. (Chosen short for the time budget; seed 11 at 300 x 1.5 days is 2.7x longer.)"""
    out = tmp_path_factory.mktemp("crash-sim")
    info = simulate(5, out, publishers=150, days=1.25)
    lines = [ln for ln in Path(info["events_path"]).read_bytes().splitlines() if ln.strip()]
    incidents = msgspec.json.decode(Path(info["incidents_path"]).read_bytes())["incidents"]
    alerts, closed = run_partitioned(lines, PARTITIONS)
    return {"path": info["events_path"], "n": len(lines), "alerts": alerts, "closed": closed,
            "incident_kinds": {i["kind"] for i in incidents if not i.get("trap")}}  # fmt: skip


class Progress:
    """Input events consumed so far: per input partition the highest offset any start of
    the worker reported, summed. (A restarted worker lists only the partitions it got a
    message for: one already read to its end has no entry, yet counts.)"""

    def __init__(self) -> None:
        self.high: dict[str, int] = {}

    def __call__(self, st: dict) -> int:
        for p, o in (st["stages"]["ingest"]["offsets"] or {}).items():
            if o is not None and o + 1 > self.high.get(p, 0):
                self.high[p] = o + 1
        return sum(self.high.values())


def kill_points(n: int, k: int, rng: random.Random) -> list[int]:
    """One uniform point in each of ``k`` equal strata of [30 %, 97 %] of the input: random,
    yet spread over the part where incidents happen (the simulator's first 12 h of 30 are
    warm-up), so that kills land while alerts are raised and delivered."""
    lo, hi = int(n * 0.30), int(n * 0.97)
    step = (hi - lo) / k
    return [int(lo + i * step + rng.random() * step) for i in range(k)]


async def test_five_sigkills_change_no_alert_and_double_no_notification(broker, stream, tmp_path):
    assert len(stream["incident_kinds"]) >= 10, stream["incident_kinds"]  # every kind
    want = {key(a) for a in stream["alerts"]}
    want_items = {(a.alert_id, a.status) for a in stream["alerts"]}
    tag = uuid.uuid4().hex[:8]
    names = {"input_topic": f"orders-{tag}", "dlq_topic": f"orders-{tag}.dlq",
             "alerts_topic": f"alerts-{tag}", "app_id": f"om-{tag}"}  # fmt: skip
    sink = WebhookSink()
    try:
        cfg = write_config(tmp_path / "ordermon.toml", partitions=PARTITIONS,
                           store="rocksdb://", checkpoint_interval_s=2.0, idle_after_s=3.0,
                           **FAST_GROUP, **names)  # fmt: skip
        with open(cfg, "a") as fh:
            fh.write(sink.config(str(tmp_path / "outbox.sqlite")))
        points = kill_points(stream["n"], KILLS, random.Random(SEED))
        w = WorkerProc(broker.url, cfg, tmp_path).start()
        consumed = Progress()
        crashes = []
        res: dict = {}
        producer = threading.Thread(target=lambda: res.update(asyncio.run(produce_file(
            stream["path"], broker.bootstrap, names["input_topic"], RATE,
            partitions=PARTITIONS))), daemon=True)  # fmt: skip
        try:
            w.wait_for(lambda st: st["ready"], 60, "readiness")
            producer.start()  # live: detection keeps up, so kills land amid alerts
            for target in points:
                st = w.wait_for(lambda st, t=target: consumed(st) >= t, 120, f"offset {target}")
                w.kill()
                at, sent = consumed(st), len(sink.keys())
                t0 = time.monotonic()
                w.start()
                w.wait_for(lambda st: st["ready"], 60, "readiness after the restart")
                ready_s = time.monotonic() - t0
                w.wait_for(lambda st: st["stages"]["ingest"]["messages"] > 0, 60, "processing")
                crashes.append((target, at, sent, ready_s, time.monotonic() - t0))
            producer.join(120)
            assert res.get("failed") == 0 and res["produced"] == stream["n"], res
            after = w.wait_for(detection_done(stream["closed"]), 150, "the last window")
            delivered = sink.wait_for(want_items, 60)
        finally:
            code = w.terminate()
        assert code == 0, w.log_tail()
        recs = await consume_all(broker.bootstrap, names["alerts_topic"], timeout=30)
        alerts = [msgspec.json.decode(r.value, type=Alert) for r in recs]
    finally:
        sink.close()
    got = {key(a) for a in alerts}
    assert got == want, f"missing {sorted(want - got)}\nextra {sorted(got - want)}"
    assert not after["ingest"]["offset_gaps"] and not after["detection"]["fact_gaps"]
    assert w.starts == KILLS + 1
    # the receiver: every item of the uninterrupted run, none under two idempotency keys
    processed = sink.processed()
    assert delivered, f"not delivered: {sorted(want_items - set(processed))}"
    assert set(processed) == want_items, f"extra: {sorted(set(processed) - want_items)}"
    twice = {k: n for k, n in processed.items() if n != 1}
    assert not twice, f"notified more than once: {twice}"
    print(f"\n{stream['n']:,} events, {len(want)} alert records ({len(alerts)} on the topic "
          f"with repeats); webhook: {len(processed)} items, {len(sink.requests)} requests "
          f"({sink.raw_repeats()} raw repeats of an unacknowledged send)")  # fmt: skip
    for target, at, sent, ready_s, resume_s in crashes:
        print(
            f"  kill at offset {at:,} (target {target:,}; {sent} items at the receiver): "
            f"ready {ready_s:.1f}s, processing {resume_s:.1f}s after the restart"
        )
