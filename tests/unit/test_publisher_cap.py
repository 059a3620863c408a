"""The publisher memory cap (``[publisher] max_publishers``, issue 7 item 2).

Above the real publisher count the cap changes nothing; under a flood of junk publisher ids
the state stays within the cap, the evictions are counted, the big real publishers stay,
and a real fraud burst is still found.
"""

from __future__ import annotations

import dataclasses

import pytest

from monitor.config import ConfigError, load_params
from monitor.detectors.base import WindowContext
from monitor.detectors.publisher import PublisherParams, PublisherSpike
from monitor.model import iso
from monitor.pipeline import Monitor, MonitorParams
from monitor.windows import ORDERS, SLOTS, WindowAcc
from tests.synth import START, Stream, hours


def capped(max_publishers: int) -> MonitorParams:
    p = MonitorParams()
    return dataclasses.replace(
        p, publisher=dataclasses.replace(p.publisher, max_publishers=max_publishers)
    )


def run(lines: list[bytes], params: MonitorParams) -> tuple[Monitor, list]:
    mon = Monitor(params)
    for line in lines:
        mon.process(line)
    mon.flush()
    return mon, mon.take_alerts()


def firing(alerts: list) -> list[tuple]:
    return [(a.kind, a.publisher_id, a.reason) for a in alerts if a.status == "firing"]


