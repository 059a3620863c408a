"""The scenario generator: deterministic, contract-valid, realistic, correctly labelled."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from monitor.decode import decode
from monitor.model import Kind, OrderEvent, Rejection, parse_iso
from monitor.sim_incidents import KINDS
from monitor.simulate import simulate

RANK = {"created": 0, "paid": 1, "confirmed": 2, "settled": 3, "invalidated": 4}
BEIJING = 8 * 3600


@dataclass
class Stream:
    summary: dict[str, Any]
    doc: dict[str, Any]
    lines: list[bytes]
    items: list[OrderEvent | Rejection]  # decoded, in arrival order

    @cached_property
    def events(self) -> list[OrderEvent]:
        return [e for e in self.items if isinstance(e, OrderEvent)]

    @cached_property
    def first(self) -> list[OrderEvent]:
        """Events without redeliveries (the first line of each event id)."""
        seen: set[str] = set()
        out = []
        for e in self.events:
            if e.event_id not in seen:
                seen.add(e.event_id)
                out.append(e)
        return out


def _run(tmp: Path, **kw: Any) -> Stream:
    summary = simulate(out_dir=tmp, **kw)
    lines = (tmp / "events.jsonl").read_bytes().splitlines()
    doc = json.loads((tmp / "incidents.json").read_text())
    return Stream(summary, doc, lines, [decode(line) for line in lines])


@pytest.fixture(scope="module")
def quiet(tmp_path_factory: pytest.TempPathFactory) -> Stream:
    """Two days of normal traffic, no incidents."""
    return _run(
        tmp_path_factory.mktemp("quiet"), seed=11, publishers=150, days=2.0, incidents=False
    )


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Stream:
    """A day and a half with every incident kind and trap."""
    return _run(tmp_path_factory.mktemp("labelled"), seed=5, publishers=150, days=1.5)


def _ts(e: OrderEvent) -> float:
    return e.occurred_at.timestamp()


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        simulate(seed, tmp_path / name, publishers=60, days=1.0)
    a, b, c = (tmp_path / n / "events.jsonl" for n in "abc")
    assert a.read_bytes() == b.read_bytes()
    labels = [(tmp_path / n / "incidents.json").read_bytes() for n in "ab"]
    assert labels[0] == labels[1]
    assert a.read_bytes() != c.read_bytes()


def test_every_line_decodes_except_the_counted_malformed_ones(labelled: Stream) -> None:
    rejected = [r for r in labelled.items if isinstance(r, Rejection)]
    assert labelled.summary["events"] == len(labelled.lines)
    assert len(rejected) == labelled.summary["malformed_lines"] > 0
    assert len({r.code for r in rejected}) >= 4  # truncated, wrong type, missing, timestamp...


def test_quiet_stream_has_a_small_malformed_and_duplicate_background(quiet: Stream) -> None:
    n = len(quiet.lines)
    rejected = sum(isinstance(r, Rejection) for r in quiet.items)
    assert rejected == quiet.summary["malformed_lines"]
    assert rejected < n / 5000
    dups = len(quiet.events) - len(quiet.first)
    assert 0.0005 * n < dups < 0.005 * n


def test_incidents_file_lists_every_kind_placed_apart_after_warmup(labelled: Stream) -> None:
    doc = labelled.doc
    start, end = parse_iso(doc["start"]), parse_iso(doc["end"])
    assert doc["start"].endswith("Z") and end - start == 1.5 * 86400
    incs = doc["incidents"]
    assert {i["kind"] for i in incs} == set(KINDS)
    assert len({i["id"] for i in incs}) == len(incs)
    pubs = {e.publisher_id for e in labelled.events}
    spans = []
    for i in incs:
        lo, hi = parse_iso(i["start"]), parse_iso(i["end"])
        assert start + 12 * 3600 <= lo < hi <= end
        spans.append((lo, hi))
        assert i["trap"] is (i["alert_kind"] is None)
        if i["alert_kind"] is not None:
            assert i["alert_kind"] in set(Kind)
            want = {"publisher_spike": "publisher", "platform_spike": "platform"}
            assert i["category"] == want.get(i["alert_kind"], "data_quality")
        if i["alert_kind"] == "publisher_spike" or i["kind"] in (
            "publisher_promotion",
            "new_large_publisher",
        ):
            assert i["publisher_id"] in pubs
        else:
            assert i["publisher_id"] is None
        assert isinstance(i["magnitude"], dict) and i["description"]
    assert set(next(i for i in incs if i["kind"] == "tiny_publishers")["publisher_ids"]) <= pubs
    spans.sort()
    assert all(b[0] - a[1] >= 1200 for a, b in zip(spans, spans[1:], strict=False))


def test_orders_follow_the_beijing_day(quiet: Stream) -> None:
    by_hour = Counter(
        int((_ts(e) + BEIJING) % 86400 // 3600) for e in quiet.first if e.status == "paid"
    )
    peak = max(by_hour.values())
    assert max(by_hour[h] for h in range(2, 7)) < 0.5 * peak
    assert max(by_hour, key=by_hour.__getitem__) in (9, 10, 11, 19, 20, 21, 22)


def test_publisher_sizes_are_heavy_tailed(quiet: Stream) -> None:
    per_pub = Counter(e.publisher_id for e in quiet.first if e.status == "paid")
    sizes = sorted(per_pub.values(), reverse=True)
    total = sum(sizes)
    n = quiet.summary["publishers"]
    assert sum(sizes[: max(3, n // 100)]) > 0.2 * total  # the top 1 % (at least three)
    small = sum(1 for s in sizes if s < 2 * 10) + (n - len(sizes))  # < 10 orders a day
    assert small > 0.4 * n


def test_event_time_disorder_is_small_but_present(quiet: Stream) -> None:
    behind, hi = [], float("-inf")
    for e in quiet.events:
        t = _ts(e)
        behind.append(max(0.0, hi - t))
        hi = max(hi, t)
    n = len(behind)
    assert sum(b > 0 for b in behind) > 0.2 * n  # jitter reorders events
    assert sum(b > 30 for b in behind) < 0.06 * n  # mostly within 30 s
    assert sum(b > 600 for b in behind) > 0.0005 * n  # a few late deliveries
    assert max(behind) < 3 * 3600


def test_invalidations_are_at_steady_state_from_the_first_hour(quiet: Stream) -> None:
    t0 = parse_iso(quiet.doc["start"])
    hours = Counter(int((_ts(e) - t0) // 3600) for e in quiet.first if e.status == "invalidated")
    day1, day2 = sum(hours[h] for h in range(8)), sum(hours[h] for h in range(24, 32))
    assert hours[0] > 0 and 0.6 < day1 / day2 < 1.6
    steps = Counter(e.status for e in quiet.first)
    assert steps["confirmed"] > 0.3 * steps["paid"] and steps["settled"] > 0.3 * steps["paid"]
    reasons = Counter(e.reason for e in quiet.first if e.reason)
    assert reasons.most_common(2)[0][0] == "refund" and reasons.most_common(2)[1][0] == "cancel"
    assert 0.06 < steps["invalidated"] / steps["paid"] < 0.2


def test_normal_traffic_never_breaks_the_lifecycle(quiet: Stream) -> None:
    per_order: dict[str, list[OrderEvent]] = defaultdict(list)
    for e in quiet.first:
        per_order[e.order_id].append(e)
    for evs in per_order.values():
        assert len({e.publisher_id for e in evs}) == 1
        ranks = [RANK[e.status] for e in sorted(evs, key=lambda e: (_ts(e), RANK[e.status]))]
        assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    assert any(len(v) >= 3 for v in per_order.values())
    parents = Counter(
        e.parent_order_id for e in quiet.first if e.status == "paid" and e.parent_order_id
    )
    assert max(parents.values()) >= 2  # some buyers' orders have several sub-orders


def _incident(s: Stream, kind: str) -> tuple[dict[str, Any], float, float]:
    inc = next(i for i in s.doc["incidents"] if i["kind"] == kind)
    return inc, parse_iso(inc["start"]), parse_iso(inc["end"])


def test_publisher_incidents_show_in_that_publishers_invalidations(labelled: Stream) -> None:
    for kind, reason in (
        ("fraud_burst", "fraud"),
        ("brushing", "violation"),
        ("refund_wave", "refund"),
    ):
        inc, lo, hi = _incident(labelled, kind)
        n = sum(
            1
            for e in labelled.first
            if e.publisher_id == inc["publisher_id"] and e.reason == reason and lo <= _ts(e) <= hi
        )
        assert n >= 12, kind


def test_platform_glitch_hits_many_publishers_at_once(labelled: Stream) -> None:
    inc, lo, hi = _incident(labelled, "platform_glitch")
    anomalies = [_ts(e) for e in labelled.first if e.reason == "data_anomaly"]
    hit = [e for e in labelled.first if e.reason == "data_anomaly" and lo <= _ts(e) <= hi]
    assert len({e.publisher_id for e in hit}) >= 3
    assert len(hit) >= inc["magnitude"]["extra_invalidations"] * 0.9
    before = sum(lo - 6 * 3600 <= t < lo for t in anomalies) / (6 * 3600)
    assert len(hit) / (hi - lo) > 10 * before  # data_anomaly is otherwise rare


def test_feed_incidents_corrupt_the_feed_only_in_their_window(labelled: Stream) -> None:
    s = labelled
    inc, lo, hi = _incident(s, "duplicate_storm")
    ids = [e.event_id for e in s.events if lo <= _ts(e) <= hi]
    assert len(ids) - len(set(ids)) > 0.05 * len(ids)
    _, lo, hi = _incident(s, "clock_skew")
    future = [
        e
        for e in s.events
        if lo + 7 * 3600 <= _ts(e) <= hi + 8 * 3600 + 60
        and e.occurred_at.utcoffset().total_seconds() == 0
    ]
    assert len(future) > 10
    _, lo, hi = _incident(s, "reason_shift")
    inv = [e for e in s.first if e.status == "invalidated" and lo <= _ts(e) <= hi]
    assert sum(e.reason == "other" for e in inv) > 0.3 * len(inv)
    _, lo, hi = _incident(s, "volume_drop")
    t = [_ts(e) for e in s.first]
    inside = sum(lo <= x < hi for x in t) / (hi - lo)
    after_end = min(hi + 3600, parse_iso(s.doc["end"]))
    before = sum(lo - 3600 <= x < lo for x in t) / 3600
    after = sum(hi <= x < after_end for x in t) / max(60, after_end - hi)
    assert inside < 0.85 * (before + after) / 2  # against the trend around it
    inc, lo, hi = _incident(s, "malformed_burst")
    last, bad, total = 0.0, 0, 0
    for item in s.items:
        if isinstance(item, OrderEvent):
            last = _ts(item)
        if lo <= last <= hi:
            total += 1
            bad += isinstance(item, Rejection)
    assert bad > 0.015 * total


def test_lifecycle_bug_makes_impossible_steps(labelled: Stream) -> None:
    inc, lo, hi = _incident(labelled, "lifecycle_bug")
    seen: dict[str, tuple[str, int, float]] = {}
    bad = 0
    for e in sorted(labelled.first, key=lambda e: (_ts(e), RANK[e.status])):
        prev = seen.get(e.order_id)
        if prev and (prev[0] != e.publisher_id or prev[1] == 4 or RANK[e.status] < prev[1]):
            bad += lo <= _ts(e) <= hi + 1800
        seen[e.order_id] = (e.publisher_id, max(RANK[e.status], prev[1] if prev else 0), _ts(e))
    assert bad >= max(1, inc["magnitude"]["impossible_steps"] // 2)
