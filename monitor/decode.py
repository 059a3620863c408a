"""Decoding of the wire contract: bytes in, an ``OrderEvent`` or a ``Rejection`` out.

msgspec validates types, lengths, enums and the RFC 3339 timestamp in C; the few rules
JSON Schema expresses that msgspec cannot (``reason`` iff ``invalidated``) are checked
here. Nothing raises: every input becomes an event or a rejection with a stable code
and a message that names the field.
"""

from __future__ import annotations

import datetime as dt
import re

import msgspec

from monitor.model import OrderEvent, RejectCode, Rejection, Status

DEFAULT_MAX_BYTES = 64 * 1024

_decoder = msgspec.json.Decoder(OrderEvent)
# An order event stamped outside these years is a broken producer, not a clock skew to
# measure: rejected as bad_timestamp (and kept), so it never reaches a window (a year-10000
# window end cannot even be written as a timestamp).
MIN_YEAR, MAX_YEAR = 2000, 2099
_INVALIDATED = Status.INVALIDATED  # a module constant: ``Status.X`` is a slow lookup
_AT = re.compile(r" - at `\$\.?([^`]*)`$")
_MISSING = re.compile(r"missing required field `([^`]+)`")


def decode(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> OrderEvent | Rejection:
    """Decode one message value (or one JSONL line) into an event or a rejection."""
    if len(raw) > max_bytes:
        return Rejection(RejectCode.TOO_LARGE, f"message of {len(raw)} bytes exceeds {max_bytes}")
    try:
        ev = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        return _classify(str(exc))
    except msgspec.DecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as uexc:
            return Rejection(
                RejectCode.NOT_UTF8, f"not valid UTF-8: {uexc.reason} at byte {uexc.start}"
            )
        return Rejection(RejectCode.NOT_JSON, f"not valid JSON: {exc}")
    except UnicodeDecodeError as exc:
        return Rejection(RejectCode.NOT_UTF8, f"not valid UTF-8: {exc.reason} at byte {exc.start}")
    except Exception as exc:  # defensive: no input may escape as an exception
        return Rejection(RejectCode.NOT_JSON, f"undecodable: {type(exc).__name__}: {exc}")
    year = ev.occurred_at.year
    if year < MIN_YEAR or year > MAX_YEAR:
        return Rejection(
            RejectCode.BAD_TIMESTAMP,
            f"field `occurred_at` is outside {MIN_YEAR}-{MAX_YEAR}: {ev.occurred_at.isoformat()}",
            "occurred_at",
        )
    if ev.status is _INVALIDATED:
        if ev.reason is None:
            return Rejection(
                RejectCode.MISSING_FIELD,
                "field `reason` is required when status is `invalidated`",
                "reason",
            )
    elif ev.reason is not None:
        return Rejection(
            RejectCode.BAD_VALUE,
            f"field `reason` is only allowed when status is `invalidated`, not `{ev.status}`",
            "reason",
        )
    return ev


_EPOCH_DAY = dt.date(1970, 1, 1).toordinal()
_OFFSET_S: dict[dt.tzinfo, int] = {}  # whole-second UTC offsets seen (RFC 3339: minutes)


def event_time(ev: OrderEvent) -> float:
    """``ev.occurred_at.timestamp()``, bit for bit, at half the cost.

    An aware datetime's ``timestamp()`` builds two offsets and a timedelta per call, and
    every event needs one. Here the offset of each fixed zone is looked up once; a time in
    whole seconds is then float arithmetic on integers below 2**53 (exact), and a fraction
    of a second is ``timestamp()``'s own single, correctly rounded division of the integer
    count of microseconds. ``tests/unit/test_event_time.py`` checks the equality.
    """
    d = ev.occurred_at
    off = _OFFSET_S.get(d.tzinfo)  # type: ignore[arg-type]
    if off is None:
        off = _zone_offset(d.tzinfo)
        if off is None:
            return d.timestamp()
    day = d.toordinal() - _EPOCH_DAY
    second = d.hour * 3600 + d.minute * 60 + d.second - off
    us = d.microsecond
    if us:
        return ((day * 86400 + second) * 1_000_000 + us) / 1_000_000
    return day * 86400.0 + second


def _zone_offset(tz: dt.tzinfo | None) -> int | None:
    """The offset of a fixed zone in whole seconds (cached), else None."""
    if type(tz) is not dt.timezone:  # msgspec only makes fixed offsets
        return None
    delta = tz.utcoffset(None)
    if delta.microseconds:
        return None
    off = _OFFSET_S[tz] = delta.days * 86400 + delta.seconds
    return off


def _classify(msg: str) -> Rejection:
    m = _MISSING.search(msg)
    if m:
        return Rejection(RejectCode.MISSING_FIELD, f"missing required field `{m[1]}`", m[1])
    at = _AT.search(msg)
    field = at[1] if at else None
    detail = msg[: at.start()] if at else msg
    where = f"field `{field}`" if field else "document"
    if field is None and detail.startswith("Expected `object`"):
        return Rejection(RejectCode.NOT_OBJECT, f"event must be a JSON object: {detail}")
    if field == "schema_version":
        if detail.startswith("Invalid enum value"):
            version = detail.removeprefix("Invalid enum value ").strip()
            return Rejection(
                RejectCode.UNSUPPORTED_VERSION,
                f"schema_version {version} is not supported (this monitor reads version 1)",
                field,
            )
        return Rejection(RejectCode.WRONG_TYPE, f"{where}: {detail}", field)
    if field == "occurred_at":
        if detail.startswith("Expected `datetime`, got"):
            return Rejection(RejectCode.WRONG_TYPE, f"{where}: {detail}", field)
        return Rejection(
            RejectCode.BAD_TIMESTAMP,
            f"{where}: {detail} (need RFC 3339 with an offset, e.g. 2026-11-11T00:00:00+08:00)",
            field,
        )
    if ", got `" in detail:
        return Rejection(RejectCode.WRONG_TYPE, f"{where}: {detail}", field)
    return Rejection(RejectCode.BAD_VALUE, f"{where}: {detail}", field)
