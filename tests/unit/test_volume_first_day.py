"""Volume drops on the first day, before the volume series has a daily profile.

The only forecast on day 1 is the series' level-and-trend tracker, which follows a step
down within two windows: a lost partition at 14:00 on the first day went unreported on
realgen's seeds 2 and 3 (a third of the traffic lost for an hour). ``VolumeDrop`` now holds
a window far below the tracker out of it and fires on two such windows in a row, if the
orders placed fell with the events: on gen2's streams the first day's only "drop" was a
nightly confirmation batch ending at 22:00 UTC, which takes no orders off the feed.

``VolumeDrop`` is driven window by window with arrival counts of a daily cycle (10x from
night to peak, as affiliate traffic in China time), Poisson noise times an hour-level
gamma factor (real traffic is lumpier than Poisson).
"""

from __future__ import annotations

import math
import random

from monitor.detectors.base import WindowContext
from monitor.detectors.quality import VolumeDrop, VolumeParams
from monitor.windows import ORDERS, WindowAcc

DAY = 288


def _cycle(w: float) -> float:
    """Arrivals per 5-min window ``w`` windows into the day: 250 at 04:00, 2,500 at 16:00."""
    h = (w / 12.0) % 24
    return 250 + 2250 * (1 - math.cos(2 * math.pi * (h - 4) / 24)) / 2


def _poisson(rng: random.Random, mean: float) -> int:
    return max(0, round(rng.gauss(mean, math.sqrt(mean))))


def _run(day1, seed: int = 7, windows: int = DAY - 1, det: VolumeDrop | None = None,
         orders=None):  # fmt: skip
    """Feed ``day1(w) -> mean arrivals`` (and ``orders(w) -> mean orders placed``, none if
    not given) for ``windows`` windows; return the detector and the (window, firing) of
    every finding."""
    rng = random.Random(seed)
    det = det or VolumeDrop()
    out: list[tuple[int, bool]] = []
    hour_factor = 1.0
    for w in range(windows):
        if w % 12 == 0:
            hour_factor = rng.gammavariate(400.0, 1 / 400.0)  # sd 5% an hour
        acc = WindowAcc(w, 300)
        acc.arrivals = _poisson(rng, day1(w) * hour_factor)
        plat = [0] * 10
        if orders is not None:
            plat[ORDERS] = _poisson(rng, orders(w) * hour_factor)
        ctx = WindowContext(acc, plat, float((w + 1) * 300), warm=True)
        found = det.score(ctx)
        det.learn(ctx, found)
        out += [(w, f.firing) for f in found]
    return det, out


def _lost_third(w: float) -> float:
    at = 14 * 12  # 14:00 on the first day, for an hour
    return _cycle(w) * (2 / 3 if at <= w < at + 12 else 1.0)


def test_a_third_of_the_traffic_lost_on_the_first_day_fires_and_resolves():
    at = 14 * 12
    raised = 0
    for seed in range(1, 7):
        det, out = _run(_lost_third, seed)
        assert det.series.season is None, "still the first day: no profile yet"
        firing = [w for w, f in out if f]
        if not firing:
            continue  # the hour's own swing can hide part of the loss (see below)
        raised += 1
        assert firing[0] == at + 1, (seed, firing)  # the second window below fires
        # the alert is held open through the hour, and nothing is left once traffic is back
        assert [w for w, _ in out] == list(range(at + 1, at + 12)), (seed, out)
    # a third lost, under an hour-to-hour swing of 5%: measured 23-33% below the tracker;
    # below 25% it is not called (the first day's threshold, as the later days')
    assert raised >= 5, f"raised on {raised} of 6 seeds"


def _orders(w: float) -> float:
    """Orders placed: a fifth of the events (the rest are payments, confirmations,
    settlements and invalidations of orders placed before)."""
    return _cycle(w) / 5


def _batch_ends(w: float) -> float:
    """A merchant's nightly confirmation batch adds 40% to the events from 20:00 and
    stops at once at 22:00: no orders are in it."""
    return _cycle(w) * (1.4 if 20 * 12 <= w < 22 * 12 else 1.0)


def test_a_lost_third_that_takes_its_orders_with_it_fires_on_the_first_day():
    def orders(w: float) -> float:
        return _orders(w) * _lost_third(w) / _cycle(w)

    at, raised = 14 * 12, 0
    for seed in range(1, 7):
        _, out = _run(_lost_third, seed, orders=orders)
        firing = [w for w, f in out if f]
        raised += bool(firing)
        assert not firing or firing[0] == at + 1, (seed, firing)
    assert raised >= 5, f"raised on {raised} of 6 seeds"


def test_the_end_of_a_first_day_batch_of_status_updates_is_no_drop():
    """The events fall by 29% at 22:00, the orders placed do not: a batch job ended. The
    same fall with orders off the feed (or the rule off) is called a drop."""
    at, called = 22 * 12, 0
    for seed in range(1, 7):
        _, out = _run(_batch_ends, seed, orders=_orders)
        assert not [w for w, f in out if f], (seed, out)
        off = VolumeDrop(VolumeParams(first_day_orders_share=0))
        _, out = _run(_batch_ends, seed, orders=_orders, det=off)
        firing = [w for w, f in out if f]
        called += bool(firing)
        assert not firing or firing[0] == at + 1, (seed, firing)
    assert called >= 5, f"without the orders rule the batch end is a drop on {called} of 6"


def test_the_first_day_cycle_raises_nothing():
    for seed in range(1, 9):
        _, out = _run(_cycle, seed)
        assert not [w for w, f in out if f], (seed, out)


def test_the_end_of_a_first_day_promotion_is_no_drop():
    # orders x3 from 12:00 to 15:00 (abrupt both ways): the tracker holds out the surge,
    # and the fall back to the daily curve is the curve, not lost events
    def sale(w: float) -> float:
        return _cycle(w) * (3.0 if 12 * 12 <= w < 15 * 12 else 1.0)

    for seed in (1, 2, 3):
        _, out = _run(sale, seed)
        assert not [w for w, f in out if f], (seed, out)


def test_a_snapshot_taken_during_the_drop_continues_identically():
    at = 14 * 12
    det_a, out_a = _run(_lost_third, 5)
    # the same stream stopped one window into the drop, the detector restored from its
    # snapshot, then continued with the rest of the stream
    det_b, _ = _run(_lost_third, 5, windows=at + 1)
    restored = VolumeDrop()
    restored.restore(det_b.snapshot())
    assert restored.first_held == 1  # the first window below was held out of the tracker
    rng = random.Random(5)
    tail: list[tuple[int, bool]] = []
    hour_factor = 1.0
    for w in range(DAY - 1):
        if w % 12 == 0:
            hour_factor = rng.gammavariate(400.0, 1 / 400.0)
        n = _poisson(rng, _lost_third(w) * hour_factor)
        if w <= at:
            continue
        acc = WindowAcc(w, 300)
        acc.arrivals = n
        ctx = WindowContext(acc, [0] * 10, float((w + 1) * 300), warm=True)
        found = restored.score(ctx)
        restored.learn(ctx, found)
        tail += [(w, f.firing) for f in found]
    assert tail == [(w, f) for w, f in out_a if w > at]
    assert [f for _, f in tail if f]
