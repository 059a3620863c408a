"""The stream topology in one process, without Kafka: the reference a stream run must match.

``run_partitioned`` routes input lines as the producer does (murmur2 of ``order_id``, over
``partitions``), runs an ``IngestTask`` per input partition, a ``WindowTask`` per facts
partition and one ``DetectTask``, with records passed through their wire encoding, the
partitions interleaved in chunks drawn from ``seed`` (any interleaving gives the same
alerts: the tests check that too), and, at the end, every input partition marked idle as a
worker does once the input is drained. With one input partition the result equals
``ordermon replay`` on the same lines before its final flush.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

import msgspec

from monitor.model import Alert
from monitor.pipeline import MonitorParams, partial_to_wire
from streams.produce import key_extractor, null_key_partition
from streams.tasks import IDLE, DetectTask, IngestTask, WindowTask, partition_for


def split_by_partition(lines: Iterable[bytes], partitions: int) -> list[list[bytes]]:
    """Lines per input partition, routed like ``produce_file`` (lines without a key by
    ``null_key_partition``)."""
    key = key_extractor()
    parts: list[list[bytes]] = [[] for _ in range(partitions)]
    for line in lines:
        if not line.strip():
            continue
        k = key(line)
        p = partition_for(k, partitions) if k else null_key_partition(line, partitions)
        parts[p].append(line)
    return parts


def run_partitioned(
    lines: Iterable[bytes],
    partitions: int,
    params: MonitorParams | None = None,
    seed: int = 0,
    max_chunk: int = 5000,
) -> tuple[list[Alert], int]:
    """The alerts, and the last window detection closed."""
    params = params or MonitorParams()
    parts = split_by_partition(lines, partitions)
    P = partitions
    ingest = [IngestTask(params, p, P) for p in range(P)]
    windowing = [WindowTask(params, q, P) for q in range(P)]
    detect = DetectTask(params, P)
    enc, dec = msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder()
    alerts: list[Alert] = []

    def to_windowing(q: int, record: list) -> None:
        windowing[q].apply(dec.decode(enc.encode(record)))
        for partial in windowing[q].take():
            detect.apply(dec.decode(enc.encode(partial_to_wire(partial))))
            alerts.extend(detect.take())

    rng = random.Random(seed)
    pos = [0] * P
    while any(pos[p] < len(parts[p]) for p in range(P)):
        p = rng.randrange(P)
        end = min(len(parts[p]), pos[p] + rng.randint(1, max_chunk))
        for i in range(pos[p], end):
            ingest[p].process(parts[p][i], i)
        pos[p] = end
        for q, record in ingest[p].take():
            to_windowing(q, record)
    for p in range(P):
        for q in range(P):
            to_windowing(q, [p, IDLE, True])
    return alerts, detect.detection.closed_through
