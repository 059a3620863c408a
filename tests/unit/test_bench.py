"""``ordermon bench``'s pure parts on tiny sizes: figures consistent, machine lines parseable.

No timed assertions: speeds are only checked to be positive.
"""

from __future__ import annotations

import io
import json
import math
import re
from types import SimpleNamespace
from typing import Any

import pytest

from monitor import bench
from monitor.benchdata import generate
from monitor.decode import decode
from monitor.model import Rejection

MACHINE = re.compile(r"^bench [a-z_]+( [a-z_0-9]+=[^\s=]+)+$")


@pytest.fixture(scope="module")
def synth() -> Any:
    return generate(4000, 60, seed=3, per_window=100.0, spike_every=4)


def _args(**kw: Any) -> SimpleNamespace:
    base = {"quick": True, "events": None, "publishers": None, "stream_events": None,
            "latency_seconds": None, "only": None, "seed": 1, "store": "memory://"}  # fmt: skip
    return SimpleNamespace(**(base | kw))


def _fields(line: str) -> dict[str, str]:
    assert MACHINE.match(line), line
    return dict(kv.split("=", 1) for kv in line.split()[2:])


def test_generator_gives_exactly_the_events_asked_for_valid_and_deterministic(synth):
    assert len(synth.lines) == len(synth.ts) == len(synth.keys) == 4000
    again = generate(4000, 60, seed=3, per_window=100.0, spike_every=4)
    assert again.lines == synth.lines
    decoded = [decode(line) for line in synth.lines]
    rejected = [i for i, d in enumerate(decoded) if isinstance(d, Rejection)]
    assert all(math.isnan(synth.ts[i]) for i in rejected)  # only the deliberate truncations
    assert len(rejected) < 20
    valid = [d for d in decoded if not isinstance(d, Rejection)]
    assert {d.publisher_id for d in valid} == {f"pub-{p:07d}" for p in range(60)}
    assert len({d.publisher_id for d in valid}) == synth.publishers
    assert len({d.order_id for d in valid}) == synth.orders
    statuses = {d.status.value for d in valid}
    assert {"created", "paid", "confirmed", "invalidated"} <= statuses
    assert all((d.reason is None) == (d.status.value != "invalidated") for d in valid)
    assert synth.spikes > 0


def test_every_publisher_appears_when_there_are_enough_orders():
    s = generate(3000, 500, seed=1, per_window=300.0)
    assert s.publishers == 500


def test_replay_and_decode_only_count_every_event(synth):
    rep = bench.measure_replay(synth.lines)
    dec = bench.measure_decode_only(synth.lines)
    assert rep["events"] == rep["counted"] == dec["events"] == dec["counted"] == 4000
    assert dec["publishers"] == synth.publishers
    assert rep["eps"] > 0 and dec["eps"] > 0 and rep["windows"] > 0


def test_scale_point_weighs_the_state_it_built(synth):
    pt = bench.measure_scale(synth.lines)
    assert pt["counted"] == pt["events"] == 4000
    assert 0 < pt["tracked_publishers"] <= synth.publishers
    assert 0 < pt["tracked_orders"] <= synth.orders
    assert pt["eps"] > 0 and isinstance(pt["rss_delta_bytes"], int)


def test_compact_reader_returns_the_lines_written():
    lines = [b'{"a":1}', b"x", b'{"b":2}']
    assert bench.read_lines_compact(io.BytesIO(b"\n".join(lines) + b"\n")) == lines


def test_scale_in_a_fresh_process_reports_the_same_counts():
    pt = bench.scale_subprocess(40, 1500, seed=2, per_window=300.0, timeout=60)
    assert pt["counted"] == pt["events"] == 1500
    assert pt["publishers"] == 40 and pt["distinct_publishers"] <= 40
    assert 0 < pt["tracked_orders"] <= pt["distinct_orders"]


def test_scale_section_lines_and_memory_per_unit():
    def fake_run(n: int, events: int, seed: int) -> dict[str, Any]:  # a state of known size
        return {"publishers": n, "events": events, "counted": events, "distinct_publishers": n,
                "tracked_publishers": n, "tracked_orders": 1000, "eps": 1000.0 - n,
                "cpu_eps": 2000.0, "rss_delta_bytes": 200_000 + 500 * n}  # fmt: skip

    got: list[bench.Result] = []
    bench.scale_section(5000, 1, got.append, sizes=(10, 100, 1000), run=fake_run)
    assert [r.name for r in got] == ["scale"] * 3 + ["scale_summary"]
    summary = _fields(got[-1].machine_line())
    assert float(summary["bytes_per_publisher"]) == 500.0  # (250_000 - 205_000) / 90
    assert float(summary["bytes_per_order"]) == 205.0  # 205_000 / 1000
    assert summary["bytes_per_order_ok"] == "fail" and summary["bytes_per_publisher_ok"] == "pass"
    assert float(summary["eps_ratio_max_vs_min"]) == round(0 / 990, 3)
    for r in got:
        _fields(r.machine_line())


