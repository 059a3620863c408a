"""The stream topology's pure parts, without a broker: partitioned stages agree with the
one-process monitor, do not depend on how partitions interleave, and survive a crash
(state restored from a checkpoint, input replayed) with the same alerts."""

from __future__ import annotations

import msgspec
import pytest

from monitor.pipeline import Monitor, MonitorParams, partial_to_wire
from monitor.stall import StallDetector
from streams.checkpoint import CheckpointStore
from streams.reference import run_partitioned, split_by_partition
from streams.tasks import IDLE, DetectTask, IngestTask, WindowTask


def key(a):
    return (a.alert_id, a.status, a.kind, a.window_start, a.window_end)


@pytest.fixture(scope="module")
def lines(tmp_path_factory):
    from monitor.simulate import simulate

    out = tmp_path_factory.mktemp("sim")
    simulate(3, out, publishers=150, days=1.0)
    return [ln for ln in (out / "events.jsonl").read_bytes().splitlines() if ln.strip()]


@pytest.fixture(scope="module")
def replayed(lines):
    mon, alerts = Monitor(), []
    for line in lines:
        mon.process(line)
        alerts += mon.take_alerts()
    return alerts


def test_one_input_partition_equals_the_one_process_monitor(lines, replayed):
    alerts, _ = run_partitioned(lines, 1)
    assert [key(a) for a in alerts] == [key(a) for a in replayed]
    assert len(replayed) >= 5


def test_partitioned_alerts_do_not_depend_on_interleaving(lines):
    runs = [{key(a) for a in run_partitioned(lines, 4, seed=s, max_chunk=c)[0]}
            for s, c in ((0, 5000), (1, 7), (2, 30000))]  # fmt: skip
    assert runs[0] == runs[1] == runs[2] and runs[0]


def test_crash_and_restore_mid_stream_gives_the_same_alerts(lines):
    """Every task checkpoints at its own points; at a 'crash' all in-memory state is lost,
    tasks restore their last checkpoint and their inputs are re-delivered from there;
    outputs produced after a checkpoint are delivered again downstream (at least once)."""
    P, params = 4, MonitorParams()
    enc, dec = msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder()
    want, _ = run_partitioned(lines, P, params)
    parts = split_by_partition(lines, P)
    crash_at = sum(len(x) for x in parts) // 2

    facts_log: list[list] = [[] for _ in range(P)]  # the facts topic: one log per partition
    partials_log: list[dict] = []
    ing = [IngestTask(params, p, P) for p in range(P)]
    win = [WindowTask(params, q, P) for q in range(P)]
    det = DetectTask(params, P)
    ckpt: dict = {}
    win_pos, det_pos = [0] * P, 0
    alerts = []

    def save(name, task, pos):
        ckpt[name] = (dec.decode(enc.encode(task.snapshot())), pos)

    def pump():
        nonlocal det_pos
        for q in range(P):
            while win_pos[q] < len(facts_log[q]):
                win[q].apply(dec.decode(enc.encode(facts_log[q][win_pos[q]])))
                win_pos[q] += 1
                partials_log.extend(partial_to_wire(x) for x in win[q].take())
                if win_pos[q] % 50 == 0:
                    save(f"w{q}", win[q], win_pos[q])
        while det_pos < len(partials_log):
            det.apply(dec.decode(enc.encode(partials_log[det_pos])))
            det_pos += 1
            alerts.extend(det.take())
            if det_pos % 7 == 0:
                save("d", det, det_pos)

    pos, done, crashed = [0] * P, 0, False
    while any(pos[p] < len(parts[p]) for p in range(P)):
        for p in range(P):
            for i in range(pos[p], min(len(parts[p]), pos[p] + 997)):
                ing[p].process(parts[p][i], i)
                done += 1
            pos[p] = min(len(parts[p]), pos[p] + 997)
            for q, rec in ing[p].take():
                facts_log[q].append(rec)
            if pos[p] % 3 == 0:
                save(f"i{p}", ing[p], pos[p])
            pump()
        if not crashed and done >= crash_at:
            crashed = True
            ing = [IngestTask(params, p, P) for p in range(P)]
            win = [WindowTask(params, q, P) for q in range(P)]
            det = DetectTask(params, P)
            for p in range(P):
                if f"i{p}" in ckpt:
                    ing[p].restore(ckpt[f"i{p}"][0])
                    pos[p] = ckpt[f"i{p}"][1]
                else:
                    pos[p] = 0
            for q in range(P):
                if f"w{q}" in ckpt:
                    win[q].restore(ckpt[f"w{q}"][0])
                win_pos[q] = ckpt[f"w{q}"][1] if f"w{q}" in ckpt else 0
            if "d" in ckpt:
                det.restore(ckpt["d"][0])
            det_pos = ckpt["d"][1] if "d" in ckpt else 0
    for p in range(P):
        for q in range(P):
            facts_log[q].append([p, IDLE, True])
    pump()
    assert crashed
    assert {key(a) for a in alerts} == {key(a) for a in want}
    assert sum(t.skipped for t in ing) == 0  # positions restart exactly after the checkpoint
    assert sum(w.redelivered for w in win) > 0  # re-emitted facts were recognised


