"""Input produced by librdkafka (confluent-kafka, murmur2_random) is read correctly, and
every rejected message lands in the dead-letter topic with its bytes and error headers."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from monitor.model import Rejection
from monitor.pipeline import Monitor
from monitor.simulate import simulate
from streams.procs import WorkerProc, write_config
from streams.produce import key_extractor
from streams.topics import ensure_topics
from tests.integration.conftest import consume_all

ck = pytest.importorskip("confluent_kafka")
pytestmark = pytest.mark.slow
P = 4

MALFORMED = [
    b'{"order_id": "o-trunc", "status": ',  # truncated JSON
    b'\xff\xfe{"order_id":"o-bytes"}',  # not UTF-8
    b'["order_id", "o-list"]',  # not an object
    b'{"schema_version": 1, "order_id": "o-nofields"}',  # keyed, missing fields
    b'{"schema_version": 1, "event_id": "e-ts", "order_id": "o-ts", "publisher_id": "p",'
    b' "status": "paid", "amount": 1, "commission": 0.1, "occurred_at": "yesterday"}',
]


def _librdkafka_produce(bootstrap: str, topic: str, lines: list[bytes]) -> None:
    key = key_extractor()
    prod = ck.Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random",
                        "linger.ms": 20, "enable.idempotence": False})  # fmt: skip
    errors: list[str] = []

    def on_delivery(err, msg):  # noqa: ANN001
        if err is not None:
            errors.append(str(err))

    for line in lines:
        prod.produce(topic, key=key(line), value=line, on_delivery=on_delivery)
        prod.poll(0)
    assert prod.flush(30) == 0 and not errors, errors[:3]


async def test_librdkafka_input_and_dead_letters(broker, tmp_path: Path):
    sim = simulate(5, tmp_path / "sim", publishers=40, days=0.4)
    lines = [ln for ln in Path(sim["events_path"]).read_bytes().splitlines() if ln.strip()]
    lines = lines[:200] + MALFORMED + lines[200:]
    mon = Monitor()  # the single-process truth for per-order counts and rejections
    rejected = {}
    for line in lines:
        r = mon.process(line)
        if isinstance(r, Rejection):
            rejected[line] = r
    assert len(rejected) >= len(MALFORMED)

    tag = uuid.uuid4().hex[:8]
    names = {"input_topic": f"rd-{tag}", "dlq_topic": f"rd-{tag}.dlq",
             "alerts_topic": f"rd-alerts-{tag}", "app_id": f"om-rd-{tag}"}  # fmt: skip
    cfg = write_config(tmp_path / "ordermon.toml", partitions=P, store="memory://",
                       checkpoint_interval_s=1.0, **names)  # fmt: skip
    await ensure_topics(broker.bootstrap, {names["input_topic"]: P})
    _librdkafka_produce(broker.bootstrap, names["input_topic"], lines)

    w = WorkerProc(broker.url, cfg, tmp_path).start()
    try:

        def all_read(st: dict) -> bool:
            i = st["ingest"]
            return i["accepted"] + i["duplicates"] + sum(i["rejected"].values()) >= len(lines)

        st = w.wait_for(all_read, 90, "every message ingested")
        dlq = await consume_all(broker.bootstrap, names["dlq_topic"], count=len(rejected))
        source = await consume_all(broker.bootstrap, names["input_topic"], count=len(lines))
    finally:
        assert w.terminate() == 0, w.log_tail()

    # per-order state is right only if librdkafka put each order's events on one partition
    ing = st["ingest"]
    assert ing["accepted"] == mon.accepted and ing["duplicates"] == mon.duplicates
    assert ing["violations"] == dict(mon.violations)
    assert ing["rejected"] == {k.value: v for k, v in mon.rejected.items()}

    by_pos = {(r.partition, r.offset): r.value for r in source}
    assert len(dlq) == len(rejected)
    for rec in dlq:
        h = {k: v.decode() for k, v in rec.headers}
        want = rejected[rec.value]  # the original bytes, unchanged
        assert h["ordermon-error-code"] == want.code.value
        assert h["ordermon-error-message"] == want.message
        assert h["ordermon-source-topic"] == names["input_topic"]
        src = (int(h["ordermon-source-partition"]), int(h["ordermon-source-offset"]))
        assert src[0] == rec.partition and by_pos[src] == rec.value
