"""A publisher in another time zone is judged by its own day, not the platform's.

An affiliate platform serves several regions. A European merchant's refunds come in its
office hours, 08:00-16:00 UTC, at twice and more its daily average; the platform's
hour-of-day index, set by the larger Chinese traffic, says little about those hours.
Judged by it, every European afternoon was a "sustained rise in refund invalidations" at
the largest European publishers. Each publisher now also learns how its invalidations
spread over the day (``PublisherParams.own_day_*``), so from the second day its own
office hours are ordinary, while a refund wave on top of them is still raised.
"""

from __future__ import annotations

import dataclasses
import random

from monitor.detectors.publisher import PublisherParams
from monitor.model import parse_iso
from monitor.pipeline import MonitorParams
from tests.synth import START, Stream, _poisson

HOURS = 48  # the first day to learn, the second to judge
EU = [f"eu-{i}" for i in range(4)]
OFFICE = (8, 16)  # UTC
REFUNDS_IN_OFFICE = 4.5  # per publisher and 5-minute window; 0.75 outside: 2 on average
REFUNDS_OUTSIDE = 0.75


def _stream(seed: int, wave_at_h: float | None = None) -> Stream:
    """A platform of 40 publishers with flat invalidations (~60 a window), and four
    European ones whose refunds follow their office hours. ``wave_at_h``: from then, 3 h
    of an extra 60 refunds an hour at ``eu-0`` (twice its office-hours rate)."""
    s = Stream(seed=seed, publishers=40, hours=HOURS, orders_per_hour=6000)
    s.baseline()
    rng = random.Random(seed + 500)
    for minute in range(HOURS * 60):
        t = START + minute * 60
        hour = minute // 60 % 24
        office = OFFICE[0] <= hour < OFFICE[1]
        for pub in EU:
            for _ in range(_poisson(rng, 100 / 60)):  # orders: 100 an hour, all day
                s.order(t + rng.random() * 60, pub)
            rate = REFUNDS_IN_OFFICE if office else REFUNDS_OUTSIDE
            extra = 0.0
            if pub == "eu-0" and wave_at_h is not None and 0 <= minute / 60 - wave_at_h < 3:
                extra = 60.0
            for _ in range(_poisson(rng, rate / 5 + extra / 60)):
                # a refund of an order placed days ago, before the stream began
                s.event(t + rng.random() * 60, pub, s._id("o"), "invalidated", "refund")
    return s


def _alerts(s: Stream, params: MonitorParams | None = None) -> list[tuple[int, str, str]]:
    """(day, window start, publisher) of each publisher_spike raised at a European one."""
    mon = s.replay(params)
    return [
        (int((parse_iso(a.window_start) - START) // 86400), a.window_start, a.publisher_id or "")
        for a in mon.take_alerts()
        if a.kind == "publisher_spike" and a.status == "firing" and a.publisher_id in EU
    ]


def _params(own_day: bool = True) -> MonitorParams:
    """The daily-pattern rule off (it reports a spike recurring at the time of day of
    the day before, and would hide the difference these tests are about); with or without
    the publisher's own time of day."""
    pub = dataclasses.replace(PublisherParams(), recurring_days=0)
    if not own_day:
        pub = dataclasses.replace(pub, own_day_prior=0.0)
    return MonitorParams(publisher=pub)


def test_office_hours_refunds_are_ordinary_from_the_second_day():
    s = _stream(3)
    alerts = _alerts(s, _params())
    assert [a for a in alerts if a[0] >= 1] == [], alerts
    # judged by the platform's day alone, the same afternoons are "sustained rises"
    platform_only = _alerts(s, _params(own_day=False))
    assert len({(d, p) for d, _, p in platform_only if d >= 1}) >= 2, platform_only


def test_a_refund_wave_in_the_office_hours_is_still_raised():
    wave_h = 24 + 10  # the second day, 10:00 UTC
    alerts = _alerts(_stream(3, wave_at_h=wave_h), _params())
    hits = [a for a in alerts if a[2] == "eu-0" and a[0] == 1]
    assert hits, alerts
    start = parse_iso(hits[0][1])
    assert START + wave_h * 3600 <= start <= START + (wave_h + 3) * 3600, hits
