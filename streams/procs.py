"""``ordermon run`` workers as subprocesses, for the stream tests and the benchmark.

Each worker has its own process group (SIGKILL reaches everything it started), dies with
the test process (PR_SET_PDEATHSIG), its own web port and data dir, and logs to a file.
Synchronisation is by polling ``/status`` against a deadline (with back-off), never by
sleeping a fixed time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streams.broker import free_port, set_pdeathsig

ROOT = Path(__file__).resolve().parents[1]


def write_config(path: Path, **stream: Any) -> Path:
    """A TOML config with a ``[stream]`` section."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["[stream]"]
    for k, v in stream.items():
        val = ("true" if v else "false") if isinstance(v, bool) else json.dumps(v)
        lines.append(f"{k} = {val}")
    path.write_text("\n".join(lines) + "\n")
    return path


class WorkerProc:
    def __init__(self, broker_url: str, config: Path, workdir: Path, name: str = "w") -> None:
        self.broker_url = broker_url
        self.config = config
        self.workdir = workdir
        self.name = name
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> WorkerProc:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        cmd = [sys.executable, "-m", "monitor.cli", "run", "--broker", self.broker_url,
               "--config", str(self.config), "--web-port", str(self.port), "--embedded",
               "--datadir", str(self.workdir / f"{self.name}-data")]  # fmt: skip
        env = os.environ | {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=set_pdeathsig,
            )  # fmt: skip
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def status(self) -> dict[str, Any] | None:
        """``/status``: faust's page, or (with a ``phase`` and no ``stages``) the stand-in
        ``streams.supervise.StatusServer`` answering while faust is not running."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status", timeout=2) as r:
                return json.loads(r.read())  # type: ignore[no-any-return]
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def readyz(self) -> tuple[int | None, dict[str, Any]]:
        """``/readyz``: (HTTP status, body); (None, {}) when nothing answers."""
        url = f"http://127.0.0.1:{self.port}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read())
            except ValueError:
                return exc.code, {}
        except (urllib.error.URLError, OSError, ValueError):
            return None, {}

    def wait_for(self, pred: Callable[[dict[str, Any]], bool], timeout: float, what: str
                 ) -> dict[str, Any]:  # fmt: skip
        """Poll ``/status`` (10 ms doubling to 0.5 s) until ``pred`` holds."""
        deadline, delay, last = time.monotonic() + timeout, 0.01, None
        while True:
            if not self.running:
                raise AssertionError(f"{self.name} exited ({self.proc and self.proc.returncode})"
                                     f" waiting for {what}; log:\n{self.log_tail()}")  # fmt: skip
            st = self.status()
            if st is not None:
                last = st
                if "stages" in st and pred(st):  # the stand-in page has none
                    return st
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name}: no {what} after {timeout}s; last status "
                    f"{json.dumps(last)[:1500]}\nlog:\n{self.log_tail()}"
                )
            time.sleep(delay)  # polling back-off against the deadline, not synchronisation
            delay = min(delay * 2, 0.5)

    def kill(self) -> None:
        """SIGKILL the worker's process group."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 40.0) -> int | None:
        """SIGTERM; the exit code (SIGKILL and None if it does not stop in time)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        return self.proc.returncode

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def detection_done(target: int) -> Callable[[dict[str, Any]], bool]:
    """Detection has closed window ``target`` and every alert sent so far is on the broker
    (an alert is produced asynchronously after its window closes: reading the alerts topic
    at the close alone can miss the last one)."""

    def pred(st: dict[str, Any]) -> bool:
        d = st.get("detection")
        sent = st["counts"]["alerts_sent"]
        return (d is not None and d["closed_through"] >= target
                and st.get("on_broker", {}).get("alerts", 0) >= sent)  # fmt: skip

    return pred
