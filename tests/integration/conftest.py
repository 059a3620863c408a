"""Integration fixtures: one embedded Tansu broker per session, and a read-back helper."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from streams.broker import EmbeddedBroker, bootstrap_of
from streams.topics import topic_partitions


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """The session's broker; its log is in the session's tmp dir (see ``broker.log_path``)."""
    b = EmbeddedBroker(log_path=tmp_path_factory.mktemp("tansu") / "broker.log")
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def topic_name() -> str:
    """A fresh topic name: tests share the session's broker."""
    return f"t-{uuid.uuid4().hex[:10]}"


async def consume_all(
    bootstrap: str, topic: str, count: int | None = None, timeout: float = 30.0
) -> list[ConsumerRecord]:
    """Read ``topic`` from the beginning, without a consumer group, until ``count`` records
    (if given) or until every partition is read up to its high watermark.

    The high watermark comes from fetch responses (Tansu's ListOffsets(latest) is wrong:
    it returns the last batch's base offset + 1, so ``end_offsets`` cannot be used).
    Raises ``TimeoutError`` at the deadline, saying how far it got. The topic must exist
    (asking a consumer for an unknown topic's metadata would auto-create it).
    """
    servers = bootstrap_of(bootstrap)
    parts = await topic_partitions(servers, [topic])
    if topic not in parts:
        raise LookupError(f"topic {topic!r} does not exist")
    tps = [TopicPartition(topic, p) for p in range(parts[topic])]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    await consumer.start()
    out: list[ConsumerRecord] = []
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        nxt = {tp: await consumer.position(tp) for tp in tps}
        deadline = time.monotonic() + timeout

        def done() -> bool:
            if count is not None:
                return len(out) >= count
            return all((hw := consumer.highwater(tp)) is not None and nxt[tp] >= hw for tp in tps)

        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                hws = {tp.partition: consumer.highwater(tp) for tp in tps}
                raise TimeoutError(
                    f"{topic}: {len(out)} records after {timeout}s (wanted {count}; "
                    f"next offsets {[nxt[tp] for tp in tps]}, high watermarks {hws})"
                )
            batch = await consumer.getmany(timeout_ms=int(min(left, 0.5) * 1000))
            for tp, recs in batch.items():
                out.extend(recs)
                nxt[tp] = recs[-1].offset + 1
    finally:
        await consumer.stop()
    return out


def run(coro):  # noqa: ANN001, ANN201 - for sync tests that need one async call
    return asyncio.run(coro)


def process_gone(pid: int) -> bool:
    """True once no process has ``pid`` (signal 0 probes without touching it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
