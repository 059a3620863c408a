"""Input is acknowledged only behind outputs and a snapshot that reached the broker
(``streams.sendgate``), and a record after a lost one is refused until the replay."""

from __future__ import annotations

import asyncio
from typing import Any

from monitor.pipeline import MonitorParams
from streams.runners import PartitionRunner
from streams.sendgate import SendGate
from streams.tasks import DetectTask, WindowTask


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_callbacks_wait_for_every_send_tracked_before_them_in_order() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        gate, ran = SendGate(), []
        gate.after(lambda: ran.append("nothing pending"))
        assert ran == ["nothing pending"]  # at once
        a, b = loop.create_future(), loop.create_future()
        gate.track(a, "facts")
        gate.after(lambda: ran.append("behind a"))
        gate.track(b, "facts")
        gate.after(lambda: ran.append("behind a and b"))
        b.set_result(None)
        await asyncio.sleep(0)  # done callbacks run on the next loop turn
        assert ran == ["nothing pending"]  # b alone releases nothing: a is earlier
        a.set_result(None)
        assert await gate.settled(1.0)
        assert ran == ["nothing pending", "behind a", "behind a and b"]
        assert gate.completed == 2 and gate.pending() == 0

    run(body())


def test_a_callback_that_sends_holds_back_the_ones_after_it() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        gate, ran, second = SendGate(), [], loop.create_future()

        def write() -> None:  # like a checkpoint write: sends, then waits for them
            ran.append("write")
            gate.track(second, "checkpoint")
            gate.after(lambda: ran.append("ack"))

        first = loop.create_future()
        gate.track(first, "facts")
        gate.after(write)
        first.set_result(None)
        await asyncio.sleep(0)
        assert ran == ["write"]
        assert not await gate.settled(0.05)  # the ack waits for the write's send
        second.set_result(None)
        assert await gate.settled(1.0)
        assert ran == ["write", "ack"]

    run(body())


def test_a_failed_send_stops_the_gate_and_is_reported_once() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        failures: list[tuple[str, str]] = []
        gate, ran = SendGate(lambda what, exc: failures.append((what, str(exc)))), []
        futs = [loop.create_future() for _ in range(3)]
        for f in futs:
            gate.track(f, "alerts")
            gate.after(lambda: ran.append("acked"))
        futs[0].set_exception(RuntimeError("UnknownError"))
        futs[1].set_exception(RuntimeError("again"))
        futs[2].set_result(None)
        assert not await gate.settled(1.0)  # does not hang, says it failed
        gate.after(lambda: ran.append("later"))
        await asyncio.sleep(0)
        assert ran == [] and failures == [("alerts", "UnknownError")]
        assert gate.failed == "alerts: RuntimeError: UnknownError"

    run(body())


def test_sends_on_the_broker_are_counted_by_output_and_failures_are_not() -> None:
    """``/status``'s ``on_broker``: a reader of the alerts topic waits for it to reach the
    number of alerts sent (``streams.procs.detection_done``)."""

    async def body() -> None:
        loop = asyncio.get_running_loop()
        gate = SendGate(lambda what, exc: None)
        a1, a2, f1, bad = (loop.create_future() for _ in range(4))
        for fut, what in ((a1, "alerts"), (a2, "alerts"), (f1, "facts"), (bad, "facts")):
            gate.track(fut, what)
        a1.set_result(None)
        f1.set_result(None)
        await asyncio.sleep(0)
        assert gate.on_broker == {"alerts": 1, "facts": 1}  # a2 not acknowledged yet
        a2.set_result(None)
        bad.set_exception(RuntimeError("lost"))
        await asyncio.sleep(0)
        assert gate.on_broker == {"alerts": 2, "facts": 1}

    run(body())


class _Store:
    """A checkpoint table whose changelog writes are futures the test resolves."""

    def __init__(self, gate: SendGate, loop: asyncio.AbstractEventLoop) -> None:
        self.gate, self.loop = gate, loop
        self.written: list[bytes] = []
        self.sends: list[asyncio.Future[Any]] = []

    def load(self, part: int) -> None:
        return None

    @staticmethod
    def pack(snap: dict[str, Any]) -> bytes:
        return repr(snap).encode()

    def write(self, part: int, payload: bytes) -> None:
        self.written.append(payload)
        fut = self.loop.create_future()
        self.sends.append(fut)
        self.gate.track(fut, "checkpoint")

    def forget(self, part: int) -> None:
        pass


class _Task:
    def __init__(self) -> None:
        self.n = 0

    def snapshot(self) -> dict[str, int]:
        return {"n": self.n}


class _Event:
    def __init__(self) -> None:
        self.acked = False

    def ack(self) -> None:
        self.acked = True


def _runner(gate: SendGate, store: _Store, outputs: list[Any]) -> PartitionRunner:
    loop = store.loop

    def flush(part: int, task: _Task) -> None:  # one output record per checkpoint
        fut = loop.create_future()
        outputs.append(fut)
        gate.track(fut, "facts")

    return PartitionRunner("ingest", store, lambda p: _Task(), flush, 3600.0, 2, gate)  # type: ignore[arg-type]


