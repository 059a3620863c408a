"""The embedded broker: starts, answers Kafka requests, stops without leaving a process."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.broker import (
    BrokerUnavailable,
    EmbeddedBroker,
    bootstrap_of,
    free_port,
    probe_metadata,
    wait_for_broker,
)
from streams.topics import ensure_topics, topic_partitions
from tests.integration.conftest import process_gone, run

ROOT = Path(__file__).resolve().parents[2]


def test_start_stop_leaves_no_process(tmp_path):
    b = EmbeddedBroker(log_path=tmp_path / "b.log")
    with b:
        pid = b.pid
        assert pid is not None and b.running
        assert os.getpgid(pid) == pid  # its own process group
        assert b.bootstrap == f"127.0.0.1:{b.port}" and b.url == f"kafka://127.0.0.1:{b.port}"
        nodes, cluster = probe_metadata("127.0.0.1", b.port)
        assert nodes[0][1:] == ("127.0.0.1", b.port) and cluster == b.cluster_id
    assert not b.running and b.pid is None
    assert process_gone(pid)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # nothing left in its group either
    assert "tansu broker" in (tmp_path / "b.log").read_text()
    b.stop()  # idempotent


def test_stop_is_prompt_with_clients_connected(tmp_path):
    # Tansu waits 5 s for connected clients on SIGTERM; stop() uses SIGINT (exits at once).
    with EmbeddedBroker(log_path=tmp_path / "b.log") as b:
        proc = b.proc
        assert proc is not None
        with socket.create_connection((b.host, b.port)):
            t0 = time.monotonic()
            b.stop(timeout=3)
            took = time.monotonic() - t0
    assert proc.returncode == 0 and took < 2  # exited by itself: not SIGKILLed


def test_restart_keeps_port_and_loses_data(tmp_path):
    with EmbeddedBroker(log_path=tmp_path / "b.log") as b:
        port, pid = b.port, b.pid
        assert run(ensure_topics(b.bootstrap, {"before-restart": 2})) == {"before-restart": 2}
        b.restart()
        assert b.port == port and b.pid != pid and process_gone(pid)
        assert run(topic_partitions(b.bootstrap, ["before-restart"])) == {}  # memory storage
        assert run(ensure_topics(b.bootstrap, {"before-restart": 2})) == {"before-restart": 2}
        last = b.pid
    assert last is not None and process_gone(last)


def test_fixed_port_in_use_fails_clearly(broker, tmp_path):
    b = EmbeddedBroker(port=broker.port, log_path=tmp_path / "b.log", start_timeout=5)
    with pytest.raises(BrokerUnavailable, match="did not become ready"):
        b.start()
    assert not b.running


def test_wait_for_unreachable_broker_times_out():
    with pytest.raises(BrokerUnavailable, match="no Kafka broker"):
        wait_for_broker(f"127.0.0.1:{free_port()}", timeout=0.3)


def test_wait_for_running_broker(broker):
    assert wait_for_broker(broker.url, timeout=5) < 5


@pytest.mark.parametrize(
    ("given", "want"),
    [
        ("kafka://127.0.0.1:9092", "127.0.0.1:9092"),
        ("127.0.0.1:1234", "127.0.0.1:1234"),
        ("localhost", "localhost:9092"),
        ("kafka://a:1,kafka://b:2/", "a:1,b:2"),
    ],
)
def test_bootstrap_of(given, want):
    assert bootstrap_of(given) == want


def _exited(pid: int, timeout: float) -> bool:
    """Wait for a process that is not our child to exit (pidfd: an event, not polling)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux pidfd")
def test_broker_dies_with_a_killed_owner(tmp_path):
    code = (
        "import sys; from streams.broker import EmbeddedBroker\n"
        f"b = EmbeddedBroker(log_path={str(tmp_path / 'b.log')!r}).start()\n"
        "print(b.pid, flush=True); sys.stdin.read()\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT
    )
    try:
        assert owner.stdout is not None
        broker_pid = int(owner.stdout.readline())
        assert not _exited(broker_pid, 0)
        owner.kill()  # SIGKILL: no atexit, no stop(); PR_SET_PDEATHSIG must do it
        owner.wait(10)
        assert _exited(broker_pid, 10)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