def test_scale_sizes_run_in_interleaved_rounds_and_keep_their_fastest():
    calls: list[int] = []
    slow_spell = {1: 0.5, 5: 0.5}  # the VM slows down during the 2nd and the 6th run

    def fake_run(n: int, events: int, seed: int) -> dict[str, Any]:
        eps = (10_000.0 - n) * slow_spell.get(len(calls), 1.0)
        calls.append(n)
        return {"publishers": n, "events": events, "counted": events, "distinct_publishers": n,
                "tracked_publishers": n, "tracked_orders": 1000, "eps": eps, "cpu_eps": eps,
                "rss_delta_bytes": 200_000 + 500 * n}  # fmt: skip

    got: list[bench.Result] = []
    bench.scale_section(5000, 1, got.append, sizes=(10, 100, 1000), run=fake_run, rounds=2)
    assert calls == [10, 100, 1000, 10, 100, 1000]
    lines = [_fields(r.machine_line()) for r in got]
    assert [float(f["eps"]) for f in lines[:3]] == [9990.0, 9900.0, 9000.0]
    assert lines[1]["eps_runs"] == "4950,9900" and lines[2]["eps_runs"] == "9000,4500"
    assert "best of 2: 4,950 9,900" in got[1].human
    assert float(lines[3]["eps_ratio_max_vs_min"]) == round(9000 / 9990, 3)


def test_run_bench_prints_human_lines_then_machine_lines_last():
    args = _args(events=3000, publishers=20, only="replay", seed=5)
    lines: list[str] = []
    assert bench.run_bench(args, out=lines.append, err=lambda s: None) == 0
    machine = [i for i, line in enumerate(lines) if line.startswith("bench ")]
    assert machine == list(range(len(lines) - len(machine), len(lines)))  # the last lines
    assert [line.split()[1] for line in lines[machine[0] :]] == ["replay", "env"]
    rep = _fields(lines[machine[0]])
    assert int(rep["events"]) == 3000 and float(rep["eps"]) > 0
    assert float(rep["ratio"]) == pytest.approx(float(rep["eps"]) / float(rep["decode_only_eps"]),
                                                rel=0.01)  # fmt: skip
    assert rep["eps_ok"] in ("pass", "fail") and float(rep["eps_min"]) == 200_000
    # two replay runs interleaved with three decode-only runs, the fastest of each kept
    runs = [float(x) for x in rep["eps_runs"].split(",")]
    assert len(runs) == 2 and float(rep["eps"]) == pytest.approx(max(runs), abs=0.5)
    decode_runs = [float(x) for x in rep["decode_only_eps_runs"].split(",")]
    assert len(decode_runs) == 3
    assert float(rep["decode_only_eps"]) == pytest.approx(max(decode_runs), abs=0.5)


def test_unknown_section_is_a_usage_error():
    args = _args(only="replay,nope")
    errors: list[str] = []
    assert bench.run_bench(args, out=lambda s: None, err=errors.append) == 2
    assert "nope" in errors[0]


def test_machine_line_refuses_values_with_spaces():
    with pytest.raises(ValueError, match="bad machine field"):
        bench.machine_line("x", {"k": "a b"})


def test_latency_is_arrival_minus_the_send_that_closed_the_decisive_window():
    from streams.bench import _latencies

    def rec(status: str, start: str, end: str, detected: str) -> bytes:
        return json.dumps({"status": status, "window_start": start, "window_end": end,
                           "detected_at": detected}).encode()  # fmt: skip

    from monitor.model import parse_iso

    closes = {int(parse_iso("2026-11-01T08:20:00Z")): 100.0,
              int(parse_iso("2026-11-01T08:25:00Z")): 101.0}  # fmt: skip
    arrivals = [
        (100.5, rec("firing", "2026-11-01T08:15:00Z", "2026-11-01T08:20:00Z",
                    "2026-11-01T08:20:01Z")),
        # a resolved record names its first window; detected_at gives the closing one
        (102.0, rec("resolved", "2026-11-01T08:00:00Z", "2026-11-01T08:05:00Z",
                    "2026-11-01T08:25:00Z")),
        (90.0, rec("firing", "2026-11-01T07:55:00Z", "2026-11-01T08:00:00Z",
                   "2026-11-01T08:00:00Z")),  # closed before the run: not a sample
    ]  # fmt: skip
    got = _latencies(arrivals, closes, 300)
    assert got["records"] == 2 and got["records_earlier"] == 1 and got["window_mismatch"] == 0
    assert got["p50_s"] == 0.5 and got["p99_s"] == got["max_s"] == 1.0


def test_feed_routes_like_the_producers_and_ignores_malformed_clocks():
    from streams.bench import Feed
    from streams.tasks import partition_for

    feed = Feed(4)
    p = feed.route(b"o1", 1000.0)
    assert p == partition_for(b"o1", 4) and feed.clocks[p] == 1000.0
    feed.route(b"", math.nan)
    assert sum(feed.counts) == 2 and max(feed.clocks) == 1000.0
    assert feed.watermark(120) == -math.inf  # partitions without events hold time back
