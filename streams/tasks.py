"""Per-partition state of the three stages, with what exactness needs: no I/O, no faust.

The faust agents (``streams.app``) are thin: they hand messages to these objects, send what
the objects return, and checkpoint ``snapshot()`` into a table. The rules that make the
stream's state exact under at-least-once delivery live here, where a unit test can reach
them without a broker:

- ``IngestTask`` (one per input partition): skips input offsets its state already covers
  (``offset``), numbers the facts it emits per destination partition (``seq``), and
  batches them: one Kafka record per destination carries ``[src, first_seq, facts]``.
  Facts are a deterministic function of the input and the state, so a partition replayed
  after a crash re-emits the same facts under the same numbers.
- ``WindowTask`` (one per facts partition): applies each source's facts in sequence order
  and skips numbers it has applied (``applied``): re-emitted facts are no-ops. A record
  whose first number lies *beyond* the next expected one is refused (``gaps``): the
  numbers between were in a send that failed, and the failed worker's replay brings them
  again, in order. Partials are numbered per windowing partition likewise (``sent``).
- ``DetectTask`` (the one partials partition): ``Detection.add`` ignores a partial for a
  (window, partition) it has seen; a partial numbered beyond the next expected one is
  refused until the replay brings the missing ones. Alerts it re-emits after a crash are
  identical records (same ``alert_id``): the delivery side de-duplicates by
  ``(alert_id, status)``.

A checkpoint is taken only with no facts buffered (``IngestTask.take`` first), so the state
and the sequence numbers it records always agree.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiokafka.partitioner import murmur2

from monitor.model import Alert, Rejection
from monitor.pipeline import Detection, MonitorParams, partial_from_wire, partial_to_wire
from monitor.stages import TICK, Ingest, Partial, Windowing, fact_publisher

log = structlog.get_logger("ordermon.stream")
IDLE = -1  # first_seq of an out-of-band record: [src, IDLE, idle: bool]
ROUTE_MEMO = 100_000  # publisher -> facts partition memo; cleared when full (bounded memory)


def partition_for(key: bytes, partitions: int) -> int:
    """The Java client's (and librdkafka murmur2_random's) partition of a key."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class IngestTask:
    """Decode/lifecycle/clock for input partition ``partition``; facts routed by publisher."""

    def __init__(self, params: MonitorParams, partition: int, fact_partitions: int,
                 evict_every_s: float = 86400.0) -> None:  # fmt: skip
        self.partition = partition
        self.n_out = fact_partitions
        self.ingest = Ingest(params, ticks=True, evict_every_s=evict_every_s)
        self.offset = -1  # the last input offset this state includes
        self.seq = [0] * fact_partitions  # next sequence number per facts partition
        self.buf: dict[int, tuple[int, list[tuple]]] = {}
        self.skipped = 0  # replayed offsets the state already covered
        self.gaps: list[tuple[int, int]] = []  # (expected, got): offsets never seen
        self._route: dict[str, int] = {}

    def _partition_of(self, pub: str) -> int:
        q = self._route.get(pub)
        if q is None:
            if len(self._route) >= ROUTE_MEMO:  # a flood of publisher ids must not grow it
                self._route.clear()
            q = self._route[pub] = partition_for(pub.encode(), self.n_out)
        return q

    def process(self, raw: bytes, offset: int) -> Rejection | None:
        """One input message; ``None`` also for an offset already covered (``skipped``)."""
        if offset <= self.offset:
            self.skipped += 1
            return None
        if offset != self.offset + 1 and len(self.gaps) < 100:
            self.gaps.append((self.offset + 1, offset))
        self.offset = offset
        ingest = self.ingest
        rej = ingest.process(raw, self.partition)
        for f in ingest.out:
            if f[0] == TICK:
                for q in range(self.n_out):
                    self._add(q, f)
                continue
            pub = fact_publisher(f)
            self._add(self._partition_of(pub) if pub is not None else self.partition % self.n_out,
                      f)  # fmt: skip
        ingest.out.clear()
        return rej

    def _add(self, q: int, fact: tuple) -> None:
        entry = self.buf.get(q)
        if entry is None:
            entry = self.buf[q] = (self.seq[q], [])
        entry[1].append(fact)
        self.seq[q] += 1

    def take(self) -> list[tuple[int, list[Any]]]:
        """``[(facts partition, [src, first_seq, facts])]`` buffered since the last take."""
        out = [(q, [self.partition, first, facts]) for q, (first, facts) in self.buf.items()]
        self.buf = {}
        return out

    @property
    def clock(self) -> float | None:
        g = self.ingest.guards.get(self.partition)
        return g.clock if g else None

    def snapshot(self) -> dict[str, Any]:
        if self.buf:
            raise RuntimeError("take() the buffered facts before a checkpoint")
        return {"ingest": self.ingest.snapshot(), "offset": self.offset, "seq": self.seq}

    def restore(self, snap: dict[str, Any]) -> None:
        self.ingest.restore(snap["ingest"])
        self.offset = snap["offset"]
        self.seq = list(snap["seq"])
        self.buf = {}