def burst_stream(seed: int = 12) -> tuple[Stream, str]:
    """The fraud-burst scenario of test_scenarios: 200 publishers, one burst at 8 h."""
    s = Stream(seed=seed).baseline()
    ranked = sorted(s.pubs, key=lambda p: -s.share[p])
    pub = ranked[len(ranked) // 10]
    s.burst(pub, at_h=8.0, minutes=20, count=30, reason="fraud")
    return s, pub


def window(index: int, counts: dict[str, int]) -> WindowContext:
    """A window in which each publisher placed ``counts[pub]`` orders."""
    acc = WindowAcc(index, 300)
    for pub, n in counts.items():
        vec = acc.pubs[pub] = [0] * SLOTS
        vec[ORDERS] = n
    return WindowContext(acc, acc.platform(), acc.end, True, order_ratio=(0.01,) * 8)


def feed(det: PublisherSpike, index: int, counts: dict[str, int]) -> None:
    ctx = window(index, counts)
    det.learn(ctx, det.score(ctx))


def test_a_cap_above_the_publisher_count_changes_nothing():
    s, pub = burst_stream()
    lines = s.lines()
    base, alerts = run(lines, MonitorParams())
    mon, alerts_capped = run(lines, capped(len(s.pubs) + 10))
    assert alerts_capped == alerts
    assert ("publisher_spike", pub, "fraud") in firing(alerts)
    assert mon.detection.publisher.evicted_cap == 0
    assert mon.detection.publisher.snapshot() == base.detection.publisher.snapshot()


def test_a_junk_id_flood_is_evicted_and_the_real_burst_is_still_found():
    s, pub = burst_stream()
    junk = 5000  # one order each, a tenth invalidated, spread over the 12 hours
    for i in range(junk):
        t = START + i * (s.hours * 3600 / junk)
        s.order(t, f"junk-{i}", "fraud" if i % 10 == 0 else None, lag=60)
    cap = 300  # 200 real publishers + room for a window's junk
    mon, alerts = run(s.lines(), capped(cap))
    det = mon.detection.publisher
    assert len(det.state) <= cap
    assert det.evicted_cap >= junk + len(s.pubs) - cap
    assert det.evicted == det.evicted_cap  # nothing was idle for two weeks
    assert firing(alerts) == [("publisher_spike", pub, "fraud")]
    assert pub in det.state
    # real history outweighs one-order ids: every real publisher keeps its state (evicting
    # the least recently seen first instead drops 36 of the 200 here)
    assert set(s.pubs) <= set(det.state)
    got = [a for a in alerts if a.status == "firing"][0]
    assert iso(hours(8.0)) <= got.detected_at <= iso(hours(8.5))


def test_eviction_drops_the_least_valuable_first_and_amortises():
    det = PublisherSpike(PublisherParams(max_publishers=100))
    feed(det, 1, {"big-old": 500, "small-old": 1})
    sizes = []
    for w in range(2, 62):  # the big one keeps trading, the small one goes quiet, and
        # three new one-order ids a window (each one order, like small-old) flood in
        feed(det, w, {"big-old": 50, **{f"junk-{w}-{i}": 1 for i in range(3)}})
        sizes.append(len(det.state))
    assert "big-old" in det.state
    assert "small-old" not in det.state  # one order, and the least recently seen of those
    assert max(sizes) <= 100
    assert det.evicted_cap == 2 + 3 * 60 - len(det.state)
    # a shrink goes down to 80% of the cap: one per ~twenty newcomers, not one per window
    drops = [i for i in range(1, len(sizes)) if sizes[i] < sizes[i - 1]]
    assert 1 <= len(drops) <= 60 * 3 // 20
    assert all(80 <= n <= 100 for n in sizes[drops[0] :])


def test_eviction_counts_survive_a_snapshot():
    det = PublisherSpike(PublisherParams(max_publishers=10))
    feed(det, 1, {f"p{i}": 1 for i in range(25)})
    assert (det.evicted, det.evicted_cap, len(det.state)) == (17, 17, 8)
    again = PublisherSpike(PublisherParams(max_publishers=10))
    again.restore(det.snapshot())
    assert (again.evicted, again.evicted_cap, list(again.state)) == (17, 17, list(det.state))
    old = det.snapshot()
    del old["evicted_cap"]  # a checkpoint from before the cap restores with none counted
    again.restore(old)
    assert again.evicted_cap == 0


def test_max_publishers_is_configurable_and_checked(tmp_path):
    assert load_params(None, env={}).publisher.max_publishers == 200_000
    p = load_params(None, env={"ORDERMON_PUBLISHER_MAX_PUBLISHERS": "5000"})
    assert p.publisher.max_publishers == 5000
    cfg = tmp_path / "c.toml"
    cfg.write_text("[publisher]\nmax_publishers = 0\n")
    with pytest.raises(ConfigError, match="publisher: max_publishers must be >= 1"):
        load_params(str(cfg), env={})


def test_per_publisher_state_gives_the_garbage_collector_nothing_to_walk():
    """Publisher rows and the lifecycle's orders hold no object the cyclic collector
    traverses, however many publishers there are (one tracked container per publisher cost
    a third of the run time at 1M publishers). The collector untracks a dict that holds
    only strings and numbers at its next pass: a tracked one here has picked up something
    it must walk."""
    import gc

    from monitor.lifecycle import Lifecycle
    from monitor.model import Status
    from tests.unit.test_lifecycle import ev, step

    det = PublisherSpike(PublisherParams(max_publishers=50))
    for w in range(1, 6):
        feed(det, w, {f"p{w}-{i}": 1 + i % 3 for i in range(40)})
    lc = Lifecycle()
    for i in range(200):
        step(lc, ev(f"e{i}", f"o{i}", Status.PAID, pub=f"pub-{i % 70}"))
    gc.collect()
    assert 0 < len(det.state) <= 50 and len(lc) == 200
    containers = [det.state, lc.orders]
    assert not any(gc.is_tracked(c) for c in containers)
    # the row store is a flat array, not one object per publisher
    assert len(det.data) >= 26 * len(det.state)


def test_learn_uses_the_rows_score_looked_up_and_refuses_a_window_it_did_not_score():
    det = PublisherSpike(PublisherParams(max_publishers=100))
    feed(det, 1, {"a": 2, "b": 1})
    scored, other = window(2, {"a": 1, "c": 3}), window(2, {"a": 1, "c": 3})
    det.score(scored)
    with pytest.raises(RuntimeError, match="learn\\(\\) needs score\\(\\) of the same window"):
        det.learn(other, [])
    det.score(scored)
    det.learn(scored, [])
    assert list(det.state) == ["a", "b", "c"]
    with pytest.raises(RuntimeError, match="needs score"):  # one learn per score
        det.learn(scored, [])