def _start(r: PartitionRunner) -> Any:
    task = r.task(0)
    r.last_ckpt[0] = 0.0  # the tests pass now=0.0
    return task


def test_checkpoint_writes_after_outputs_and_acks_after_the_snapshot() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        gate, outputs = SendGate(), []
        store = _Store(gate, loop)
        r = _runner(gate, store, outputs)
        task = _start(r)
        events = [_Event(), _Event()]
        task.n = 1
        r.done(0, events[0], 0.0)
        r.done(0, events[1], 0.0)  # every_events=2: checkpoint
        task.n = 99  # state moves on before the write: the snapshot taken stays
        assert store.written == [] and r.unacked() == 2
        outputs[0].set_result(None)
        await asyncio.sleep(0)
        assert store.written == [b"{'n': 1}"] and not any(e.acked for e in events)
        store.sends[0].set_result(None)
        assert await gate.settled(1.0)
        assert all(e.acked for e in events) and r.unacked() == 0

    run(body())


def test_a_failed_output_writes_no_snapshot_and_acks_nothing() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        failed: list[str] = []
        gate, outputs = SendGate(lambda what, exc: failed.append(what)), []
        store = _Store(gate, loop)
        r = _runner(gate, store, outputs)
        _start(r)
        events = [_Event() for _ in range(4)]
        for e in events:
            r.done(0, e, 0.0)  # two checkpoints, two output records
        outputs[1].set_result(None)
        outputs[0].set_exception(RuntimeError("UnknownError"))
        assert not await gate.settled(1.0)
        assert failed == ["facts"] and store.written == []
        assert not any(e.acked for e in events)

    run(body())


def test_a_partition_revoked_before_its_write_writes_and_acks_nothing() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        gate, outputs = SendGate(), []
        store = _Store(gate, loop)
        r = _runner(gate, store, outputs)
        _start(r)
        events = [_Event(), _Event()]
        for e in events:
            r.done(0, e, 0.0)
        r.revoke({0})
        r.task(0)  # assigned again: a new task, restored from the table
        outputs[0].set_result(None)
        assert await gate.settled(1.0)
        assert store.written == [] and not any(e.acked for e in events)
        assert r.unacked() == 0

    run(body())


def test_partials_beyond_a_gap_are_refused_until_the_replay() -> None:
    params = MonitorParams()
    w = WindowTask(params, 0, 1)
    d = DetectTask(params, 1)
    from monitor.pipeline import partial_to_wire
    from monitor.stages import Partial
    from monitor.windows import WindowAcc

    def wire(seq: int, index: int) -> dict[str, Any]:
        x = partial_to_wire(Partial(0, WindowAcc(index, params.window_s), 0.0))
        x["seq"] = seq
        return x

    assert d.apply(wire(0, 10)) != []  # window 10 closes (one partition)
    assert d.apply(wire(2, 12)) == [] and d.gaps == 1  # number 1 (window 11) was lost
    assert d.detection.closed_through == 10
    closed = d.apply(wire(1, 11))  # the replay, in order
    assert [i for i, _ in closed] == [11]
    assert [i for i, _ in d.apply(wire(2, 12))] == [12]
    assert d.next_seq == {0: 3}
    # numbering survives a checkpoint
    d2 = DetectTask(params, 1)
    d2.restore(d.snapshot())
    assert d2.next_seq == {0: 3}
    assert w.take_numbered() == [] and w.sent == 0


class _Table:
    """A faust table as ``CheckpointStore`` uses it; changelog writes succeed at once."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop, self.data = loop, {}

    def send_changelog(self, part: int, key: str, value: bytes) -> asyncio.Future[None]:
        fut = self.loop.create_future()
        fut.set_result(None)
        return fut


def test_a_big_snapshot_is_compressed_off_the_loop_and_written_after_it() -> None:
    from streams.checkpoint import THREAD_PACK_BYTES, CheckpointStore

    class Big:
        def snapshot(self) -> dict[str, Any]:
            return {"blob": bytes(range(256)) * (THREAD_PACK_BYTES // 256 + 1)}

    async def body() -> None:
        loop = asyncio.get_running_loop()
        gate, table = SendGate(), _Table(loop)
        store = CheckpointStore(table)
        store.on_send = gate.track
        r = PartitionRunner("ingest", store, lambda p: Big(), lambda *_: None, 3600.0, 1, gate)
        _start(r)
        event = _Event()
        r.done(0, event, 0.0)
        assert table.data == {} and not event.acked  # compressing in the thread
        assert await gate.settled(10.0)
        assert event.acked and store.load(0) == Big().snapshot()
        assert store.sizes[0] < THREAD_PACK_BYTES // 10  # compressed

    run(body())


def test_completed_sends_do_not_accumulate() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        gate = SendGate()
        for _ in range(1000):  # sends with nothing waiting for them, completing in order
            fut = loop.create_future()
            gate.track(fut, "facts")
            fut.set_result(None)
            await asyncio.sleep(0)
        assert gate.completed == 1000 and not gate.open and len(gate._heap) <= 1

    run(body())
