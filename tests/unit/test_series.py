"""SeasonalDetector and detect-series: one contract test, then scenario tests.

Every series is generated with a seeded ``random.Random``: the tests are deterministic.
"""

from __future__ import annotations

import io
import json
import math
import random

import pytest

from monitor.series import (
    SeasonalDetector,
    detect_series,
    parse_timestamp,
    run_detect_series,
)

P = 288  # one day of 5-minute windows
DAY3_AFTERNOON = 3 * P + 150  # 12:30 on day 4: busy hours, profile long learned


def _poisson(rng: random.Random, lam: float) -> int:
    if lam < 30:  # Knuth
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= rng.random()
            if p <= limit:
                return k
            k += 1
    return max(0, round(rng.gauss(lam, math.sqrt(lam))))


def _rate(i: int, peak: float = 200.0) -> float:
    """Daily cycle with the night trough (04:00) at 20 % of the afternoon peak."""
    return peak * (0.6 - 0.4 * math.cos(2 * math.pi * ((i % P) / P - 4 / 24)))


def _counts(seed: int, days: int = 5, peak: float = 200.0, incident=None) -> list[int]:
    rng = random.Random(seed)
    out = []
    for i in range(days * P):
        lam = _rate(i, peak)
        out.append(_poisson(rng, lam * (incident(i) if incident else 1.0)))
    return out


def _scores(xs, **kw) -> list[float]:
    det = SeasonalDetector(P, counts=True, grace=12, **kw)
    return [det.update(x).score for x in xs]


# -- contract: every configuration goes through the same checks ---------------------------
CONFIGS = {
    "counts": dict(period=P, counts=True, grace=12),
    "additive": dict(period=P, grace=12),
    "log": dict(period=P, multiplicative=True, grace=12),
    "counts_weekly": dict(period=24, counts=True, weekly=7, grace=12),
    "no_period": dict(period=None, grace=12),
}


