"""The slow-wave test (the publisher CUSUMs) rests for the detector's whole first day.

Before a day has been seen, neither the platform's hour of day nor a publisher's own is
known, and a rise over hours is what a region's office hours look like. On the second,
independent generator's multi-region streams (``tests/gen2.py``, seeds 1-3) the first
day's CUSUMs raised 6-10 false "sustained rise" alerts a seed, 23 in all, where they found
2 incidents. The price is a slow wave on the first day: found from the second day on, or
by the burst and 15-minute tests, which run from the start.
"""

from __future__ import annotations

import dataclasses

from monitor.detectors.publisher import PublisherParams
from monitor.pipeline import MonitorParams
from tests.synth import Stream
from tests.unit.test_refund_wave import REFUND_SHARE, _run, _wave
from tests.unit.test_shared_rise import REGION, _raised, _stream

NO_COHORT = dataclasses.replace(PublisherParams(), cohort_min=0)


def test_a_regions_first_day_rise_raises_nothing_without_the_shared_rise_rule():
    s = _stream(21, rising=REGION)
    assert _raised(s, MonitorParams(publisher=NO_COHORT)) == []
    # the check can fail: with the CUSUMs running from the first window, most of them fire
    eager = dataclasses.replace(NO_COHORT, cusum_after_windows=0)
    assert len(_raised(s, MonitorParams(publisher=eager))) >= 5


def test_a_refund_wave_on_the_first_day_is_left_to_the_second_day():
    s = Stream(seed=3, publishers=120, hours=30, orders_per_hour=1500)
    s.baseline()
    pub = min(s.pubs, key=lambda p: abs(s.share[p] - 0.1))
    _wave(s, pub, 19, 5, 1.5 * 1500 * s.share[pub] * REFUND_SHARE)  # ends at 24:00
    _, fired = _run(s)
    assert fired == [], [(a.publisher_id, a.summary) for a in fired]
    eager = MonitorParams(publisher=PublisherParams(cusum_after_windows=0))
    _, fired = _run(s, eager)
    assert [(a.publisher_id, a.evidence["test"]) for a in fired] == [(pub, "cusum")]
