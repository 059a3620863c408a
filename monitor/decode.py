"""Decoding of the wire contract: bytes in, an ``OrderEvent`` or a ``Rejection`` out.

msgspec validates types, lengths, enums and the RFC 3339 timestamp in C; the few rules
JSON Schema expresses that msgspec cannot (``reason`` iff ``invalidated``) are checked
here. Nothing raises: every input becomes an event or a rejection with a stable code
and a message that names the field.
"""

from __future__ import annotations

import re

import msgspec

from monitor.model import OrderEvent, RejectCode, Rejection, Status

DEFAULT_MAX_BYTES = 64 * 1024

_decoder = msgspec.json.Decoder(OrderEvent)
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
    if ev.status is Status.INVALIDATED:
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