def _series_for(name: str, n: int) -> list[float]:
    rng = random.Random(7)
    period = CONFIGS[name]["period"] or P
    xs = []
    for i in range(n):
        base = 50.0 + 30.0 * math.sin(2 * math.pi * i / period)
        x = float(_poisson(rng, base)) if CONFIGS[name].get("counts") else base + rng.gauss(0, 2)
        xs.append(x * 4 if i % 97 == 50 else x)  # a few spikes to exercise protection
    return xs


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_contract_scores_state_and_checkpoints(name):
    n = 2 * P + 40
    xs = _series_for(name, n)
    det = SeasonalDetector(**CONFIGS[name])
    for i, x in enumerate(xs[: n // 2]):
        before = json.dumps(det.snapshot())
        res = det.score_one(x)
        assert json.dumps(det.snapshot()) == before  # score_one never changes state
        assert 0.0 <= res.score <= 1.0
        if i < det.grace:
            assert res.score == 0.0 and not det.warm
        assert res.lower <= res.expected <= res.upper
        assert res.direction == (0 if res.score < 0.5 else (1 if res.z > 0 else -1))
        assert det.update(x) == res  # update = score_one then learn_one
    assert det.warm
    restored = SeasonalDetector.restore(json.loads(json.dumps(det.snapshot())))
    for x in xs[n // 2 :]:
        assert restored.update(x) == det.update(x)
    assert restored.snapshot() == det.snapshot()


def test_learn_one_equals_the_learning_half_of_update():
    xs = _series_for("counts", P + 50)
    a, b = SeasonalDetector(P, counts=True), SeasonalDetector(P, counts=True)
    for x in xs:
        a.update(x)
        b.learn_one(x)
    assert a.snapshot() == b.snapshot()


def test_anomalous_flag_overrides_the_detector_decision():
    xs = _series_for("additive", P + 50)
    protected, learner = SeasonalDetector(P), SeasonalDetector(P)
    for x in xs:
        protected.update(x)
        learner.update(x)
    level = protected.level
    protected.learn_one(1e6, anomalous=True)  # protected: the level does not move
    learner.learn_one(xs[-1] + 3.0, anomalous=False)  # learned like any normal point
    assert protected.level == level
    assert learner.level != level
    cold = SeasonalDetector(P, counts=True)  # first period: told anomalous, it coasts
    for x in _counts(0, days=1)[:100]:
        cold.update(x)
    expected = cold.score_one(0).expected
    cold.learn_one(10**6, anomalous=True)
    assert cold.score_one(0).expected < 2 * expected


# -- counts with a daily cycle: the core's volume and invalidation baselines --------------
@pytest.mark.parametrize("peak", [20.0, 200.0, 1000.0])
def test_seasonal_poisson_false_alarms_below_0_2_percent_including_first_day(peak):
    flagged = total = first_day = 0
    for seed in range(4):
        scores = _scores(_counts(seed, peak=peak))[12:]
        flagged += sum(s >= 0.5 for s in scores)
        first_day += sum(s >= 0.5 for s in scores[: P - 12])
        total += len(scores)
    assert flagged / total < 0.002
    assert first_day / (4 * (P - 12)) < 0.002


def test_spike_x3_for_3_steps_is_flagged_within_one_step():
    t0 = DAY3_AFTERNOON
    for seed in range(3):
        xs = _counts(seed, incident=lambda i: 3.0 if t0 <= i < t0 + 3 else 1.0)
        scores = _scores(xs)
        assert scores[t0] >= 0.5 or scores[t0 + 1] >= 0.5
        assert all(s < 0.5 for s in scores[t0 + 6 : t0 + 200])  # no echo, nothing learned


def test_drop_of_half_for_an_hour_is_flagged_within_two_steps_and_for_most_of_it():
    t0 = DAY3_AFTERNOON
    for seed in range(3):
        xs = _counts(seed, incident=lambda i: 0.5 if t0 <= i < t0 + 12 else 1.0)
        scores = _scores(xs)
        assert max(scores[t0 : t0 + 3]) >= 0.5
        assert sum(s >= 0.5 for s in scores[t0 : t0 + 12]) >= 9
        assert all(s < 0.5 for s in scores[t0 + 14 : t0 + 200])  # the return is normal


@pytest.mark.parametrize("factor", [2.0, 0.5])
def test_persistent_level_shift_is_flagged_then_accepted_after_adapt_after(factor):
    t0 = DAY3_AFTERNOON
    xs = _counts(1, incident=lambda i: factor if i >= t0 else 1.0)
    det = SeasonalDetector(P, counts=True, grace=12)
    scores = [det.update(x).score for x in xs]
    assert det.adapt_after == 24  # two hours of 5-minute windows
    assert scores[t0] >= 0.5
    after = scores[t0 + det.adapt_after + 1 :]
    assert sum(s >= 0.5 for s in after) <= 0.002 * len(after)


def test_promotion_x3_for_two_hours_is_flagged():
    # The detector cannot know it is a promotion: the core decides (it also sees orders).
    t0 = DAY3_AFTERNOON
    xs = _counts(2, incident=lambda i: 3.0 if t0 <= i < t0 + 24 else 1.0)
    scores = _scores(xs)
    assert sum(s >= 0.5 for s in scores[t0 : t0 + 24]) >= 20
    assert all(s < 0.5 for s in scores[t0 + 26 : t0 + 200])


def test_gap_keeps_the_seasonal_phase():
    xs = _counts(3, days=4)
    a, b = SeasonalDetector(P, counts=True), SeasonalDetector(P, counts=True)
    for i, x in enumerate(xs):
        a.update(x)
        if 2 * P <= i < 2 * P + 36:  # three hours lost
            if i == 2 * P:
                b.skip(36)
            continue
        b.update(x)
    assert a.phase == b.phase and a.n == b.n
    assert b.score_one(xs[-1]).score < 0.5


# -- detect-series: any exported metric ------------------------------------------------
def _hourly_rows(n: int = 24 * 12, seed: int = 5) -> list[tuple[str, float]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        t = 1_700_006_400 + 3600 * i  # 2023-11-15T00:00:00Z
        v = 20.0 + 8.0 * math.sin(2 * math.pi * i / 24) + rng.gauss(0, 0.5)
        rows.append((str(t), round(v, 3)))
    return rows


def test_detect_series_is_causal():
    rows = _hourly_rows()
    full = [s for _, _, s in detect_series(rows)]
    for k in (10, 30, 100, 200):
        assert [s for _, _, s in detect_series(rows[:k])] == full[:k]


def test_detect_series_flags_a_spike_and_a_drop_after_gaps():
    rows = _hourly_rows()
    rows[200] = (rows[200][0], rows[200][1] + 10.0)
    rows[250] = (rows[250][0], rows[250][1] - 10.0)
    kept = [r for i, r in enumerate(rows) if i % 17 != 5 and not 120 <= i < 130]  # gaps
    out = {ts: s for ts, _, s in detect_series(kept)}
    assert all(0.0 <= s <= 1.0 for s in out.values())
    assert out[rows[200][0]] >= 0.5 and out[rows[250][0]] >= 0.5
    flagged = [ts for ts, s in out.items() if s >= 0.5]
    assert len(flagged) <= 4


def test_detect_series_learns_weekends_of_hourly_counts():
    rng = random.Random(11)
    rows = []
    for i in range(24 * 7 * 5):  # five weeks of hourly counts, weekends at 40 %
        day = (i // 24 + 2) % 7  # starts on a Wednesday
        lam = 300.0 * (0.6 - 0.4 * math.cos(2 * math.pi * (i % 24) / 24)) * (0.4 if day >= 5 else 1)
        rows.append((1_700_006_400 + 3600 * i, float(_poisson(rng, lam))))
    scores = [s for _, _, s in detect_series(rows)]
    later = scores[24 * 14 :]  # the weekly pattern is known after the second week
    assert sum(s >= 0.5 for s in later) <= 0.002 * len(later)
    rows[24 * 30 + 14] = (rows[24 * 30 + 14][0], 3 * rows[24 * 30 + 14][1])  # a spike
    assert list(detect_series(rows))[24 * 30 + 14][2] >= 0.5


def test_detect_series_newest_first_scores_like_oldest_first():
    rows = _hourly_rows(24 * 8)
    rows[150] = (rows[150][0], 60.0)
    forward = list(detect_series(rows))
    backward = list(detect_series(rows[::-1]))
    assert backward[::-1] == forward
    assert forward[150][2] >= 0.5


def test_run_detect_series_irregular_header_gaps_and_bad_rows(tmp_path):
    rows = _hourly_rows(24 * 6)
    lines = ["\ufeff Time , Value , note", "# exported by a dashboard"]
    for i, (t, v) in enumerate(rows):
        if i in (40, 41, 42):  # missing rows
            continue
        ts = f"{parse_iso(int(t))}"
        lines.append(f"{ts},{v if i != 100 else 45.0},x" if i != 60 else f"{ts},,x")
    lines.insert(30, "not-a-time,12,x")
    lines.insert(50, "2023-11-16T00:00:00Z,twelve,x")
    path = tmp_path / "series.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    assert run_detect_series(str(path), out, err) == 1  # bad rows: reported, exit 1
    assert f"{path}:31: cannot read timestamp 'not-a-time'" in err.getvalue()
    assert f"{path}:51: cannot read value 'twelve'" in err.getvalue()
    got = out.getvalue().splitlines()
    assert got[0] == "timestamp,value,anomaly_score"
    assert len(got) == 1 + len(rows) - 3
    scores = {r.split(",")[0]: float(r.split(",")[2]) for r in got[1:]}
    assert all(0.0 <= s <= 1.0 for s in scores.values())
    assert all(float(r.split(",")[2]) == 0.0 for r in got[1:25])  # warm-up
    assert scores[parse_iso(int(rows[100][0]))] >= 0.5
    assert sum(s >= 0.5 for s in scores.values()) <= 3


def test_run_detect_series_reports_unreadable_input(tmp_path):
    err = io.StringIO()
    assert run_detect_series(str(tmp_path / "missing.csv"), io.StringIO(), err) == 2
    assert "cannot open" in err.getvalue()
    empty = tmp_path / "empty.csv"
    empty.write_text("timestamp,value\n")
    assert run_detect_series(str(empty), io.StringIO(), err) == 1


def parse_iso(epoch: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2023-11-15T00:00:00Z", 1_700_006_400),
        ("2023-11-15T01:00:00+01:00", 1_700_006_400),
        ("2023-11-15 00:00:00", 1_700_006_400),
        ("2023-11-15T00:00:00.000000000Z", 1_700_006_400),
        ("1700006400", 1_700_006_400),
        ("1700006400000", 1_700_006_400),
        ("1700006400.5", 1_700_006_400.5),
    ],
)
def test_parse_timestamp(text, epoch):
    assert parse_timestamp(text) == pytest.approx(epoch)


def test_guarded_series_learns_a_daily_pattern_its_caller_flags_every_day():
    """A rise at the same time every day that the caller flags (a platform alert on a
    daily refund run) is held out of the level but reaches the daily profile, clipped:
    the forecast there climbs day by day instead of staying frozen at the first day's."""
    from monitor.detectors.base import GuardedSeries

    rng = random.Random(3)
    guard = GuardedSeries(SeasonalDetector(24, counts=True))
    peak_fc = []
    for day in range(12):
        for phase in range(24):
            series = guard.series
            fc = series.score_one(100).expected
            peak = day >= 2 and phase == 10
            if peak:
                peak_fc.append(fc)
            x = rng.gauss(300 if peak else 100, 10)
            guard.learn(x, flagged=peak)
    assert peak_fc[-1] > 1.5 * peak_fc[0], peak_fc  # the profile learns it
    assert guard.series.score_one(100).expected < 130  # other hours are not raised
