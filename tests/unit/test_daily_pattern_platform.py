"""A platform-wide rise at the same time every day is a daily pattern, raised once.

Affiliate networks review orders in batches: every night at 02:00 UTC a reversal batch
marks a few hundred orders of many publishers as fraud. The first night's batch is news
(nothing says it is a batch yet); raised every night, it taught operators to ignore
platform alerts. ``monitor.pipeline`` reports a stream-wide finding at the time of day of
one of the same kind on the days before as a daily pattern (not raised, learned), and
the batch's publishers are explained by it as by an open platform alert. A glitch at
another hour is raised as usual.
"""

from __future__ import annotations

import random

from monitor.model import parse_iso
from monitor.pipeline import Monitor
from tests.synth import START, Stream

DAYS = 3


def _stream(seed: int, glitch_h: float | None = None) -> Stream:
    s = Stream(seed=seed, publishers=150, hours=DAYS * 24, orders_per_hour=3000)
    s.baseline()
    rng = random.Random(seed + 99)
    pubs = s.pubs
    weights = [s.share[p] for p in pubs]
    for day in range(DAYS):
        t0 = START + day * 86400 + 2 * 3600  # 02:00 UTC
        for _ in range(400):  # the batch: fraud on orders placed days ago
            s.event(t0 + rng.random() * 240, rng.choices(pubs, weights)[0], s._id("o"),
                    "invalidated", "fraud")  # fmt: skip
    if glitch_h is not None:
        t0 = START + glitch_h * 3600
        for _ in range(400):
            s.event(t0 + rng.random() * 600, rng.choices(pubs, weights)[0], s._id("o"),
                    "invalidated", "data_anomaly")  # fmt: skip
    return s


def _raised(s: Stream) -> tuple[list[tuple[str, str]], Monitor]:
    mon = Monitor()
    for line in s.lines():
        mon.process(line)
    mon.flush()
    fired = [(a.kind, a.window_start) for a in mon.take_alerts() if a.status == "firing"]
    return fired, mon


def test_a_nightly_reversal_batch_is_raised_the_first_night_only():
    fired, mon = _raised(_stream(11, glitch_h=2 * 24 + 14))
    platform = [w for k, w in fired if k == "platform_spike"]
    hours = [(parse_iso(w) - START) / 3600 for w in platform]
    # the first night's batch, and the glitch at 14:00 on the third day; not the batch
    # on the second and third nights
    assert len(hours) == 2 and 2 <= hours[0] < 2.5 and 62 <= hours[1] < 62.5, platform
    assert mon.detection.daily_recurring >= 2
    # nor alerts on the batch's largest publishers instead
    assert [k for k, w in fired if k == "publisher_spike" and parse_iso(w) - START > 86400] == []


def test_a_checkpoint_between_the_nights_keeps_the_pattern():
    import msgspec

    lines = _stream(11).lines()
    whole = Monitor()
    for line in lines:
        whole.process(line)
    whole.flush()
    cut = next(i for i, ln in enumerate(lines) if b'"2026-11-03T12:' in ln)  # day 2, noon
    first = Monitor()
    for line in lines[:cut]:
        first.process(line)
    emitted = first.take_alerts()
    snap = msgspec.msgpack.decode(msgspec.msgpack.encode(first.snapshot()))
    resumed = Monitor.restore(snap)
    for line in lines[cut:]:
        resumed.process(line)
    resumed.flush()
    assert emitted + resumed.alerts == whole.alerts
    assert resumed.detection.daily_recurring == whole.detection.daily_recurring >= 2
