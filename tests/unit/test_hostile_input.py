"""Hostile bytes: whatever arrives, no exception leaves a stage, every message is accepted
or rejected with a code and counted, and every rejected one is kept (replay's rejects
file here; the stream's dead-letter topic in tests/integration/test_stream_dlq.py).

Property tests with a fixed, database-less profile (``derandomize``: the same examples on
every run) and a modest example count; ``python -m tests.fuzz --minutes 5`` runs the same
strategies and invariants for longer, with fresh randomness.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.cli import main as ordermon
from monitor.decode import DEFAULT_MAX_BYTES, decode
from monitor.model import OrderEvent, RejectCode, Rejection
from monitor.pipeline import Monitor, MonitorParams
from tests.hostile import (
    HOSTILE_NUMBERS,
    HOSTILE_STRINGS,
    check_decoded,
    dump,
    feed,
    hostile_inputs,
    js,
    line_safe,
    nested,
    run_monitor,
    run_replay,
    run_stream_stages,
    stream_inputs,
    tally,
    valid_events,
)

FIXED = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PARAMS = MonitorParams(warmup_windows=1)  # detection runs from the second window on


def fixed(examples: int) -> settings:
    return settings(FIXED, max_examples=examples)


@fixed(400)
@given(hostile_inputs())
def test_the_decoder_turns_any_bytes_into_an_event_or_a_coded_rejection(raw: bytes) -> None:
    check_decoded(raw, decode(raw), DEFAULT_MAX_BYTES)


@fixed(150)
@given(st.integers(0, 2048), st.integers(-3, 3), valid_events())
def test_the_size_limit_is_configurable_and_exact(limit: int, delta: int, event: bytes) -> None:
    """A message over ``max_event_bytes`` is ``too_large`` whatever it holds; one at or
    under the limit is judged on its content."""
    size = max(0, limit + delta)
    pad = size - len(event) - len(b',"pad":""')
    raw = event[:-1] + b',"pad":"' + b"x" * pad + b'"}' if pad >= 0 else event[:size]
    assert len(raw) == size
    mon = Monitor(MonitorParams(max_event_bytes=limit))
    rej = feed(mon.process, mon, raw, limit)
    check_decoded(raw, decode(raw, limit), limit)
    assert (rej is not None and rej.code is RejectCode.TOO_LARGE) == (size > limit)


@fixed(100)
@given(st.lists(stream_inputs(), min_size=20, max_size=60))
def test_the_one_process_monitor_counts_every_message_and_keeps_a_usable_state(
    inputs: list[bytes],
) -> None:
    run_monitor(inputs, PARAMS)


@fixed(100)
@given(st.lists(st.tuples(stream_inputs(), st.integers(0, 1)), min_size=20, max_size=60))
def test_the_stream_stages_never_raise_on_hostile_messages(
    inputs: list[tuple[bytes, int]],
) -> None:
    run_stream_stages(inputs, PARAMS)


@fixed(60)
@given(st.lists(hostile_inputs().map(line_safe), min_size=1, max_size=30), valid_events())
def test_replay_keeps_every_rejected_line_with_its_code_and_bytes(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], first: bytes
) -> None:
    run_replay([first, *lines], tmp_path_factory.mktemp("replay"), PARAMS)


# -- named hostile inputs: what each one is classified as ---------------------------------

BASE = [
    ("schema_version", b"1"), ("event_id", b'"e-1"'), ("order_id", b'"o-1"'),
    ("publisher_id", b'"pub-1"'), ("status", b'"paid"'), ("amount", b"50.0"),
    ("commission", b"2.5"), ("occurred_at", b'"2026-11-11T00:00:00+08:00"'),
]  # fmt: skip


def with_value(key: str, value: bytes) -> bytes:
    return dump([(k, value if k == key else v) for k, v in BASE])


def json_number(token: bytes) -> float | None:
    """The oracle: Python's own JSON parser, strict (no NaN/Infinity), as a finite float."""

    def refuse(name: str) -> float:
        raise ValueError(name)

    try:
        value = json.loads(token, parse_int=float, parse_constant=refuse)
    except ValueError:
        return None
    ok = type(value) is float and math.isfinite(value)
    return value if ok else None


@pytest.mark.parametrize("token", HOSTILE_NUMBERS, ids=lambda t: t[:12].decode())
def test_hostile_numbers_in_a_money_field_are_accepted_only_as_finite_non_negative_floats(
    token: bytes,
) -> None:
    got = decode(with_value("amount", token))
    want = json_number(token)
    if want is not None and want >= 0:
        assert isinstance(got, OrderEvent) and got.amount == want, (token, got)
    else:
        assert isinstance(got, Rejection), token
        assert got.code in (RejectCode.NOT_JSON, RejectCode.BAD_VALUE, RejectCode.WRONG_TYPE)
        assert got.field in (None, "amount")