class FakeTable:
    def __init__(self):
        self.data: dict = {}
        self.changelog: list = []

    def send_changelog(self, partition, key, value):
        self.changelog.append((partition, key, value))


def test_checkpoint_round_trip_in_chunks_and_a_torn_write_keeps_the_last_good_one():
    table = FakeTable()
    store = CheckpointStore(table, chunk=64)
    snap = {"offset": 41, "blob": list(range(500))}
    size = store.save(3, snap)
    assert size > 64 and store.load(3) == snap
    assert {p for p, _, _ in table.changelog} == {3}  # the state's own partition
    good = dict(table.data)
    store.save(3, {"offset": 99, "blob": list(range(900, 1400))})
    # a worker killed before the header: the chunks of the new generation are there,
    # its header is not
    torn = {k: v for k, v in table.data.items() if k != "3"}
    table.data = {**torn, "3": good["3"]}
    assert CheckpointStore(table).load(3) == snap
    assert CheckpointStore(table).load(4) is None


def test_stall_fires_after_implausible_silence_and_resolves_when_events_return():
    s = StallDetector(min_s=30.0, factor=10.0)
    for t in range(0, 100):
        s.arrival(t * 5.0)  # an event every 5 s: 50 s of silence is plausible
    assert s.check(495.0 + 45.0) is None
    fired = s.check(495.0 + 51.0)
    assert fired is not None and fired.status == "firing" and fired.bound_s == 50.0
    assert s.check(600.0) is None  # fires once
    s.arrival(601.0)
    resolved = s.check(601.0)
    assert resolved is not None and resolved.status == "resolved"


def test_a_lost_facts_send_is_refused_downstream_and_replayed_in_order(lines):
    """A facts record whose send failed while later ones reached the topic (a gap): the
    windowing stage refuses what lies beyond the gap; the failed worker restarts from its
    last checkpoint written before the failure (``SendGate`` writes none after it) and
    re-emits the lost facts under the same numbers: the alerts are those of a clean run."""
    P, params = 2, MonitorParams()
    enc, dec = msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder()
    want, _ = run_partitioned(lines, P, params)
    parts = split_by_partition(lines, P)
    facts_log: list[list] = [[] for _ in range(P)]
    ing = [IngestTask(params, p, P) for p in range(P)]
    win = [WindowTask(params, q, P) for q in range(P)]
    det = DetectTask(params, P)
    win_pos = [0] * P
    alerts: list = []
    ckpt: dict[int, tuple[dict, int]] = {}
    sent, lose_at, failed = 0, 40, False

    def pump() -> None:
        for q in range(P):
            while win_pos[q] < len(facts_log[q]):
                win[q].apply(dec.decode(enc.encode(facts_log[q][win_pos[q]])))
                win_pos[q] += 1
                for seq, partial in win[q].take_numbered():
                    wire = partial_to_wire(partial) | {"seq": seq}
                    det.apply(dec.decode(enc.encode(wire)))
                    alerts.extend(det.take())

    def run_ingest(p: int, start: int) -> None:
        nonlocal sent, failed
        for lo in range(start, len(parts[p]), 500):
            for i in range(lo, min(lo + 500, len(parts[p]))):
                ing[p].process(parts[p][i], i)
            for q, rec in ing[p].take():
                sent += 1
                if sent == lose_at:
                    failed = True  # this send fails; the ones after it succeed
                    continue
                facts_log[q].append(rec)
            if not failed:  # the gate writes no checkpoint behind a failed send
                ckpt[p] = (dec.decode(enc.encode(ing[p].snapshot())), lo + 500)
            pump()

    for p in range(P):
        run_ingest(p, 0)
    assert failed and sum(w.gaps for w in win) > 0  # records beyond the gap were refused
    # the worker restarts: ingest state from its last checkpoint, input replayed from there
    for p in range(P):
        ing[p] = IngestTask(params, p, P)
        start = 0
        if p in ckpt:
            ing[p].restore(ckpt[p][0])
            start = ckpt[p][1]
        run_ingest(p, start)
    for p in range(P):
        for q in range(P):
            facts_log[q].append([p, IDLE, True])
    pump()
    assert {key(a) for a in alerts} == {key(a) for a in want}
    assert det.gaps == 0 and len(want) >= 5


def test_checkpoints_written_before_a_fresh_restart_are_ignored_and_numbering_goes_on():
    table = FakeTable()
    old = CheckpointStore(table)
    old.save(0, {"offset": 500})  # by the process that noticed the data loss too late
    since = max(msgspec.msgpack.decode(table.data["0"])["at"], 0.0) + 1e-6
    fresh = CheckpointStore(table, not_before=since)
    assert fresh.load(0) is None and fresh.ignored[0]["partition"] == 0
    fresh.save(0, {"offset": 7})  # written after the restart: used
    assert CheckpointStore(table, not_before=since).load(0) == {"offset": 7}
    assert msgspec.msgpack.decode(table.data["0"])["gen"] == 2  # the other slot
    assert CheckpointStore(table).load(0) == {"offset": 7}