class WindowTask:
    """Event-time windows of facts partition ``part``; partials out."""

    def __init__(self, params: MonitorParams, part: int, sources: int) -> None:
        self.windowing = Windowing(params, part, expected_sources=sources, idle_after_s=None)
        self.applied: dict[int, int] = {}  # source -> last applied sequence number
        self.offset = -1  # the last facts-topic offset this state includes
        self.redelivered = 0
        self.gaps = 0  # facts records refused: numbers before them never arrived
        self.sent = 0  # partials numbered so far (the detection side skips repeats, sees gaps)

    def apply(self, record: list[Any], offset: int = -1) -> None:
        """One facts record: ``[src, first_seq, facts]`` or ``[src, IDLE, idle]``."""
        if offset >= 0:
            self.offset = max(self.offset, offset)
        src, first = record[0], record[1]
        if first == IDLE:
            self.windowing.set_idle(src, bool(record[2]))
            return
        facts = record[2]
        last = self.applied.get(src, -1)
        start = last + 1 - first
        if start >= len(facts):
            self.redelivered += len(facts)
            return
        if start < 0:
            # numbers missing: a send failed while later ones succeeded. Applying this
            # record would make the missing facts look like repeats when the failed
            # worker replays them, so it is refused; the replay brings it again in order
            self.gaps += 1
            log.error("facts_gap_refused", source=src, expected=last + 1, got=first,
                      offset=offset)  # fmt: skip
            return
        self.redelivered += start
        apply = self.windowing.apply
        for f in facts[start:] if start else facts:
            apply(f)
        self.applied[src] = first + len(facts) - 1

    def take(self) -> list[Partial]:
        out, self.windowing.out = self.windowing.out, []
        return out

    def take_numbered(self) -> list[tuple[int, Partial]]:
        """The partials with their numbers: a deterministic function of the facts and
        the state, so a replay after a crash sends the same partial under the same number."""
        out = [(self.sent + i, p) for i, p in enumerate(self.take())]
        self.sent += len(out)
        return out

    def snapshot(self) -> dict[str, Any]:
        if self.windowing.out:
            raise RuntimeError("take() the partials before a checkpoint")
        return {
            "windowing": self.windowing.snapshot(),
            "applied": [[k, v] for k, v in self.applied.items()],
            "offset": self.offset,
            "sent": self.sent,
        }

    def restore(self, snap: dict[str, Any]) -> None:
        self.windowing.restore(snap["windowing"])
        self.applied = {k: v for k, v in snap["applied"]}
        self.offset = snap["offset"]
        self.sent = snap.get("sent", 0)


class DetectTask:
    """Detection over the partials of ``parts`` windowing partitions; alerts out."""

    def __init__(self, params: MonitorParams, parts: int) -> None:
        self.params = params
        self.detection = Detection(params, parts)
        self.offset = -1
        self.next_seq: dict[int, int] = {}  # windowing partition -> next partial number
        self.gaps = 0  # partials refused: numbers before them never arrived

    def apply(self, wire: dict[str, Any], offset: int = -1) -> list[tuple[int, float]]:
        if offset >= 0:
            self.offset = max(self.offset, offset)
        seq = wire.pop("seq", None)
        if seq is not None:
            part = wire["part"]
            expected = self.next_seq.get(part, 0)
            if seq > expected:  # see WindowTask.apply: refused until the replay
                self.gaps += 1
                log.error("partials_gap_refused", part=part, expected=expected, got=seq,
                          offset=offset)  # fmt: skip
                return []
            if seq == expected:  # (a lower number is a replay: Detection.add skips it)
                self.next_seq[part] = seq + 1
        return self.detection.add(partial_from_wire(wire, self.params.window_s))

    def take(self) -> list[Alert]:
        return self.detection.take_alerts()

    def snapshot(self) -> dict[str, Any]:
        return {"detection": self.detection.snapshot(), "offset": self.offset,
                "next_seq": [[k, v] for k, v in self.next_seq.items()]}  # fmt: skip

    def restore(self, snap: dict[str, Any]) -> None:
        self.detection.restore(snap["detection"])
        self.offset = snap["offset"]
        self.next_seq = {k: v for k, v in snap.get("next_seq", [])}


__all__ = ["IDLE", "DetectTask", "IngestTask", "WindowTask", "partial_to_wire", "partition_for"]
