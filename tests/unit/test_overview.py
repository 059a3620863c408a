"""The read model behind /metrics and the status page: bounded, and it names the incident."""

from __future__ import annotations

from monitor.pipeline import Monitor
from tests.synth import Stream


def test_overview_names_the_bursting_publisher_while_its_alert_is_open():
    s = Stream(seed=12).baseline()
    ranked = sorted(s.pubs, key=lambda p: -s.share[p])
    pub = ranked[len(ranked) // 10]
    s.burst(pub, at_h=8.0, minutes=20, count=30, reason="fraud")
    mon = Monitor()
    seen = None
    for line in s.lines():
        mon.process(line)
        if seen is None and any(a.publisher_id == pub for a in mon.detection.alerts):
            ov = mon.detection.overview
            seen = (ov.publishers(5), ov.metric_publishers(10), ov.firing(), ov.windows())
    assert seen is not None, "the burst was not detected"
    top, metric, firing, windows = seen
    assert top[0]["publisher_id"] == pub and top[0]["alerting"]
    assert top[0]["score"] > top[1]["score"] if len(top) > 1 else True
    assert top[0]["by_reason"]["fraud"] >= 1
    # the bounded per-publisher set: the 10 largest plus the alerting one, never more
    ids = [r["publisher_id"] for r in metric]
    assert pub in ids and len(ids) == len(set(ids)) <= 11
    assert all(r["order_rate"] >= 0 for r in metric)
    assert [a["scope"] for a in firing if a["kind"] == "publisher_spike"] == [pub]
    assert firing[0]["evidence"]["observed"] > firing[0]["evidence"]["expected"]
    assert windows and windows[-1]["orders"] > 0
    assert sum(windows[-1]["by_reason"].values()) == windows[-1]["invalidations"]


def test_overview_history_is_bounded():
    mon = Stream(seed=11, hours=30).baseline().replay()
    ov = mon.detection.overview
    assert len(ov.windows()) == 288  # a day of 5-min windows, whatever the stream length
    assert mon.detection.windows_closed > 288
    assert len(ov.metric_publishers(50)) <= 50 + len(ov.firing())
