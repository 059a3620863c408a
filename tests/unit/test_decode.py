"""Every contract example is classified right; every rejection has a stable code."""

from __future__ import annotations

import json

import pytest

from monitor.decode import decode
from monitor.model import OrderEvent, RejectCode, Rejection

# the expected code of each line of examples/invalid-events.jsonl, in order
INVALID_CODES = [
    (RejectCode.MISSING_FIELD, "reason"),  # invalidated without reason
    (RejectCode.BAD_VALUE, "reason"),  # reason on a paid event
    (RejectCode.BAD_VALUE, "amount"),  # negative amount
    (RejectCode.BAD_VALUE, "status"),  # unknown status
    (RejectCode.BAD_VALUE, "publisher_id"),  # empty publisher
    (RejectCode.BAD_TIMESTAMP, "occurred_at"),  # "yesterday"
    (RejectCode.WRONG_TYPE, "amount"),  # amount as a string
    (RejectCode.UNSUPPORTED_VERSION, "schema_version"),  # version 2
    (RejectCode.MISSING_FIELD, "schema_version"),  # no version
    (RejectCode.BAD_TIMESTAMP, "occurred_at"),  # no offset
    (RejectCode.NOT_OBJECT, None),  # a JSON array
    (RejectCode.NOT_JSON, None),  # truncated
    (RejectCode.NOT_JSON, None),  # not JSON
]


def _lines(path):
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def test_every_valid_example_is_accepted(contract):
    lines = _lines(contract / "examples" / "valid-events.jsonl")
    assert len(lines) == 5
    for line in lines:
        ev = decode(line)
        assert isinstance(ev, OrderEvent), (line, ev)
        assert ev.event_id == json.loads(line)["event_id"]


def test_every_invalid_example_is_rejected_with_its_code_and_field(contract):
    lines = _lines(contract / "examples" / "invalid-events.jsonl")
    assert len(lines) == len(INVALID_CODES)
    for line, (code, field) in zip(lines, INVALID_CODES, strict=True):
        rej = decode(line)
        assert isinstance(rej, Rejection), line
        assert (rej.code, rej.field) == (code, field), (line, rej)
        if field:
            assert field in rej.message


def test_extra_fields_are_ignored_and_currency_defaults_to_cny(contract):
    ev = decode(_lines(contract / "examples" / "valid-events.jsonl")[4])
    assert isinstance(ev, OrderEvent)
    assert ev.currency == "CNY"


@pytest.mark.parametrize(
    "raw, code",
    [
        (b"\xff\xfe{", RejectCode.NOT_UTF8),
        (b'{"schema_version": "1"}', RejectCode.WRONG_TYPE),
        (b"x" * 70_000, RejectCode.TOO_LARGE),
        (b"", RejectCode.NOT_JSON),
        (b"null", RejectCode.NOT_OBJECT),
    ],
)
def test_hostile_inputs_become_rejections_not_exceptions(raw, code):
    rej = decode(raw)
    assert isinstance(rej, Rejection)
    assert rej.code == code


def test_amount_out_of_float_range_is_a_bad_value():
    raw = (
        b'{"schema_version":1,"event_id":"e","order_id":"o","publisher_id":"p","status":"paid",'
        b'"amount":1e400,"commission":1,"occurred_at":"2026-11-11T00:00:00Z"}'
    )
    rej = decode(raw)
    assert isinstance(rej, Rejection) and rej.code == RejectCode.BAD_VALUE and rej.field == "amount"
