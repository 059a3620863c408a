"""A publisher's spike that recurs at the same time of day is a daily pattern, not news.

Merchants and affiliate networks often post refunds in a batch at a fixed hour (an order
status sync, a returns desk clearing its queue): 40 refunds in five minutes, every day at
10:00. The first one is worth an alert (nothing says it is a batch yet); the next days'
are the same pattern, and raising it daily taught operators to ignore the publisher. The
daily-pattern rule (``PublisherParams.recurring_*``) reports a recurrence instead of
raising it, and only a recurrence: a different hour, a different reason or a much larger
spike is raised as usual.
"""

from __future__ import annotations

from monitor.detectors.publisher import PublisherParams
from monitor.pipeline import Monitor, MonitorParams
from monitor.replay import ReplaySummary, format_summary
from tests.synth import START, Stream

DAY_H = 24.0


def _stream(seed: int) -> tuple[Stream, str]:
    s = Stream(seed=seed, publishers=120, hours=2 * DAY_H + 16, orders_per_hour=1500)
    s.baseline()
    ranked = sorted(s.pubs, key=lambda p: -s.share[p])
    return s, ranked[len(ranked) // 8]


def _batch(s: Stream, pub: str, at_h: float, count: int, reason: str = "refund") -> None:
    """``count`` of ``pub``'s orders of the last hours invalidated within 4 minutes."""
    t = START + at_h * 3600
    for i in range(count):
        placed = t - 3600 * (1 + 8 * s.rng.random())  # after the stream starts
        s.order(placed, pub, reason, lag=t - placed + i * 240 / count)


def _run(s: Stream, params: MonitorParams | None = None):
    mon = s.replay(params)
    fired = [a for a in mon.take_alerts() if a.status == "firing"]
    return mon, fired


def _of(fired, pub):
    return [a for a in fired if a.kind == "publisher_spike" and a.publisher_id == pub]


def test_a_daily_refund_batch_alerts_on_the_first_day_only_and_is_reported():
    s, pub = _stream(41)
    for day in range(3):
        _batch(s, pub, 10 + day * DAY_H + 0.1 * day, 40)  # drifts 6 minutes a day
    mon, fired = _run(s)
    alerts = _of(fired, pub)
    assert len(alerts) == 1, [(a.window_start, a.summary) for a in alerts]
    assert alerts[0].window_start.startswith("2026-11-02T10:"), alerts[0].window_start
    assert mon.publisher.recurring >= 2  # the second and the third day's spikes
    [pattern] = [p for p in mon.publisher.recurring_patterns() if p["publisher_id"] == pub]
    assert pattern["channel"] == "refund" and pattern["peak"] >= 20
    # nothing else in the stream fired
    assert [a.publisher_id for a in fired] == [pub]
    # the replay summary says what was not raised, and why
    line = next(x for x in format_summary(mon, ReplaySummary()).splitlines() if "daily" in x)
    assert "daily patterns 1 " in line and f"{pub} (refund at 10:" in line, line


def test_without_the_rule_the_same_batch_alerts_every_day():
    """The check above can fail: with the rule off, each day's batch is an alert."""
    s, pub = _stream(41)
    for day in range(3):
        _batch(s, pub, 10 + day * DAY_H + 0.1 * day, 40)
    off = MonitorParams(publisher=PublisherParams(recurring_days=0))
    mon, fired = _run(s, off)
    assert len(_of(fired, pub)) == 3
    assert mon.publisher.recurring == 0 and mon.publisher.recurring_patterns() == []


def test_a_spike_at_another_hour_another_reason_or_far_larger_is_raised():
    s, pub = _stream(42)
    _batch(s, pub, 10, 40)
    _batch(s, pub, 10 + DAY_H + 7, 40)  # the next day, seven hours later
    _, fired = _run(s)
    assert len(_of(fired, pub)) == 2

    s, pub = _stream(43)
    _batch(s, pub, 10, 40)
    _batch(s, pub, 10 + DAY_H, 40, reason="fraud")  # same hour, fraud instead of refunds
    _, fired = _run(s)
    got = _of(fired, pub)
    assert [a.reason for a in got] == ["refund", "fraud"]

    s, pub = _stream(44)
    _batch(s, pub, 10, 20)
    _batch(s, pub, 10 + DAY_H, 200)  # same hour and reason, ten times the size
    _, fired = _run(s)
    assert len(_of(fired, pub)) == 2


def test_the_pattern_memory_survives_a_snapshot():
    s, pub = _stream(41)
    for day in range(2):
        _batch(s, pub, 10 + day * DAY_H, 40)
    lines = s.lines()
    cut = next(i for i, line in enumerate(lines) if b'"2026-11-03T06:' in line)  # between days
    mon = Monitor()
    for line in lines[:cut]:
        mon.process(line)
    first = [a for a in mon.take_alerts() if a.status == "firing"]
    snap = mon.snapshot()
    assert pub in snap["detection"]["publisher"]["recur"]
    again = Monitor.restore(snap)
    for line in lines[cut:]:
        again.process(line)
    again.flush()
    later = [a for a in again.take_alerts() if a.status == "firing"]
    assert len(_of(first, pub)) == 1 and _of(later, pub) == []
    assert again.publisher.recurring >= 1
