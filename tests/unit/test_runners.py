"""Checkpoint cadence of a stage's partition: periodic, but never more than a bounded
share of the time when snapshots get slow."""

from __future__ import annotations

from typing import Any

from streams.runners import COST_FACTOR, MAX_STRETCH_S, PartitionRunner


class _Store:
    def __init__(self) -> None:
        self.saves = 0

    def load(self, part: int) -> Any:
        return None

    @staticmethod
    def pack(snap: Any) -> bytes:
        return b""

    def write(self, part: int, payload: bytes) -> None:
        self.saves += 1

    def forget(self, part: int) -> None:
        pass


class _Task:
    def snapshot(self) -> dict[str, int]:
        return {}


class _Event:
    def __init__(self) -> None:
        self.acked = False

    def ack(self) -> None:
        self.acked = True


def test_periodic_checkpoints_space_out_when_a_checkpoint_is_slow() -> None:
    store = _Store()
    r = PartitionRunner("ingest", store, lambda p: _Task(), lambda *_: None, 5.0, 10**9)  # type: ignore[arg-type]
    r.task(0)
    r.last_ckpt[0] = 0.0
    r.done(0, _Event(), 5.0)  # due after every_s
    assert store.saves == 1
    r.cost[0] = 3.0  # the last snapshot took 3 s: the next waits COST_FACTOR * 3 s
    r.last_ckpt[0] = 5.0
    held = [_Event() for _ in range(3)]
    r.done(0, held[0], 10.0)
    r.done(0, held[1], 5.0 + COST_FACTOR * 3.0 - 0.1)
    assert store.saves == 1 and not any(e.acked for e in held)
    r.done(0, held[2], 5.0 + COST_FACTOR * 3.0)
    assert store.saves == 2 and all(e.acked for e in held)
    # however slow, a partition is checkpointed at least every MAX_STRETCH_S
    r.cost[0] = 1000.0
    r.last_ckpt[0] = 100.0
    r.done(0, _Event(), 100.0 + MAX_STRETCH_S - 1)
    assert store.saves == 2
    r.done(0, _Event(), 100.0 + MAX_STRETCH_S)
    assert store.saves == 3


def test_quiet_and_shutdown_checkpoints_are_not_delayed_by_cost() -> None:
    store = _Store()
    r = PartitionRunner("ingest", store, lambda p: _Task(), lambda *_: None, 5.0, 10**9)  # type: ignore[arg-type]
    r.task(0)
    r.cost[0] = 50.0
    ev = _Event()
    r.done(0, ev, r.last_ckpt[0] + 1.0)
    r.checkpoint_all()
    assert store.saves == 1 and ev.acked


def test_the_record_of_partition_loads_stays_bounded_across_rebalances() -> None:
    from streams.runners import RESTORES_KEPT

    r = PartitionRunner("ingest", _Store(), lambda p: _Task(), lambda *_: None, 5.0, 10)  # type: ignore[arg-type]
    for i in range(RESTORES_KEPT + 50):  # a partition assigned, then revoked, again and again
        r.task(i % 4)
        r.revoke({i % 4})
    assert len(r.restores) == RESTORES_KEPT
    assert r.restores[-1]["partition"] == (RESTORES_KEPT + 49) % 4
