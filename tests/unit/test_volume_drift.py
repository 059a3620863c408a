"""Volume drops against a drifting day: a weekend's morning ramp runs later and lower than
the weekday profile learned the day before, for hours; a lost partition is abrupt.

``VolumeDrop`` is driven window by window with arrival counts of a daily cycle (10x from
night to peak, as affiliate traffic in China time), Poisson noise.
Before the drift ratio, the weekend morning raised a volume drop on realgen's seeds 1-3
(its trap ``trap-weekend-morning``) as soon as the volume series' scale stopped being
inflated by a blank first window.
"""

from __future__ import annotations

import math
import random

from monitor.detectors.base import WindowContext
from monitor.detectors.quality import VolumeDrop, VolumeParams
from monitor.windows import WindowAcc

DAY = 288


def _cycle(phase: float) -> float:
    """Arrivals per 5-min window at ``phase`` windows into the day: 250 at 04:00, 2,500
    at 16:00 (10x from night to peak), a smooth daily curve."""
    h = (phase / 12.0) % 24
    return 250 + 2250 * (1 - math.cos(2 * math.pi * (h - 4) / 24)) / 2


def _run(day2, params: VolumeParams | None = None) -> list[tuple[int, bool]]:
    """Feed one weekday and then ``day2(phase) -> expected arrivals``; return the
    (window, firing) of every finding on day 2."""
    rng = random.Random(7)
    det = VolumeDrop(params)
    out = []
    for w in range(2 * DAY + 60):
        mean = _cycle(w) if w < DAY else day2(w - DAY)
        acc = WindowAcc(w, 300)
        acc.arrivals = max(0, round(rng.gauss(mean, math.sqrt(mean) * 1.3)))
        ctx = WindowContext(acc, [0] * 10, float((w + 1) * 300), warm=True)
        found = det.score(ctx)
        det.learn(ctx, found)
        out += [(w, f.firing) for f in found if w >= DAY]
    return out


def _weekend(phase: float) -> float:
    """A Saturday: the morning (06-12) 15% lower and 45 minutes later, blended smoothly
    into the weekday's night and afternoon (as realgen's arrivals show it)."""
    h = phase / 12.0
    w = math.exp(-(((h - 9) / 2.5) ** 2))
    return (1 - w) * _cycle(phase) + w * 0.85 * _cycle(phase - 9)


def _lost_partition(phase: float) -> float:
    at = 14 * 12  # 14:00, near the daily peak, for 90 minutes
    return _cycle(phase) * (0.75 if at <= phase < at + 18 else 1.0)


def test_a_later_lower_weekend_morning_is_no_volume_drop():
    assert not [w for w, firing in _run(_weekend) if firing]


def test_without_the_drift_ratio_the_weekend_morning_fires():
    # the same stream, the ratio switched off (floor 1): the check above can fail
    off = VolumeParams(drift_floor=1.0)
    assert [w for w, firing in _run(_weekend, off) if firing]


def test_a_quarter_of_the_traffic_lost_at_once_fires_within_the_hour():
    firing = [w - DAY for w, f in _run(_lost_partition) if f]
    assert firing, "an abrupt 25% loss for 90 minutes was not raised"
    assert 14 * 12 <= firing[0] < 15 * 12
