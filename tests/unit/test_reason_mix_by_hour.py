"""The reason mix has a time of day: a reason shift is judged against the hour's usual mix too.

Merchants process refunds in office hours and fraud reviews run in nightly batches, so
the share of refunds at 09:00 is not the day's share. Judged against the all-day mix
alone, every morning's ordinary refund hours read as "the mix of reasons changed", a
false reason_shift each day. The baseline keeps the mix of each hour of the day as well
(``PlatformParams.hour_*``); a shift must depart from both, so the morning is ordinary
from the second day on, while a producer that really relabels a reason in that same
morning is still reported.
"""

from __future__ import annotations

import dataclasses
import random

from monitor.detectors.platform import PlatformParams
from monitor.model import parse_iso
from monitor.pipeline import MonitorParams
from tests.synth import MIX, REASONS, START, Stream, _poisson

HOURS = 60  # two and a half days: three mornings
INVALIDATIONS_PER_HOUR = 1500
# 08:00-11:00: refunds are processed, the other reasons carry on as usual
OFFICE = (8, 11)
OFFICE_MIX = [0.88, 0.06, 0.02, 0.01, 0.005, 0.025]


def _stream(seed: int, relabel_day: int | None = None) -> Stream:
    """Orders all day; invalidations at a flat rate with the office-hours mix in the
    morning. ``relabel_day``: that morning a producer maps `cancel` to `other`."""
    s = Stream(seed=seed, publishers=80, hours=HOURS, orders_per_hour=1000, inv_ratio=0.0)
    s.baseline()
    rng = random.Random(seed + 1000)
    pubs = s.pubs
    weights = [s.share[p] for p in pubs]
    for minute in range(HOURS * 60):
        t = START + minute * 60
        hour = minute // 60 % 24
        day = minute // 1440
        mix = OFFICE_MIX if OFFICE[0] <= hour < OFFICE[1] else MIX
        for _ in range(_poisson(rng, INVALIDATIONS_PER_HOUR / 60)):
            reason = rng.choices(REASONS, mix)[0]
            relabelled = day == relabel_day and OFFICE[0] <= hour < OFFICE[1]
            if relabelled and reason == "refund" and rng.random() < 0.35:
                reason = "other"
            lag = rng.expovariate(1 / 1800)
            s.order(t + rng.random() * 60 - lag, rng.choices(pubs, weights)[0], reason, lag)
    return s


def _shifts(s: Stream, params: MonitorParams | None = None) -> list[tuple[int, str, str]]:
    """(day, window start, rising reason) of each reason_shift raised."""
    mon = s.replay(params)
    out = []
    for a in mon.take_alerts():
        if a.kind == "reason_shift" and a.status == "firing":
            day = int((parse_iso(a.window_start) - START) // 86400)
            out.append((day, a.window_start, a.reason or ""))
    return out


def _day_mix_only() -> MonitorParams:
    platform = dataclasses.replace(PlatformParams(), hour_prior_weight=1e12)
    return MonitorParams(platform=platform)


def test_office_hours_refunds_are_a_daily_pattern_not_a_shift():
    s = _stream(8)
    shifts = _shifts(s)
    # the first morning has no earlier morning to compare with; the later ones do
    assert [x for x in shifts if x[0] >= 1] == [], shifts
    # the same stream judged against the all-day mix only: a false shift every morning
    day_only = _shifts(s, _day_mix_only())
    assert {d for d, _, r in day_only if r == "refund"} >= {1, 2}, day_only


def test_a_relabelling_in_the_office_hours_is_still_a_shift():
    shifts = _shifts(_stream(7, relabel_day=2))
    on_day_2 = [x for x in shifts if x[0] == 2]
    assert on_day_2 and on_day_2[0][2] == "other", shifts
    hour = int(on_day_2[0][1][11:13])
    assert OFFICE[0] <= hour < OFFICE[1], on_day_2
