"""Load a JSONL file into a Kafka topic, keyed by ``order_id``: ``ordermon produce``.

- Input: a file, a gzip file (by magic bytes) or ``-`` for stdin, read in chunks by a
  daemon thread so a slow pipe never blocks the event loop (lingering batches still go
  out) and Ctrl-C never waits for a blocked read.
- Lines follow ``monitor replay``: the line end (``\\n``, ``\\r\\n``) is stripped and blank
  lines are skipped (counted as ``blank``), so a stream run and a replay of the same
  file see the same events. **Every other line is produced**: a line that is not JSON,
  or has no string key field, goes out with a null key, for the monitor to reject into
  its dead-letter topic.
- Keys are extracted with a one-field msgspec decoder (validates the JSON, skips the
  other fields: well under a microsecond for a contract event).
- Partitioning: aiokafka's ``DefaultPartitioner`` is the Java client's
  ``murmur2(key) & 0x7fffffff % partitions`` (librdkafka: ``partitioner=murmur2_random``),
  so keys co-partition with Java and librdkafka producers; the integration tests check
  this against confluent-kafka. A line without a key goes to ``null_key_partition``: the
  CRC-32 of the line over the partitions, spread like a random choice but the same every
  run (the reference driver, ``streams.reference``, routes such lines the same way).
- Throughput: ``send`` with linger and 256 KiB batches, futures gathered every
  ``FLUSH_EVERY`` records (~30k records/s on 2 cores). ``rate`` limits events/s with a
  token bucket on the monotonic clock (100 ms of burst).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
import zlib
from collections.abc import AsyncGenerator, Callable
from typing import Any, BinaryIO

import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from monitor.replay import open_events
from streams.broker import BrokerUnavailable, bootstrap_of, wait_for_broker
from streams.topics import ORDERS, TopicError, ensure_topics, topic_partitions

CHUNK = 1 << 16
FLUSH_EVERY = 20_000


def key_extractor(field: str = "order_id") -> Callable[[bytes], bytes | None]:
    """``line -> key bytes``, or None when the line is not a JSON object with a non-empty
    string ``field`` (top level)."""
    key_struct = msgspec.defstruct("Key", [("k", str | None, None)], rename={"k": field})
    dec = msgspec.json.Decoder(key_struct)

    def key(line: bytes) -> bytes | None:
        try:
            k = dec.decode(line).k  # type: ignore[attr-defined]
        except msgspec.DecodeError:  # also ValidationError: not an object, key not a string
            return None
        return k.encode() if k else None

    return key


class TokenBucket:
    """Debit-then-wait token bucket: ``take()`` returns the seconds to wait. The debt is
    kept, so waits shorter than a timer tick can be skipped without drifting the rate."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0 events/s")
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate / 10)
        self.tokens = self.capacity
        self.t = time.monotonic()

    def take(self, n: float = 1.0) -> float:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.t) * self.rate) - n
        self.t = now
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


