"""The worker's broker supervision (``streams.supervise``) and the soak's verdict, without a
broker: the stand-in status server answers over real HTTP, the watch is fed outcomes."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition

from streams.broker import free_port
from streams.supervise import BrokerWatch, RepeatFilter, StatusServer, restart_delay


def _get(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_status_server_says_not_ready_with_the_reason_and_frees_its_port() -> None:
    port = free_port()
    srv = StatusServer("127.0.0.1", port).start()
    try:
        srv.update(phase="connecting", reason="broker unreachable: refused", attempts=3)
        assert _get(port, "/healthz") == (200, {"status": "ok", "phase": "connecting"})
        code, body = _get(port, "/readyz")
        assert code == 503 and body == {"ready": False, "reason": "broker unreachable: refused"}
        code, st = _get(port, "/status")
        assert code == 200 and st["ready"] is False and st["attempts"] == 3 and "stages" not in st
    finally:
        srv.stop()
    again = StatusServer("127.0.0.1", port).start()  # the port is free for faust's server
    try:
        assert _get(port, "/readyz")[0] == 503
    finally:
        again.stop()


def _record(msg: str, name: str = "aiokafka.conn") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, None, None)


def test_repeat_filter_drops_repeats_then_counts_them(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("streams.supervise.time.monotonic", lambda: clock[0])
    flt = RepeatFilter(every_s=10.0)
    assert flt.filter(_record("Unable connect to node %s"))
    assert not flt.filter(_record("Unable connect to node %s"))
    assert not flt.filter(_record("Unable connect to node %s"))
    assert flt.filter(_record("Unable to update metadata"))  # another message
    assert flt.filter(_record("Unable connect to node %s", "faust.worker"))  # not aiokafka's
    clock[0] += 10.0
    rec = _record("Unable connect to node %s")
    assert flt.filter(rec) and "[2 repeats" in str(rec.msg)


def test_restart_delay_doubles_up_to_the_cap() -> None:
    assert [restart_delay(n, 5.0) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def _watch() -> tuple[BrokerWatch, SimpleNamespace, list[tuple[str, bool]]]:
    restarts: list[tuple[str, bool]] = []
    sa = SimpleNamespace(s=SimpleNamespace(broker="kafka://127.0.0.1:1"), unready_reason=None,
                         runners={}, app=None)  # fmt: skip
    watch = BrokerWatch(sa, lambda r, fresh: restarts.append((r, fresh)), stuck_after_s=60)
    return watch, sa, restarts


def test_watch_turns_an_outage_into_not_ready_and_logs_with_back_off() -> None:
    w, sa, _ = _watch()
    logged = []
    for t in range(12):  # a failed probe a second for 12 s
        before = w.next_log
        w.observe("ConnectionRefusedError", float(t))
        if w.next_log != before:
            logged.append(t)
        want = None if t == 0 else "broker unreachable: ConnectionRefusedError"
        assert sa.unready_reason == want  # not after one failed probe: after two
    assert logged == [0, 1, 3, 7]  # 1 s, 2 s, 4 s, 8 s apart
    w.observe(None, 12.0)
    assert sa.unready_reason is None and w.down_since is None and w.outages == 1


def test_watch_suspects_a_log_that_ends_below_what_was_processed() -> None:
    w, sa, restarts = _watch()
    tp, tp1 = TopicPartition("orders", 0), TopicPartition("orders", 1)
    hw = {0: 100, 1: 10}
    sa.runners = {"orders": SimpleNamespace(tasks={0: SimpleNamespace(offset=99),
                                                   1: SimpleNamespace(offset=50)})}  # fmt: skip
    sa.app = SimpleNamespace(consumer=SimpleNamespace(
        assignment=lambda: {tp, tp1}, highwater=lambda t: hw[t.partition]))  # fmt: skip
    w.remember()
    sa.runners["orders"].tasks.clear()  # revoked: what was processed is remembered
    assert w.suspects() == [("orders", 1)]  # 99 < 100 is fine; 50 >= 10 is not
    w.declare_lost("orders", 1, 10)
    assert "broker lost data" in sa.unready_reason
    assert restarts == [("orders:1 ends at 10, processed through 50", True)]  # fresh state


def test_watchdog_restarts_a_worker_stuck_unready_but_not_one_recovering_tables() -> None:
    w, _, restarts = _watch()
    for t in range(0, 200, 10):
        w.watchdog(False, "recovering table state", float(t))  # may take long: fine
    w.watchdog(True, "ok", 200.0)
    for t in range(200, 259):
        w.watchdog(False, "no partitions assigned (joining the group or rebalancing)", float(t))
    assert restarts == []
    w.watchdog(False, "no partitions assigned (joining the group or rebalancing)", 260.0)
    assert len(restarts) == 1 and restarts[0][1] is False  # keeps its state
    assert restarts[0][0].startswith("stuck (not ready for 60s: no partitions assigned")


def test_a_long_outage_restarts_the_worker_keeping_its_state_once() -> None:
    restarts: list[tuple[str, bool]] = []
    sa = SimpleNamespace(s=SimpleNamespace(broker="kafka://127.0.0.1:1"), unready_reason=None,
                         runners={}, app=None)  # fmt: skip
    w = BrokerWatch(sa, lambda r, fresh: restarts.append((r, fresh)), outage_restart_s=5.0)
    for t in range(5):
        w.observe("ConnectionRefusedError", float(t))
    assert restarts == []  # 4 s down: rides it out
    w.observe("ConnectionRefusedError", 5.0)
    assert restarts == [("broker unreachable for 5s", False)]
    assert sa.unready_reason == "broker unreachable for 5s; restarting"
    w.observe("ConnectionRefusedError", 6.0)
    assert len(restarts) == 1  # asked once
    # 0 (the unit default) never restarts for an outage
    w2, _, r2 = _watch()
    for t in range(100):
        w2.observe("ConnectionRefusedError", float(t))
    assert r2 == []
