"""``monitor.decode.event_time`` equals ``occurred_at.timestamp()`` bit for bit: it is the
event time of every window, clock and lateness decision, so a rounding difference would
move events between windows."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.decode import decode, event_time
from monitor.model import OrderEvent


def event(occurred_at: str) -> bytes:
    return json.dumps(
        {
            "schema_version": 1,
            "event_id": "e1",
            "order_id": "o1",
            "publisher_id": "p1",
            "status": "paid",
            "amount": 1.0,
            "commission": 0.1,
            "occurred_at": occurred_at,
        }
    ).encode()


@settings(max_examples=400, deadline=None)
@given(
    when=st.datetimes(min_value=dt.datetime(2000, 1, 2), max_value=dt.datetime(2099, 12, 30)),
    offset_min=st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
    fraction=st.sampled_from(["", ".5", ".123", ".000001", ".999999", ".1234567"]),
)
def test_event_time_equals_timestamp_for_any_rfc3339_time(when, offset_min, fraction):
    sign = "-" if offset_min < 0 else "+"
    hh, mm = divmod(abs(offset_min), 60)
    text = f"{when.year:04d}-{when:%m-%dT%H:%M:%S}{fraction}{sign}{hh:02d}:{mm:02d}"
    ev = decode(event(text))
    assert isinstance(ev, OrderEvent), (text, ev)
    assert event_time(ev) == ev.occurred_at.timestamp(), text
    # a second event in the same zone takes the cached offset
    assert event_time(ev) == ev.occurred_at.timestamp(), text


def test_utc_spellings_and_a_non_fixed_zone():
    for text in ("2026-11-11T00:00:00Z", "2026-11-11T00:00:00+00:00", "2000-01-01T00:00:00.5Z"):
        ev = decode(event(text))
        assert isinstance(ev, OrderEvent)
        assert event_time(ev) == ev.occurred_at.timestamp(), text
    # never made by the decoder, but a constructed event with a real zone still works
    ev = decode(event("2026-03-29T01:30:00Z"))
    assert isinstance(ev, OrderEvent)
    local = ev.occurred_at.astimezone(ZoneInfo("Europe/Berlin"))
    moved = OrderEvent(**{f: getattr(ev, f) for f in ev.__struct_fields__ if f != "occurred_at"},
                       occurred_at=local)  # fmt: skip
    assert event_time(moved) == local.timestamp() == ev.occurred_at.timestamp()


def test_an_equal_zone_that_is_another_object():
    """The cache is keyed by zone equality; a time whose zone is an equal but distinct
    object (not the decoder's) is subtracted through the offsets, still exactly."""
    ev = decode(event("2026-11-11T08:00:00.25+08:00"))
    assert isinstance(ev, OrderEvent)
    event_time(ev)  # caches the decoder's +08:00 object
    d = ev.occurred_at
    other = d.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert other.tzinfo is not d.tzinfo
    moved = OrderEvent(**{f: getattr(ev, f) for f in ev.__struct_fields__ if f != "occurred_at"},
                       occurred_at=other)  # fmt: skip
    assert event_time(moved) == other.timestamp() == d.timestamp()
