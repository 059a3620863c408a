"""Decoding of the wire contract: bytes in, an ``OrderEvent`` or a ``Rejection`` out.

msgspec validates types, lengths, enums and the RFC 3339 timestamp in C; the few rules
JSON Schema expresses that msgspec cannot (``reason`` iff ``invalidated``) are checked
here. Nothing raises: every input becomes an event or a rejection with a stable code
and a message that names the field.

Two decoders, one contract: ``OrderEvent`` leaves out the currency pattern (checked here,
in one string comparison for the usual ``CNY``), and anything that fails is decoded again
by ``_ContractEvent``, which has it. The second one words every rejection, so a document
with several faults is rejected for the first one in document order, as if one decoder
with every rule had read it.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

import msgspec

from monitor.model import CURRENCY_PATTERN, OrderEvent, RejectCode, Rejection, Status

DEFAULT_MAX_BYTES = 64 * 1024


class _ContractEvent(OrderEvent, frozen=True):
    """``OrderEvent`` with the currency pattern: only words rejections, never returned."""

    currency: Annotated[str, msgspec.Meta(pattern=CURRENCY_PATTERN)] = "CNY"


_decoder = msgspec.json.Decoder(OrderEvent)
_contract_decoder = msgspec.json.Decoder(_ContractEvent)
_CURRENCY = re.compile(CURRENCY_PATTERN)  # msgspec's pattern test is ``search`` too
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
    except Exception:  # anything: the contract decoder says why (and nothing escapes)
        return _rejection(raw)
    currency = ev.currency
    if currency != "CNY" and _CURRENCY.search(currency) is None:
        return _rejection(raw)
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


def _rejection(raw: bytes) -> Rejection:
    """Why ``raw`` is not an event, in the contract decoder's words (the rare path)."""
    try:
        _contract_decoder.decode(raw)
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
    # not reached: the contract decoder accepts only what the fast one does, currency aside
    return Rejection(RejectCode.BAD_VALUE, "the two event decoders disagree (a monitor bug)")


_EPOCHS: dict[dt.tzinfo, dt.datetime] = {}  # the Unix epoch in each fixed zone seen


def event_time(ev: OrderEvent) -> float:
    """``ev.occurred_at.timestamp()``, bit for bit, at half the cost.

    An aware datetime's ``timestamp()`` subtracts the UTC epoch, which asks both zones for
    their offsets (two method calls) on every event. Subtracting the epoch expressed in the
    event's own zone instead is a plain field difference (two datetimes sharing a tzinfo
    object are subtracted without offsets; msgspec reuses one object per offset), and
    ``total_seconds()`` is the same single, correctly rounded division of the integer
    count of microseconds that ``timestamp()`` ends with. ``tests/unit/test_event_time.py``
    checks the equality.
    """
    d = ev.occurred_at
    epoch = _EPOCHS.get(d.tzinfo)  # type: ignore[arg-type]
    if epoch is None:
        epoch = _zone_epoch(d.tzinfo)
        if epoch is None:
            return d.timestamp()
    return (d - epoch).total_seconds()


def _zone_epoch(tz: dt.tzinfo | None) -> dt.datetime | None:
    """The Unix epoch as a time in the fixed zone ``tz`` (cached), else None."""
    if type(tz) is not dt.timezone:  # msgspec only makes fixed offsets
        return None
    epoch = _EPOCHS[tz] = dt.datetime(1970, 1, 1, tzinfo=dt.UTC).astimezone(tz)
    return epoch


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
