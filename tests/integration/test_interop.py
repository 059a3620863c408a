"""librdkafka interop: keys produced by confluent-kafka (murmur2_random) land on the same
partitions as aiokafka's default partitioner (what produce_file uses), and an aiokafka
consumer reads them all."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner

from streams.produce import produce_file
from streams.topics import ensure_topics
from tests.integration.conftest import consume_all

ck = pytest.importorskip("confluent_kafka")
PARTITIONS = 6
N = 3000


def _librdkafka_produce(bootstrap: str, topic: str, keys: list[bytes]) -> dict[bytes, int]:
    """Produce ``keys`` (value = key) with librdkafka; return key -> delivered partition."""
    prod = ck.Producer(
        {"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 5}
    )
    delivered: dict[bytes, int] = {}
    errors: list[str] = []

    def on_delivery(err, msg):  # noqa: ANN001
        if err is not None:
            errors.append(str(err))
        else:
            delivered[msg.key()] = msg.partition()

    for k in keys:
        prod.produce(topic, key=k, value=k, on_delivery=on_delivery)
        prod.poll(0)
    assert prod.flush(30) == 0, "librdkafka did not deliver everything within 30 s"
    assert not errors, errors[:3]
    return delivered


async def test_librdkafka_murmur2_copartitions_with_aiokafka(broker, topic_name, tmp_path):
    rd_topic, aio_topic = topic_name + ".rdkafka", topic_name + ".aiokafka"
    await ensure_topics(broker.bootstrap, {rd_topic: PARTITIONS, aio_topic: PARTITIONS})
    keys = [f"order-{i:05d}".encode() for i in range(N // 2)] + [
        f"{2300000000000000000 + i * 7919}".encode() for i in range(N // 2)
    ]
    delivered = _librdkafka_produce(broker.bootstrap, rd_topic, keys)
    assert len(delivered) == N

    parts = list(range(PARTITIONS))
    part = DefaultPartitioner()
    assert {k: part(k, parts, parts) for k in keys} == delivered

    recs = await consume_all(broker.bootstrap, rd_topic, timeout=30)
    assert len(recs) == N
    assert {r.key: r.partition for r in recs} == delivered
    assert all(r.value == r.key for r in recs)

    # produce_file puts the same keys on the same partitions.
    src = tmp_path / "keys.jsonl"
    src.write_bytes(b"".join(b'{"order_id":"%s"}\n' % k for k in keys))
    res = await produce_file(str(src), broker.bootstrap, aio_topic)
    assert res["produced"] == N
    recs = await consume_all(broker.bootstrap, aio_topic, timeout=30)
    assert {r.key: r.partition for r in recs} == delivered
    assert len(set(delivered.values())) == PARTITIONS
