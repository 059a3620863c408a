"""Correct high watermarks on the embedded broker, for faust's table recovery.

Tansu 0.6.0 answers ListOffsets(latest) with the last batch's base offset + 1 (measured:
15 records in two batches of 10 and 5 -> 11). faust's recovery reads a changelog up to
that "highwater", so it would silently miss the tail of the last batch: the newest
checkpoint header, whose input offsets were already committed -> lost events. Fetch
responses carry the right high watermark, so ``fetch_highwaters`` asks for one fetch per
partition with a group-less consumer. Used only with ``embedded = true``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


async def fetch_highwaters(bootstrap: str, tps: Iterable[Any], timeout: float = 15.0) -> dict:
    """``{tp: high watermark}`` from fetch responses (keys are the given ``tps``)."""
    wanted = list(tps)
    if not wanted:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50,
        max_partition_fetch_bytes=1024, client_id="ordermon-highwater",
    )  # fmt: skip
    await consumer.start()
    try:
        ktps = {TopicPartition(tp.topic, tp.partition): tp for tp in wanted}
        consumer.assign(list(ktps))
        low = await consumer.end_offsets(list(ktps))  # a lower bound: fetch from just before
        for ktp in ktps:
            consumer.seek(ktp, max(0, low[ktp] - 1))
        deadline = time.monotonic() + timeout
        while any(consumer.highwater(k) is None for k in ktps):
            if time.monotonic() > deadline:
                missing = [k for k in ktps if consumer.highwater(k) is None]
                raise TimeoutError(f"no fetch response for {missing} within {timeout}s")
            await consumer.getmany(timeout_ms=200, max_records=1)
        return {tp: consumer.highwater(k) for k, tp in ktps.items()}
    finally:
        await consumer.stop()


def patch_app(app: Any, bootstrap: str) -> None:
    """Make ``app.consumer.highwaters`` (what faust's recovery calls) use fetch responses."""
    new_consumer = app._new_consumer

    def _new_consumer() -> Any:
        consumer = new_consumer()

        async def highwaters(*tps: Any) -> Any:
            return await fetch_highwaters(bootstrap, tps)

        consumer.highwaters = highwaters
        return consumer

    app._new_consumer = _new_consumer