@pytest.mark.parametrize("token", HOSTILE_STRINGS, ids=lambda t: repr(t[:14]))
def test_hostile_strings_in_every_string_field_are_classified(token: bytes) -> None:
    for key in ("event_id", "publisher_id", "status", "occurred_at"):
        check_decoded(raw := with_value(key, token), decode(raw), DEFAULT_MAX_BYTES)


def test_nan_and_infinity_literals_are_not_json() -> None:
    for token in (b"NaN", b"Infinity", b"-Infinity"):
        got = decode(with_value("commission", token))
        assert isinstance(got, Rejection) and got.code is RejectCode.NOT_JSON


def test_duplicate_keys_take_the_last_value_as_json_loads_does() -> None:
    raw = dump([*BASE, ("publisher_id", b'"pub-2"')])
    got = decode(raw)
    assert isinstance(got, OrderEvent) and got.publisher_id == json.loads(raw)["publisher_id"]
    got = decode(dump([*BASE, ("schema_version", b"2")]))
    assert isinstance(got, Rejection) and got.code is RejectCode.UNSUPPORTED_VERSION


@pytest.mark.parametrize("depth", [1_000, 10_000, 32_000])
@pytest.mark.parametrize("kind", ["[", "{"])
def test_deep_nesting_is_rejected_not_a_recursion_error(depth: int, kind: str) -> None:
    """Even in an ignored extra field: 1,000 levels are rejected (``not_json``, or
    ``too_large``), an exception never escapes."""
    for raw in (nested(depth, kind), dump([*BASE, ("x", nested(depth, kind))])):
        got = decode(raw)
        check_decoded(raw, got, DEFAULT_MAX_BYTES)
        assert isinstance(got, Rejection)
        mon = Monitor()
        feed(mon.process, mon, raw, DEFAULT_MAX_BYTES)


def test_invalid_utf8_and_lone_surrogates_are_not_utf8_or_not_json() -> None:
    raw = with_value("event_id", '"\ud800"'.encode("utf-8", "surrogatepass"))
    assert decode(raw).code is RejectCode.NOT_UTF8  # type: ignore[union-attr]
    got = decode(with_value("event_id", b'"\\ud800"'))
    assert isinstance(got, Rejection) and got.code is RejectCode.NOT_JSON
    got = decode(b"\xff" + with_value("event_id", b'"e"'))
    assert isinstance(got, Rejection) and got.code is RejectCode.NOT_UTF8


def test_the_default_size_limit_is_64_kib_and_a_limit_sized_message_is_judged() -> None:
    assert DEFAULT_MAX_BYTES == 64 * 1024
    bare = dump([*BASE, ("x", b'""')])
    at_limit = dump([*BASE, ("x", js("y" * (DEFAULT_MAX_BYTES - len(bare))))])
    assert len(at_limit) == DEFAULT_MAX_BYTES and isinstance(decode(at_limit), OrderEvent)
    over = at_limit[:-2] + b'y"}'
    assert decode(over).code is RejectCode.TOO_LARGE  # type: ignore[union-attr]


def test_ordermon_replay_rejects_file_keeps_every_hostile_line(tmp_path: Path) -> None:
    lines = [with_value("amount", t) for t in HOSTILE_NUMBERS]
    lines += [with_value("occurred_at", t).replace(b"\n", b" ") for t in HOSTILE_STRINGS]
    lines += [nested(5000, "["), b"\xff\xfe", b"[]", b"{}", b"x" * (DEFAULT_MAX_BYTES + 1)]
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    rejects = tmp_path / "rejects.jsonl"
    code = ordermon(["replay", str(events), "--out", str(tmp_path / "alerts.jsonl"),
                     "--rejects", str(rejects), "--quiet"])  # fmt: skip
    assert code == 0
    want = [i for i, line in enumerate(lines, 1) if isinstance(decode(line), Rejection)]
    recs = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert [r["line"] for r in recs] == want and len(want) > len(lines) // 2


# -- found by the fuzz run: timestamps at the edges of what a datetime holds -------------

FAR_FUTURE = "9999-12-31T23:59:59-23:59"  # valid RFC 3339; in UTC it is year 10000


def test_a_timestamp_past_year_9999_in_utc_does_not_crash_the_monitor() -> None:
    mon = Monitor()
    mon.process(with_value("occurred_at", b'"2026-11-11T00:00:00Z"'))
    for i in range(25):
        raw = dump(
            [
                (
                    k,
                    js(f"e-{i}")
                    if k == "event_id"
                    else js(f"o-{i}")
                    if k == "order_id"
                    else js(FAR_FUTURE)
                    if k == "occurred_at"
                    else v,
                )
                for k, v in BASE
            ]
        )
        feed(mon.process, mon, raw, DEFAULT_MAX_BYTES)  # fmt: skip
    mon.flush()
    assert tally(mon) == 26
    assert mon.ingest.rejected.get("bad_timestamp") == 25
