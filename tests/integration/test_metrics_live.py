"""/metrics and the logs of a real worker (subprocess) on the embedded broker.

One worker runs a small stream with a publisher incident, malformed lines and duplicates,
delivering its alerts to a real local webhook whose URL token and HMAC secret come from
the environment. The tests then read what it served and logged:

- every name of the metric contract (``streams.metrics.METRIC_NAMES``) is on /metrics;
- its counters equal what was produced (checked against the pure code and the alerts topic);
- the secrets appear nowhere: not in the log file, /metrics or /status.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import urllib.request
import uuid
from typing import Any

import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.model import Alert
from monitor.pipeline import Monitor
from streams.metrics import METRIC_NAMES
from streams.procs import WorkerProc, detection_done, write_config
from streams.produce import produce_file
from streams.reference import run_partitioned
from tests.integration.conftest import consume_all, run
from tests.synth import Stream

pytestmark = pytest.mark.slow
P = 2


class _Hook:
    """A real local webhook endpoint (stdlib server on a thread) counting POSTs."""

    def __init__(self, path: str) -> None:
        import http.server

        self.records: list[dict] = []
        self.cond = threading.Condition()
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = self.path == path and self.headers.get("X-Ordermon-Signature")
                if ok:
                    with hook.cond:
                        hook.records.append(json.loads(body))
                        hook.cond.notify_all()
                self.send_response(200 if ok else 404)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, n: int, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.records) >= n, timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        assert r.status == 200
        if path == "/metrics":
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def _lines() -> list[bytes]:
    s = Stream(seed=21, publishers=80, hours=5.0, orders_per_hour=2000).baseline()
    pub = sorted(s.pubs, key=lambda p: -s.share[p])[8]
    s.burst(pub, at_h=3.0, minutes=15, count=30, reason="fraud")
    lines = s.lines()
    # malformed messages and exact re-deliveries, mid-stream
    lines[5000:5000] = [b"\xff\xfe", b"[1, 2]", b'{"schema_version": 1}', *lines[4000:4003]]
    return lines


@pytest.fixture(scope="module")
def live(broker, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("metrics-live")
    lines = _lines()
    mon = Monitor()
    for line in lines:
        mon.process(line)
    ref_alerts, closed_through = run_partitioned(lines, P)
    assert ref_alerts, "the stream must raise alerts for the counts to compare something"
    events = tmp / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")

    tag = uuid.uuid4().hex[:8]
    token, secret = f"tok-{secrets.token_hex(12)}", f"hmac-{secrets.token_hex(16)}"
    hook = _Hook(f"/hooks/{token}")
    names = {"input_topic": f"orders-{tag}", "dlq_topic": f"orders-{tag}.dlq",
             "alerts_topic": f"alerts-{tag}", "app_id": f"om-{tag}"}  # fmt: skip
    cfg = write_config(tmp / "ordermon.toml", partitions=P, store="memory://",
                       checkpoint_interval_s=2.0, idle_after_s=1.5, log_level="info",
                       **names)  # fmt: skip
    with open(cfg, "a") as fh:
        fh.write(
            f'\n[alerts]\noutbox = "{tmp / "outbox.sqlite"}"\n'
            '[[alerts.receivers]]\nname = "hook"\ntype = "webhook"\n'
            'url_env = "OM_TEST_HOOK_URL"\nsecret_env = "OM_TEST_HOOK_SECRET"\n'
            '[alerts.route]\nreceiver = "hook"\ngroup_by = ["alert_id"]\n'
            'group_wait = "0s"\ngroup_interval = "1s"\n'
        )
    res = run(produce_file(str(events), broker.bootstrap, names["input_topic"], partitions=P))
    assert res["failed"] == 0 and res["produced"] == len(lines)
    w = WorkerProc(broker.url, cfg, tmp, "metrics")
    try:
        with pytest.MonkeyPatch.context() as mp:  # the worker's environment only
            mp.setenv("OM_TEST_HOOK_URL", hook.url)
            mp.setenv("OM_TEST_HOOK_SECRET", secret)
            w.start()
        w.wait_for(detection_done(closed_through), 90, "detection of the last window")
        assert hook.wait_for(len(ref_alerts), 30), f"webhook got {len(hook.records)}"

        def delivered(st: dict) -> bool:  # the outbox has recorded every 2xx
            samples = _samples(_get(w.port, "/metrics"))
            n = _sum(samples, "ordermon_notifications_total", receiver="hook", outcome="delivered")
            return n >= len(ref_alerts)

        w.wait_for(delivered, 30, "delivery recorded in the metrics")
        metrics, status = _get(w.port, "/metrics"), _get(w.port, "/status")
        alerts = [msgspec.json.decode(r.value, type=Alert)
                  for r in run(consume_all(broker.bootstrap, names["alerts_topic"]))]  # fmt: skip
    finally:
        code = w.terminate()
        hook.close()
    assert code == 0, w.log_tail()
    return {"metrics": metrics, "status": status, "log": w.log_path.read_text(errors="replace"),
            "mon": mon, "alerts": alerts, "hook": hook, "token": token, "secret": secret,
            "url": hook.url}  # fmt: skip


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}  # fmt: skip


def _sum(samples: dict, name: str, **match: str) -> float:
    return sum(v for (n, labels), v in samples.items()
               if n == name and match.items() <= dict(labels).items())  # fmt: skip


def test_live_worker_exposes_every_contract_metric(live):
    fams = list(text_string_to_metric_families(live["metrics"]))
    exposed = {f.name + "_total" if f.type == "counter" else f.name for f in fams}
    missing = [n for n in METRIC_NAMES if n not in exposed]
    assert not missing, f"not on /metrics: {missing}"
    samples = _samples(live["metrics"])
    # detection runs here: per-publisher series exist, bounded by the top-N default (50)
    pubs = {dict(labels)["publisher_id"] for (n, labels) in samples
            if n == "ordermon_publisher_orders"}  # fmt: skip
    assert 0 < len(pubs) <= 50 + 1
    assert samples[("ordermon_ready", ())] == 1
    assert _sum(samples, "ordermon_processing_latency_seconds_count", stage="ingest") > 20_000


def test_live_counters_equal_what_was_produced(live):
    samples, mon = _samples(live["metrics"]), live["mon"]
    assert _sum(samples, "ordermon_events_total", status="accepted") == mon.ingest.accepted
    assert _sum(samples, "ordermon_events_total", status="duplicate") == mon.ingest.duplicates == 3
    assert _sum(samples, "ordermon_events_total", status="rejected") == 3
    for code, n in mon.ingest.rejected.items():
        assert _sum(samples, "ordermon_rejections_total", code=str(code)) == n
    assert _sum(samples, "ordermon_dead_letters_total") == 3
    for reason, n in mon.ingest.invalidations.items():
        assert _sum(samples, "ordermon_invalidations_total", reason=str(reason)) == n
    alerts = live["alerts"]
    assert _sum(samples, "ordermon_alerts_total") == len(alerts) >= 2
    for status in ("firing", "resolved"):
        want = sum(a.status == status for a in alerts)
        assert _sum(samples, "ordermon_alerts_total", status=status) == want
    assert _sum(samples, "ordermon_notifications_total", receiver="hook",
                outcome="delivered") == len(live["hook"].records) == len(alerts)  # fmt: skip
    status = json.loads(live["status"])
    assert _sum(samples, "ordermon_windows_closed_total") == status["detection"]["windows_closed"]


def test_secrets_never_reach_logs_metrics_or_status(live):
    log = live["log"]
    for name in ("log", "metrics", "status"):
        for what in ("token", "secret"):
            assert live[what] not in live[name], f"the webhook {what} is in {name}"
    # the check read real logs: structured JSON lines with snake_case events and context
    events = []
    for line in log.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            events.append(rec)
            assert re.fullmatch(r"[a-z][a-z0-9_]*", rec["event"]), rec["event"]
    names = {e["event"] for e in events}
    assert {"alert_delivery", "notification_delivered", "alert_emitted"} <= names, names
    delivered = next(e for e in events if e["event"] == "notification_delivered")
    assert delivered["receiver"] == "hook" and delivered["app_id"].startswith("om-")
    emitted = next(e for e in events if e["event"] == "alert_emitted")
    assert emitted["publisher_id"]
    loaded = next(e for e in events if e["event"] == "partition_state_loaded")
    assert {"stage", "partition"} <= loaded.keys()
