"""One stage's partitions on one worker: state, unacknowledged messages, checkpoints.

The exactness protocol (see ``streams/README.md``):

1. a partition's task is created on its first message after an assignment and restored
   from the stage's checkpoint table (the state and the input offsets it covers);
2. every message is processed by the task (which skips offsets it already covers) and kept
   *unacknowledged*: faust commits only acknowledged offsets;
3. at a checkpoint (every ``every_s`` seconds or ``every_events`` messages, spaced out
   when checkpoints get slow, when the partition goes quiet, and at shutdown) the task's
   outputs are sent and its snapshot packed; the snapshot is written to the table once
   the outputs are on the broker, and the kept messages are acknowledged once the
   snapshot is (``streams.sendgate``: faust's commit flushes the producer but ignores a
   failed send, which would lose the output behind a committed offset);
4. when partitions are revoked, their tasks and kept messages are dropped unacknowledged:
   the next owner restores the checkpoint and re-reads from the committed offset, which is
   never past the checkpoint.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog

from streams.checkpoint import CheckpointStore
from streams.sendgate import SendGate

log = structlog.get_logger("ordermon.stream")
# A checkpoint snapshots the partition's whole state on the event loop: when that gets
# slow (millions of tracked orders), periodic checkpoints are spaced so they take at most
# 1/COST_FACTOR of the time, up to MAX_STRETCH_S apart (quiet and shutdown checkpoints are
# not delayed). Incremental checkpoints would remove the cost; this bounds its share.
COST_FACTOR = 10.0
MAX_STRETCH_S = 120.0
RESTORES_KEPT = 256


class PartitionRunner:
    def __init__(
        self,
        stage: str,
        store: CheckpointStore,
        make_task: Callable[[int], Any],
        flush: Callable[[int, Any], None],
        every_s: float,
        every_events: int,
        gate: SendGate | None = None,
    ) -> None:
        self.stage = stage
        self.gate = gate or SendGate()
        self.in_gate = 0  # messages checkpointed, waiting for the gate to acknowledge them
        self.store = store
        self.make_task = make_task
        self.flush = flush  # send a task's buffered outputs
        self.every_s = every_s
        self.every_events = every_events
        self.tasks: dict[int, Any] = {}
        self.held: dict[int, list[Any]] = {}
        self.last_ckpt: dict[int, float] = {}
        self.last_msg: dict[int, float] = {}
        # the last partition loads, for status and tests (bounded: one per load, and loads
        # come with every rebalance of a worker that runs for months)
        self.restores: deque[dict[str, Any]] = deque(maxlen=RESTORES_KEPT)
        self.messages = 0
        self.cost: dict[int, float] = {}  # seconds the partition's last checkpoint took
        # called with (stage, partition, task) once a task is loaded (metrics baselines)
        self.on_task: Callable[[str, int, Any], None] | None = None

    def task(self, part: int) -> Any:
        t = self.tasks.get(part)
        if t is None:
            t0 = time.monotonic()
            t = self.make_task(part)
            snap = self.store.load(part)
            if snap is not None:
                t.restore(snap)
            info = {"stage": self.stage, "partition": part, "restored": snap is not None,
                    "offset": getattr(t, "offset", None),
                    "seconds": round(time.monotonic() - t0, 3)}  # fmt: skip
            self.restores.append(info)
            log.info("partition_state_loaded", **info)
            self.tasks[part] = t
            self.held[part] = []
            if self.on_task is not None:
                self.on_task(self.stage, part, t)
            self.last_ckpt[part] = time.monotonic()
        return t

    def done(self, part: int, event: Any, now: float) -> None:
        """The task has processed ``event``; checkpoint when due."""
        held = self.held[part]
        held.append(event)
        self.last_msg[part] = now
        self.messages += 1
        since = now - self.last_ckpt[part]
        if (len(held) >= self.every_events or since >= self.every_s) and since >= min(
            COST_FACTOR * self.cost.get(part, 0.0), MAX_STRETCH_S
        ):
            self.checkpoint(part, now)

    def checkpoint(self, part: int, now: float | None = None) -> None:
        """Send the task's outputs and pack its snapshot now; write the snapshot once the
        outputs are on the broker, and acknowledge the messages it covers once the
        snapshot is (``SendGate``). A task revoked meanwhile writes and acknowledges
        nothing: its next owner replays from the committed offset."""
        task = self.tasks.get(part)
        if task is None:
            return
        t0 = time.monotonic()
        self.flush(part, task)
        pack = getattr(self.store, "pack_soon", self.store.pack)
        payload = pack(task.snapshot())
        packed_s = time.monotonic() - t0  # the event loop's share (compression may follow)
        held, self.held[part] = self.held[part], []
        self.in_gate += len(held)
        gate = self.gate
        if not isinstance(payload, bytes):  # compressing in a thread: written after it
            gate.track(payload, "checkpoint packing")

        def ack() -> None:
            self.in_gate -= len(held)
            if self.tasks.get(part) is task:
                for event in held:
                    event.ack()

        def write() -> None:
            if self.tasks.get(part) is not task:
                self.in_gate -= len(held)
                return
            t1 = time.monotonic()
            self.store.write(part, payload if isinstance(payload, bytes) else payload.result())
            self.cost[part] = packed_s + time.monotonic() - t1
            gate.after(ack)

        gate.after(write)
        self.last_ckpt[part] = time.monotonic() if now is None else now

    def checkpoint_quiet(self, now: float, quiet_s: float) -> None:
        """Checkpoint partitions with unacknowledged messages that have gone quiet."""
        for part, held in list(self.held.items()):
            if held and now - self.last_msg.get(part, 0.0) >= quiet_s:
                self.checkpoint(part, now)

    def checkpoint_all(self) -> None:
        for part, held in list(self.held.items()):
            if held:
                self.checkpoint(part)

    def revoke(self, parts: set[int] | None = None) -> None:
        """Forget partitions (all if None) without acknowledging their messages."""
        for part in list(self.tasks) if parts is None else parts:
            self.tasks.pop(part, None)
            self.held.pop(part, None)
            self.last_ckpt.pop(part, None)
            self.cost.pop(part, None)
            self.store.forget(part)

    def unacked(self) -> int:
        """Messages not acknowledged yet: held for the next checkpoint, or checkpointed
        and waiting for their outputs and snapshot to reach the broker."""
        return sum(len(h) for h in self.held.values()) + self.in_gate
