"""Against a real Alertmanager (Debian's ``prometheus-alertmanager``, started here on a
free loopback port with its own storage, stopped at the end): the alerts show in its API."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from alerts.config import alerts_config_from_doc
from alerts.service import AlertService
from tests.alerts.conftest import T0, FakeClock, make_alert, resolve

MISSING = (
    "the Alertmanager binary (prometheus-alertmanager) is not installed: `make tools` "
    "installs Debian's prometheus-alertmanager (root with apt)"
)
CONFIG = """
route:
  receiver: "null"
  group_wait: 1h
receivers:
  - name: "null"
"""


def alertmanager_binary() -> str:
    found = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(MISSING)
    pytest.skip(MISSING)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def alertmanager(tmp_path: Path) -> AsyncIterator[str]:
    binary = alertmanager_binary()
    (tmp_path / "am.yml").write_text(CONFIG)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "alertmanager.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
         "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        await wait_ready(url, proc, tmp_path / "alertmanager.log")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


async def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 20) -> None:
    """Poll ``/-/ready`` until it answers 200; fail with the log if the process exits."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"alertmanager exited {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                async with s.get(url + "/-/ready", timeout=aiohttp.ClientTimeout(total=1)) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)  # polling an external process's readiness
    pytest.fail(f"alertmanager not ready after {timeout} s: {log.read_text()[-2000:]}")


async def am_alerts(url: str) -> list[dict]:
    async with aiohttp.ClientSession() as s, s.get(url + "/api/v2/alerts") as r:
        assert r.status == 200
        return await r.json()


async def test_alerts_show_in_alertmanagers_api_and_leave_it_when_resolved(alertmanager, tmp_path):
    doc = {"outbox": str(tmp_path / "outbox.sqlite"),
           "receivers": [{"name": "am", "type": "alertmanager", "url": alertmanager}]}  # fmt: skip
    clock = FakeClock(time.time())  # Alertmanager judges endsAt by its own clock
    pub = make_alert(publisher="pub-0042", start=T0 - 3600)
    platform = make_alert("platform_spike", None, severity="critical")
    skew = make_alert("clock_skew", None)
    async with AlertService(alerts_config_from_doc(doc, {}), clock=clock) as svc:
        for a in (pub, platform, skew):
            svc.accept(a, T0)
        svc.flush(T0 + 30)
        await svc.sender.deliver_due()
        assert svc.store.depth()[("am", "pending")] == 0
        shown = {a["labels"]["alert_id"]: a for a in await am_alerts(alertmanager)}
        assert set(shown) == {pub.alert_id, platform.alert_id, skew.alert_id}
        got = shown[pub.alert_id]
        assert got["labels"] == {"alertname": "publisher_spike", "alert_id": pub.alert_id,
                                 "category": "publisher", "severity": "warning",
                                 "publisher_id": "pub-0042"}  # fmt: skip
        assert got["annotations"]["summary"] == pub.summary
        assert '"observed":43' in got["annotations"]["evidence"]
        assert got["startsAt"].startswith(pub.window_start.removesuffix("Z"))
        assert shown[platform.alert_id]["labels"]["alertname"] == "platform_spike"

        svc.accept(resolve(pub), T0 + 60)
        svc.flush(T0 + 330)
        await svc.sender.deliver_due()
        left = {a["labels"]["alert_id"] for a in await am_alerts(alertmanager)}
        assert left == {platform.alert_id, skew.alert_id}


@pytest.mark.parametrize("ci", ["true", ""])
def test_a_missing_binary_fails_on_ci_and_skips_elsewhere(monkeypatch, ci):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", ci)
    expected = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(expected, match="prometheus-alertmanager"):
        alertmanager_binary()
