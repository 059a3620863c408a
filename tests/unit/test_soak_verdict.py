"""The soak's memory verdict (``streams.soak.judge``): block medians of RSS read every
second, least-squares slope over the second half. Transient peaks must not fail it; a slow
leak must, however noisy."""

from __future__ import annotations

import random

import pytest

from streams.soak import SoakReport, block_medians, block_seconds, judge, median, slope


def _report(minutes: float, rss_at: object) -> SoakReport:
    rep = SoakReport(minutes, 500.0)
    rep.rss = [(float(t), rss_at(t)) for t in range(1, int(minutes * 60) + 1)]  # type: ignore[operator]
    return rep


def test_median_and_blocks() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0 and median([4.0, 1.0, 2.0, 3.0]) == 2.5
    readings = [(float(t), 100.0 + (50.0 if t % 10 == 0 else 0.0)) for t in range(60, 180)]
    got = block_medians(readings, 60.0, 60.0)
    assert got == [(90.0, 100.0), (150.0, 100.0)]
    # a block with under half of its readings (a stalled sampler) gives no point
    assert block_medians([(61.0, 1.0), (62.0, 1.0)], 60.0, 60.0) == []


@pytest.mark.parametrize(("minutes", "block"), [(2, 10.0), (6, 30.0), (12, 60.0), (30, 60.0)])
def test_block_length(minutes: float, block: float) -> None:
    assert block_seconds(minutes) == block


def test_transient_peaks_do_not_fail_a_flat_run() -> None:
    """A plateau with +40 MB readings lasting 4 s of every 15 (a quarter of the time),
    only late in the run: reading by reading, least squares calls it growth; the block
    medians do not."""
    rng = random.Random(5)

    def rss(t: float) -> float:
        peak = 40.0 if (t % 15 < 4 and t > 1300) else 0.0
        return 362.0 + rng.uniform(-1.0, 1.0) + peak

    rep = _report(30, rss)
    per_reading = slope([(t / 60.0, mb) for t, mb in rep.rss if t >= 900])
    assert per_reading is not None and per_reading > 1.0
    judge(rep, 1.0, 10_000)
    assert rep.slope_mb_per_min is not None and abs(rep.slope_mb_per_min) < 0.3
    assert not [p for p in rep.problems if "memory" in p]
    assert rep.rss_peak_mb is not None and rep.rss_peak_mb > 380.0  # the peak is reported
    assert len(rep.blocks) == 15


def test_a_slow_leak_fails_even_with_noise() -> None:
    rng = random.Random(6)
    rep = _report(30, lambda t: 360.0 + 1.5 * t / 60.0 + rng.uniform(-3.0, 3.0))
    judge(rep, 1.0, 10_000)
    assert rep.slope_mb_per_min is not None and 1.3 < rep.slope_mb_per_min < 1.7
    assert any("memory grows" in p for p in rep.problems)


def test_too_few_readings_is_a_problem_not_a_pass() -> None:
    rep = _report(2, lambda t: 100.0)
    rep.rss = rep.rss[:70]  # the worker's readings stop early in the second half
    judge(rep, 1.0, 10_000)
    assert "too few samples to judge memory" in rep.problems
