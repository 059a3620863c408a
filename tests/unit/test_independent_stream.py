"""ordermon on realistic traffic it was not tuned on, with nothing wrong in it.

``tests/realgen.py`` is a generator written independently of ordermon's simulator. Its
stream here has no incidents and no traps (every block left out): 800 publishers over
60 hours of China-time daily cycles (orders 10x from night to the daytime peak, refunds
pushed into merchant hours). Every alert on it is a false one. Before the platform
baseline stopped treating the first morning's rise of orders as a promotion, this stream
raised a platform_spike every morning and a publisher CUSUM alert.
"""

from __future__ import annotations

from monitor.pipeline import Monitor
from tests.realgen import Gen

EVERY_BLOCK = [
    "flash",
    "newpub",
    "tiny",
    "batch",
    "sale",
    "fraud-subtle",
    "fraud-big",
    "brushing",
    "brushing-subtle",
    "refund-wave",
    "refund-wave-subtle",
    "glitch",
    "glitch_subtle",
    "skew",
    "shift",
    "drop",
    "drop_subtle",
    "lifecycle",
    "dupes",
    "malformed",
]


def test_incident_free_independent_stream_raises_no_alert(tmp_path):
    Gen(4, 800, 60, EVERY_BLOCK, "profile", {}).run(str(tmp_path))
    mon = Monitor()
    lines = 0
    with open(tmp_path / "events.jsonl", "rb") as fh:
        for raw in fh:
            mon.process(raw.rstrip(b"\n"))
            lines += 1
    mon.flush()
    assert lines > 1_000_000 and mon.accepted > 0.99 * lines  # a real stream, mostly valid
    firing = [a for a in mon.alerts if a.status == "firing"]
    assert firing == [], [(a.kind, a.publisher_id, a.window_start, a.summary) for a in firing]
