"""The status page's JSON (``/api/overview``) and its parts, without a broker or a browser.

A real ``StreamApp`` is built (faust connects nothing until it starts); detection's state
comes from the pure ``Monitor`` run over a synthetic stream with a publisher burst.
"""

from __future__ import annotations

import io
import json
import re
from types import SimpleNamespace

import pytest

from monitor.model import Alert
from monitor.pipeline import Monitor, MonitorParams
from streams.settings import StreamSettings
from streams.statuspage import ASSETS, STATIC_DIR, EventRate, RecentAlerts
from streams.tasks import DetectTask
from tests.synth import Stream

WINDOW_KEYS = {"start", "end", "orders", "invalidations", "by_reason", "expected_invalidations",
               "rejected", "duplicates", "violations", "late", "future", "arrivals"}  # fmt: skip
PUBLISHER_KEYS = {"publisher_id", "orders", "invalidations", "expected", "ratio", "score",
                  "alerting"}  # fmt: skip
FIRING_KEYS = {"alert_id", "kind", "severity", "since", "summary", "observed", "expected",
               "score", "affected_publishers"}  # fmt: skip


def stream_app(on_alert=None):  # noqa: ANN001, ANN201
    from streams.app import StreamApp

    s = StreamSettings(app_id="om-unit", store="memory://", web_port=1, console=False)
    return StreamApp(s, MonitorParams(), 2, out=io.StringIO(), on_alert=on_alert)


@pytest.fixture(scope="module")
def burst() -> tuple[Monitor, str]:
    """Detection state while a publisher's fraud burst is alerting."""
    s = Stream(seed=12).baseline()
    pub = sorted(s.pubs, key=lambda p: -s.share[p])[len(s.pubs) // 10]
    s.burst(pub, at_h=8.0, minutes=20, count=30, reason="fraud")
    mon = Monitor()
    for line in s.lines():
        mon.process(line)
        if any(a.publisher_id == pub for a in mon.detection.alerts):
            return mon, pub
    raise AssertionError("the burst was not detected")


def test_overview_says_detection_runs_elsewhere_on_a_worker_without_it():
    sa = stream_app()
    doc = json.loads(json.dumps(sa.status_page.overview()))  # JSON-serialisable as sent
    det = doc["detection"]
    assert det["here"] is False
    assert "partition 0 of om-unit.partials" in det["note"]
    assert doc["windows"] == [] and doc["publishers"] == [] and doc["firing"] == []
    assert doc["health"]["ready"] is False and doc["health"]["reason"]
    assert set(doc["health"]["assigned_by_role"]) == {"input", "facts", "partials", "alerts",
                                                      "internal"}  # fmt: skip
    assert doc["rate"]["events_per_s"] is None  # no two samples yet: unknown, not zero


def test_overview_names_the_alerting_publisher_with_its_evidence(burst):
    mon, pub = burst
    sa = stream_app()
    task = DetectTask(sa.params, sa.P)
    task.detection = mon.detection
    sa.detection.tasks[0] = task
    doc = json.loads(json.dumps(sa.status_page.overview(n_windows=24, n_pubs=5)))
    assert doc["detection"]["here"] is True and doc["detection"]["note"] is None
    assert 0 < len(doc["windows"]) <= 24 and set(doc["windows"][-1]) >= WINDOW_KEYS
    assert set(doc["windows"][-1]["by_reason"]) == {"refund", "cancel", "fraud", "violation",
                                                    "data_anomaly", "other"}  # fmt: skip
    top = doc["publishers"]
    assert len(top) <= 5 and set(top[0]) >= PUBLISHER_KEYS
    assert top[0]["publisher_id"] == pub and top[0]["alerting"] is True
    spikes = [a for a in doc["firing"] if a["kind"] == "publisher_spike"]
    assert [a["affected_publishers"] for a in spikes] == [[pub]]
    a = spikes[0]
    assert set(a) >= FIRING_KEYS and a["observed"] > a["expected"] and a["score"] > 0
    kept = doc["quality"]["kept_windows"]
    assert kept["windows"] == len(mon.detection.overview.windows())
    assert kept["late"] == sum(w["late"] for w in mon.detection.overview.windows())
    assert doc["window_s"] == 300


def test_event_rate_counts_what_this_process_accepted_not_restored_state():
    r = EventRate()
    t0 = SimpleNamespace(ingest=SimpleNamespace(accepted=1000))  # restored with history
    r.sample(0.0, {0: t0}, 0)
    t0.ingest.accepted = 1100
    r.sample(1.0, {0: t0}, 100)
    t0.ingest.accepted = 1300
    restored = SimpleNamespace(ingest=SimpleNamespace(accepted=50_000))  # state from before
    fresh = SimpleNamespace(ingest=SimpleNamespace(accepted=40))  # new since the last sample
    r.sample(2.0, {0: t0, 1: restored, 2: fresh}, 340, fresh={2})
    r.sample(3.0, {1: restored, 2: fresh}, 340, fresh={2})  # 0 revoked: no negative step
    assert r.accepted == 100 + 200 + 40
    assert r.rate(over_s=2.0) == (120.0, 120.0)  # (1300 - 1100 + 40) events over t=1..3
    assert r.series() == [[1.0, 100.0], [2.0, 240.0], [3.0, 0.0]]


def _alert(status: str, start: str, end: str, severity: str = "critical") -> Alert:
    return Alert(alert_id="om-1", kind="publisher_spike", category="publisher", status=status,
                 severity=severity, publisher_id="pub-9", reason="fraud",
                 window_start=f"2026-11-02T00:{start}:00Z", window_end=f"2026-11-02T00:{end}:00Z",
                 detected_at="2026-11-02T00:10:00Z", summary=f"{status} summary",
                 evidence={"observed": 9, "expected": 1.0, "score": 7.5})  # fmt: skip


def test_recent_alerts_keep_one_row_per_alert_with_its_latest_status():
    rec = RecentAlerts(keep=2)
    rec.add(_alert("firing", "05", "10"), 1.0)
    rec.add(_alert("resolved", "20", "25", severity="info"), 2.0)
    (row,) = rec.newest_first()
    assert row["status"] == "resolved" and row["window_end"].endswith("00:25:00Z")
    assert row["window_start"].endswith("00:05:00Z")  # where it began: the firing record
    assert row["severity"] == "critical"  # what it was while open
    assert row["affected_publishers"] == ["pub-9"] and row["score"] == 7.5


def test_delivered_alerts_reach_the_page_and_the_previous_callback():
    seen: list[Alert] = []
    sa = stream_app(on_alert=seen.append)
    sa.deliver(_alert("firing", "05", "10"))
    assert [a.alert_id for a in seen] == ["om-1"]
    assert [r["status"] for r in sa.status_page.recent.newest_first()] == ["firing"]


def test_the_page_loads_only_its_own_assets():
    html = (STATIC_DIR / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs and all(r.startswith("/static/") and r[len("/static/") :] in ASSETS for r in refs)
    for name in ASSETS:
        text = (STATIC_DIR / name).read_text()
        urls = set(re.findall(r"https?://[^\s\"')]+", text)) - {"http://www.w3.org/2000/svg"}
        assert not urls, f"{name} refers to the network: {urls}"
