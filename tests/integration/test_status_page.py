"""The live status page of a real worker, rendered by headless Chromium (Debian ``chromium``).

One worker on the embedded broker reads a simulated stream (``monitor.simulate``: 300
publishers, a day with scripted incidents) cut right after the first window in which a
publisher alert fires, so that alert is still open when the worker has read everything
(resolving takes quiet windows that never come). The publisher and kind come from the
pure ``Monitor`` over the same lines (a one-partition stream equals replay). The test waits
until ``/api/overview`` shows the alert, then checks the DOM after the page's JavaScript
ran and saves a screenshot to ``test-artifacts/status-page.png``.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
import uuid
from pathlib import Path

import pytest

from monitor.pipeline import Monitor
from monitor.simulate import simulate
from streams.procs import ROOT, WorkerProc, write_config
from streams.produce import produce_file
from tests.conftest import need_tool

pytestmark = pytest.mark.slow
ARTIFACT = ROOT / "test-artifacts" / "status-page.png"
CHROMIUM_HINT = ("Debian's chromium renders the status page: `apt-get install -y "
                 "--no-install-recommends chromium` (root), or `make tools`")  # fmt: skip
# no network beyond the page's own 127.0.0.1 server, no profile shared with another run
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--no-default-browser-check", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-extensions",
                  "--window-size=1400,1000", "--virtual-time-budget=8000"]  # fmt: skip


@pytest.fixture(scope="module")
def cut_stream(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("status-sim")
    info = simulate(3, out, publishers=300, days=1.0)
    lines = [ln for ln in Path(info["events_path"]).read_bytes().splitlines() if ln.strip()]
    mon = Monitor()
    for i, line in enumerate(lines):
        mon.process(line)
        fired = [a for a in mon.take_alerts()
                 if a.kind == "publisher_spike" and a.status == "firing"]  # fmt: skip
        if fired:
            path = out / "cut.jsonl"
            path.write_bytes(b"\n".join(lines[: i + 1]) + b"\n")
            return {"path": str(path), "events": i + 1, "publisher": fired[0].publisher_id,
                    "alert_id": fired[0].alert_id}  # fmt: skip
    raise AssertionError("the simulated stream has no publisher alert: pick another seed")


def get_json(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def chromium(binary: str, tmp_path: Path, *args: str) -> str:
    res = subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                          *args], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 0, f"chromium exited {res.returncode}:\n{res.stderr[-2000:]}"
    return res.stdout


async def test_status_page_shows_the_firing_alert_in_a_browser(broker, cut_stream, tmp_path):
    binary = need_tool("chromium", "chromium-browser", hint=CHROMIUM_HINT)
    tag = uuid.uuid4().hex[:8]
    topic = f"orders-{tag}"
    cfg = write_config(tmp_path / "ordermon.toml", partitions=1, store="memory://",
                       checkpoint_interval_s=2.0, idle_after_s=3.0, input_topic=topic,
                       dlq_topic=f"{topic}.dlq", alerts_topic=f"alerts-{tag}",
                       app_id=f"om-{tag}")  # fmt: skip
    res = await produce_file(cut_stream["path"], broker.bootstrap, topic, partitions=1)
    assert res["failed"] == 0
    pub, aid = cut_stream["publisher"], cut_stream["alert_id"]
    w = WorkerProc(broker.url, cfg, tmp_path).start()
    try:
        w.wait_for(lambda st: st["ingest"]["accepted"] > 0, 40, "events accepted")

        def open_alert(_: dict) -> bool:
            doc = get_json(w.port, "/api/overview")
            return any(a["alert_id"] == aid for a in doc["firing"])

        w.wait_for(open_alert, 40, f"the publisher_spike of {pub} firing in /api/overview")
        w.wait_for(lambda st: st["stages"]["ingest"]["messages"] == cut_stream["events"], 40,
                   "every event ingested")  # fmt: skip

        def sampled(_: dict) -> bool:  # the rate's 1 s sampler has seen the last event
            d = get_json(w.port, "/api/overview")
            return bool(d["rate"]["accepted_total"] == d["quality"]["totals"]["accepted"])

        w.wait_for(sampled, 20, "the event-rate sampler to catch up with ingest")
        doc = get_json(w.port, "/api/overview")
        url = f"http://127.0.0.1:{w.port}/"
        dom = chromium(binary, tmp_path, "--dump-dom", url)
        ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
        ARTIFACT.unlink(missing_ok=True)
        chromium(binary, tmp_path, f"--screenshot={ARTIFACT}", url)
    finally:
        w.terminate()
    assert doc["detection"]["here"] and doc["windows"] and doc["health"]["ready"]
    # a fresh worker, all read: the rate's counter is exactly ingest's (nothing restored)
    assert doc["rate"]["accepted_total"] == doc["quality"]["totals"]["accepted"] > 0
    assert doc["health"]["stages"]["ingest"]["messages"] == cut_stream["events"]
    # the DOM after the page's JavaScript ran: the alert card, the flagged publisher, charts
    assert 'class="conn ok"' in dom, "the page did not load /api/overview"
    assert f'data-alert-id="{aid}"' in dom and 'data-kind="publisher_spike"' in dom
    assert f'<span class="pill pub">{pub}</span>' in dom
    assert f'<tr class="alerting" data-publisher="{pub}">' in dom
    for chart in ('id="chart-invalidations"', 'class="expected-line"', 'id="chart-quality"',
                  'id="alert-lane"', 'id="publishers-table"', 'id="quality-table"'):  # fmt: skip
        assert chart in dom, f"{chart} missing from the rendered page"
    assert dom.count('<g class="bar">') >= 2 * min(96, len(doc["windows"]))  # both charts
    png = ARTIFACT.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    print(f"\nstatus page screenshot: {ARTIFACT} ({len(png):,} bytes; {pub} publisher_spike "
          f"firing after {cut_stream['events']:,} events)")  # fmt: skip