async def read_lines(stream: BinaryIO) -> AsyncGenerator[bytes, None]:
    """Lines without their line end, from a daemon reader thread (at most 8 chunks ahead)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | BaseException] = asyncio.Queue()
    slots = threading.Semaphore(8)

    def reader() -> None:
        try:
            while True:
                slots.acquire()
                if stop:
                    return
                chunk = stream.read1(CHUNK)  # type: ignore[attr-defined]
                loop.call_soon_threadsafe(queue.put_nowait, chunk)
                if not chunk:
                    return
        except BaseException as exc:  # handed to the loop; RuntimeError if it is closed
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(queue.put_nowait, exc)

    stop = False
    threading.Thread(target=reader, name="produce-reader", daemon=True).start()
    rest = b""
    try:
        while True:
            item = await queue.get()
            slots.release()
            if isinstance(item, BaseException):
                raise OSError(f"cannot read input: {item}") from item
            if not item:
                break
            lines = (rest + item).split(b"\n")
            rest = lines.pop()
            for line in lines:
                yield line.rstrip(b"\r")
        if rest:
            yield rest.rstrip(b"\r")
    finally:
        stop = True  # a reader waiting for a slot wakes up, sees it and exits
        slots.release()


def null_key_partition(line: bytes, partitions: int) -> int:
    """The partition of a line that has no key (not JSON, no key field)."""
    return zlib.crc32(line) % partitions


async def produce_file(
    path: str,
    bootstrap: str,
    topic: str = ORDERS,
    rate: float | None = None,
    key_field: str = "order_id",
    *,
    partitions: int | None = None,
    connect_timeout: float = 15.0,
    linger_ms: int = 20,
) -> dict[str, Any]:
    """Produce every non-blank line of ``path`` to ``topic``; return the counts.

    The topic must exist (Tansu would auto-create it with 4 partitions), unless
    ``partitions`` is given: then it is created with that many if missing. Raises
    ``BrokerUnavailable`` when no broker answers within ``connect_timeout`` (polled with
    back-off), ``TopicError`` for a missing/mismatched topic, ``monitor.replay.InputError``
    or ``OSError`` when the input cannot be read. Delivery failures are counted
    (``failed``, ``first_error``), not raised.
    """
    servers = bootstrap_of(bootstrap)
    await asyncio.to_thread(wait_for_broker, servers, connect_timeout)
    if partitions is not None:
        await ensure_topics(servers, {topic: partitions})
    elif topic not in await topic_partitions(servers, [topic]):
        raise TopicError(
            f"topic {topic!r} does not exist on {servers}: create it first "
            "(ensure_topics, ordermon run) or give a partition count"
        )
    stream = await asyncio.to_thread(open_events, path)
    producer = AIOKafkaProducer(
        bootstrap_servers=servers,
        client_id="ordermon-produce",
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
        partitioner=DefaultPartitioner(),
    )
    try:
        await producer.start()
    except Exception as exc:
        await producer.stop()
        if stream is not sys.stdin.buffer:
            stream.close()
        raise BrokerUnavailable(f"cannot start a producer on {servers}: {exc}") from exc
    key_of = key_extractor(key_field)
    n_parts = len(await producer.partitions_for(topic))
    bucket = TokenBucket(rate) if rate else None
    c = {"produced": 0, "failed": 0, "blank": 0, "null_keys": 0, "bytes": 0}
    first_error: list[str] = []
    pending: list[asyncio.Future[Any]] = []

    async def drain() -> None:
        for r in await asyncio.gather(*pending, return_exceptions=True):
            if isinstance(r, BaseException):
                c["failed"] += 1
                if not first_error:
                    first_error.append(f"{type(r).__name__}: {r}")
            else:
                c["produced"] += 1
        pending.clear()

    t0 = time.monotonic()
    try:
        async with contextlib.aclosing(read_lines(stream)) as src:
            async for line in src:
                if not line.strip():
                    c["blank"] += 1
                    continue
                if bucket is not None and (wait := bucket.take()) > 0.002:
                    await asyncio.sleep(wait)  # rate limit, not synchronisation
                key = key_of(line)
                c["null_keys"] += key is None
                c["bytes"] += len(line)
                try:
                    part = None if key is not None else null_key_partition(line, n_parts)
                    pending.append(await producer.send(topic, line, key=key, partition=part))
                except Exception as exc:  # e.g. larger than max_request_size
                    c["failed"] += 1
                    if not first_error:
                        first_error.append(f"{type(exc).__name__}: {exc}")
                if len(pending) >= FLUSH_EVERY:
                    await drain()
        await drain()
    finally:
        await producer.stop()  # flushes what is still buffered
        if stream is not sys.stdin.buffer:
            stream.close()
    seconds = time.monotonic() - t0
    lines = c["produced"] + c["failed"]
    return {
        "topic": topic,
        "lines": lines,
        **c,
        "seconds": round(seconds, 3),
        "events_per_second": round(lines / seconds, 1) if seconds > 0 else 0.0,
        "first_error": first_error[0] if first_error else None,
    }
