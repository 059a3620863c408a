"""Hostile input for the decoder and the ingest stage: hypothesis strategies, and the
invariants every input must satisfy whatever it is.

Shared by the property tests (``tests/unit/test_hostile_input.py``, a modest example count
in ``make test``) and the long fuzz run (``python -m tests.fuzz --minutes 5``), so both
look for the same failures: an exception out of a stage, an input neither accepted nor
rejected with a code, a rejection that cannot be written to the dead-letter topic or file.

Events are built as (key, raw JSON value) pairs and serialised by hand, so the strategies
can put in what ``json.dumps`` never writes: duplicate keys, ``NaN`` and ``Infinity``
literals, numbers with 5,000 digits, lone surrogate escapes, raw invalid UTF-8.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from monitor.model import OrderEvent, RejectCode, Rejection, Status

T0 = dt.datetime(2026, 11, 11, tzinfo=dt.UTC).timestamp()
STATUSES = ("created", "paid", "confirmed", "settled", "invalidated")
REASONS = ("refund", "cancel", "fraud", "violation", "data_anomaly", "other")
OPTIONAL = ("parent_order_id", "site_id", "adzone_id", "item_id", "shop_id")

# raw JSON number tokens a JSON encoder never writes, or that no float holds
HOSTILE_NUMBERS = (
    b"NaN", b"-NaN", b"nan", b"Infinity", b"-Infinity", b"inf", b"1e400", b"-1e400",
    b"1E+309", b"1e-400", b"-0", b"-0.0", b"0x10", b"01", b"+1", b".5", b"1.", b"1e",
    b"-", b"1" + b"0" * 5000, b"-" + b"9" * 5000, b"0." + b"0" * 5000 + b"1", b"9" * 400,
    b"18446744073709551616", b"-9223372036854775809", b"1e-7", b"true", b"null", b'"1"',
)  # fmt: skip
# raw JSON string tokens: lone and paired surrogate escapes, NUL, raw invalid UTF-8 inside
# a string, over-long ids, and timestamps at and past the edges of what a datetime holds
HOSTILE_STRINGS = (
    b'""', b'"\\ud800"', b'"\\udfff"', b'"\\udc00\\ud800"', b'"\\ud800\\u0041"',
    b'"\\ud83d\\ude00"', b'"\\u0000"', b'"a\\u0000b"', b'"\xed\xa0\x80"', b'"\xff"',
    b'"\xc0\x80"', b'"\xe4\xb8"', b'"\xf4\x90\x80\x80"', b'"\\x41"', b'"\\', b'"' + b"x" * 129
    + b'"', "\"漢字\"".encode(), b'"2026-11-11T00:00:00"', b'"2026-11-11T00:00:00+24:00"',
    b'"2026-02-30T00:00:00Z"', b'"2026-11-11T24:00:00Z"', b'"2026-11-11T23:59:60Z"',
    b'"2026-11-11t00:00:00z"', b'"2026-11-11 00:00:00Z"', b'"0000-01-01T00:00:00Z"',
    b'"0001-01-01T00:00:00+23:59"', b'"9999-12-31T23:59:59Z"',
    b'"2026-11-11T00:00:00.1234567891234Z"', b'"+2026-11-11T00:00:00Z"', b'"1e400"',
)  # fmt: skip
# bytes that are never valid UTF-8 where they stand
BAD_UTF8 = (b"\xff", b"\xfe", b"\xc0\x80", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xe4\xb8",
            b"\xf4\x90\x80\x80", b"\x80", b"\xf8\x88\x80\x80\x80")  # fmt: skip

Pairs = list[tuple[str, bytes]]


def js(value: Any) -> bytes:
    return json.dumps(value).encode()


def dump(pairs: Pairs) -> bytes:
    """``{"k": v, ...}`` from raw values, keys in the given order (duplicates kept)."""
    return b"{" + b",".join(js(k) + b":" + v for k, v in pairs) + b"}"


def rfc3339(ts: float, offset_min: int = 0, frac: bool = False) -> str:
    tz = dt.timezone(dt.timedelta(minutes=offset_min))
    d = dt.datetime.fromtimestamp(ts, tz)
    return d.isoformat(timespec="microseconds" if frac else "seconds").replace("+00:00", "Z")


OPTIONAL_VALUES = ("", "s-1", "漢字", "x" * 128, "a\u0000b", "adzone 7")
OFFSETS = (0, 0, 480, -300, 1439, -1439)


@st.composite
def event_pairs(draw: st.DrawFn, span_s: int = 4 * 3600, orders: int = 12) -> Pairs:
    """A valid event over a small id space (so duplicates and lifecycle steps happen).

    Drawn as one tuple of small integers: generation, not the code under test, is what
    costs time in these tests, and integers are hypothesis's cheapest draws."""
    status, eid, oid, pub, t, off, frac, amount, commission, reason, opt, order = draw(
        st.tuples(
            st.integers(0, len(STATUSES) - 1),
            st.integers(0, 3 * orders),
            st.integers(0, orders),
            st.integers(0, 3),
            st.integers(0, span_s),
            st.integers(0, len(OFFSETS) - 1),
            st.booleans(),
            st.integers(0, 10**8),
            st.integers(0, 10**6),
            st.integers(0, len(REASONS) - 1),
            st.integers(0, 4 * len(OPTIONAL_VALUES) - 1),
            st.integers(0, 255),
        )  # fmt: skip
    )
    pairs: Pairs = [
        ("schema_version", b"1"),
        ("event_id", js(f"e-{eid}")),
        ("order_id", js(f"o-{oid}")),
        ("publisher_id", js(f"pub-{pub}")),
        ("status", js(STATUSES[status])),
        ("amount", js(amount / 100)),
        ("commission", js(commission / 100)),
        ("occurred_at", js(rfc3339(T0 + t, OFFSETS[off], frac))),
    ]
    if STATUSES[status] == "invalidated":
        pairs.append(("reason", js(REASONS[reason])))
    if opt < len(OPTIONAL_VALUES):  # one optional field in a quarter of the events
        pairs.append((OPTIONAL[opt % len(OPTIONAL)], js(OPTIONAL_VALUES[opt])))
    if order < 64:  # a quarter in another key order
        random.Random(order).shuffle(pairs)
    return pairs


def valid_events(**kw: Any) -> st.SearchStrategy[bytes]:
    return event_pairs(**kw).map(dump)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),  # fmt: skip
    max_leaves=12,
)  # floats include NaN and +-inf: json.dumps writes them as NaN / Infinity literals


def nested(depth: int, kind: str, closed: bool = True) -> bytes:
    """``[[[...]]]`` or ``{"a":{"a":...}}`` ``depth`` deep (unclosed: truncated)."""
    if kind == "[":
        return b"[" * depth + (b"]" * depth if closed else b"")
    return b'{"a":' * depth + (b"1" + b"}" * depth if closed else b"")


@st.composite
def deep_json(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(1, 30_000) | st.sampled_from((64, 127, 128, 129, 255, 256, 1024)))
    value = nested(depth, draw(st.sampled_from("[{")), draw(st.booleans()))
    where = draw(st.sampled_from(("top", "field", "extra")))
    if where == "top":
        return value
    pairs = draw(event_pairs())
    if where == "field":
        i = draw(st.integers(0, len(pairs) - 1))
        pairs[i] = (pairs[i][0], value)
    else:
        pairs.insert(draw(st.integers(0, len(pairs))), ("x_nested", value))
    return dump(pairs)


MUTATIONS = ("drop", "replace_value", "number_token", "string_token", "extra_key",
             "duplicate_key", "insert_bytes", "truncate", "huge_string", "flip_byte",
             "surrogate_text")  # fmt: skip


@st.composite
def mutated_events(draw: st.DrawFn) -> bytes:
    """A valid event with one or two fields or bytes mutated."""
    pairs = draw(event_pairs())
    for _ in range(draw(st.integers(1, 2))):
        m = draw(st.sampled_from(MUTATIONS))
        i = draw(st.integers(0, len(pairs) - 1))
        key = pairs[i][0]
        if m == "drop":
            del pairs[i]
        elif m == "replace_value":
            pairs[i] = (key, json.dumps(draw(json_values)).encode())
        elif m == "number_token":
            pairs[i] = (key, draw(st.sampled_from(HOSTILE_NUMBERS)))
        elif m == "string_token":
            pairs[i] = (key, draw(st.sampled_from(HOSTILE_STRINGS)))
        elif m == "extra_key":
            pairs.insert(i, (draw(st.text(max_size=10)), js(draw(json_values))))
        elif m == "duplicate_key":  # the same key again, before or after, another value
            other = draw(st.sampled_from(HOSTILE_NUMBERS + HOSTILE_STRINGS[:8]))
            pairs.insert(draw(st.integers(0, len(pairs))), (key, other))
        elif m == "huge_string":
            n = draw(st.sampled_from((128, 129, 10_000, 65_000, 70_000)))
            pairs[i] = (key, js("x" * n))
        elif m == "surrogate_text":  # a lone surrogate as raw (surrogatepass) UTF-8
            pairs[i] = (key, ('"' + chr(draw(st.integers(0xD800, 0xDFFF))) + '"').encode(
                "utf-8", "surrogatepass"))  # fmt: skip
        if not pairs:
            pairs = [("schema_version", b"1")]
    raw = dump(pairs)
    m = draw(st.sampled_from(("none", "none", "insert_bytes", "truncate", "flip_byte")))
    pos = draw(st.integers(0, len(raw)))
    if m == "insert_bytes":
        raw = raw[:pos] + draw(st.sampled_from(BAD_UTF8) | st.binary(min_size=1, max_size=4)) \
            + raw[pos:]  # fmt: skip
    elif m == "truncate":
        raw = raw[:pos]
    elif m == "flip_byte" and raw:
        p = min(pos, len(raw) - 1)
        raw = raw[:p] + bytes([raw[p] ^ (1 << draw(st.integers(0, 7)))]) + raw[p + 1 :]
    return raw


json_documents = json_values.map(lambda v: json.dumps(v).encode())


def hostile_inputs() -> st.SearchStrategy[bytes]:
    """Any one message: arbitrary bytes, JSON documents, deep nesting, mutated and valid
    events (valid ones too, so that accepting is exercised as well as rejecting)."""
    return st.one_of(
        st.binary(max_size=300),
        json_documents,
        deep_json(),
        mutated_events(),
        valid_events(),
    )


def stream_inputs() -> st.SearchStrategy[bytes]:
    """A message of a stream: valid events most of the time, hostile ones in between."""
    return st.one_of(valid_events(), valid_events(), valid_events(), mutated_events(),
                     st.binary(max_size=60), json_documents)  # fmt: skip


# -- invariants ------------------------------------------------------------------------------


def check_event(raw: bytes, ev: OrderEvent, max_bytes: int) -> None:
    """An accepted event holds what the contract promises downstream stages."""
    assert len(raw) <= max_bytes
    assert (ev.reason is not None) == (ev.status is Status.INVALIDATED), ev
    assert math.isfinite(ev.amount) and ev.amount >= 0, ev
    assert math.isfinite(ev.commission) and ev.commission >= 0, ev
    assert ev.occurred_at.tzinfo is not None, ev
    for name in ("event_id", "order_id", "publisher_id"):
        assert 1 <= len(getattr(ev, name)) <= 128
        getattr(ev, name).encode("utf-8")  # ids become Kafka keys and metric labels


def check_rejection(raw: bytes, rej: Rejection, max_bytes: int) -> None:
    """A rejection has a stable code and a message that can travel in a Kafka header."""
    assert isinstance(rej, Rejection), rej
    assert isinstance(rej.code, RejectCode), rej
    assert isinstance(rej.message, str) and rej.message, rej
    rej.message.encode("utf-8")  # the dead-letter header ``ordermon-error-message``
    if rej.field is not None:
        rej.field.encode("utf-8")
    assert (rej.code is RejectCode.TOO_LARGE) == (len(raw) > max_bytes), (len(raw), rej)


def check_decoded(raw: bytes, got: object, max_bytes: int) -> None:
    if isinstance(got, OrderEvent):
        check_event(raw, got, max_bytes)
    else:
        check_rejection(raw, got, max_bytes)  # type: ignore[arg-type]


def tally(stage: Any) -> int:
    """Every input the stage has classified: accepted, duplicate or rejected."""
    return int(stage.accepted + stage.duplicates + sum(stage.rejected.values()))


def feed(process: Callable[[bytes], Rejection | None], stage: Any, raw: bytes,
         max_bytes: int) -> Rejection | None:  # fmt: skip
    """One message through ``process``: exactly one of accepted / duplicate / rejected moves,
    and a rejection is returned exactly when the rejected count moved (by its code)."""
    before, rejected = tally(stage), Counter(stage.rejected)
    rej = process(raw)
    assert tally(stage) == before + 1, raw[:200]
    if rej is not None:
        check_rejection(raw, rej, max_bytes)
        assert stage.rejected[rej.code] == rejected[rej.code] + 1
    else:
        assert sum(stage.rejected.values()) == sum(rejected.values())
    return rej


# -- whole-stage runs (the property tests and the fuzz run both call these) -----------------


def run_monitor(inputs: list[bytes], params: Any) -> Any:
    """The one-process monitor over ``inputs``: every message counted once, and the state
    after it still checkpoints (msgpack) and restores to the same state."""
    import msgspec

    from monitor.pipeline import Monitor

    mon = Monitor(params)
    for raw in inputs:
        feed(mon.process, mon, raw, params.max_event_bytes)
    mon.flush()
    assert tally(mon) == len(inputs)
    snap = mon.snapshot()
    wire = msgspec.msgpack.encode(snap)  # the stream driver checkpoints exactly this
    assert Monitor.restore(msgspec.msgpack.decode(wire), params).snapshot() == snap
    return mon


def run_stream_stages(inputs: list[tuple[bytes, int]], params: Any) -> None:
    """The stream driver's configuration of the stages: two sources, ticks, periodic
    eviction, windowing waiting for both sources (one marked idle now and then, as the
    wall-clock rule does), detection merging partials."""
    import msgspec

    from monitor.pipeline import Detection
    from monitor.stages import Ingest, Windowing

    ingest = Ingest(params, ticks=True, evict_every_s=3600)
    windowing = Windowing(params, part=0, expected_sources=2, idle_after_s=None)
    detection = Detection(params, parts=1)

    def settle() -> None:
        for fact in ingest.out:
            windowing.apply(fact)
        ingest.out.clear()
        for partial in windowing.out:
            detection.add(partial)
        windowing.out.clear()

    for n, (raw, source) in enumerate(inputs):
        feed(lambda r, s=source: ingest.process(r, s), ingest, raw, params.max_event_bytes)
        if n % 7 == 6:
            windowing.set_idle(1 - source)
        settle()
    ingest.flush()
    settle()
    windowing.flush()
    settle()
    assert tally(ingest) == len(inputs)
    msgspec.msgpack.encode([ingest.snapshot(), windowing.snapshot(), detection.snapshot()])


def line_safe(raw: bytes) -> bytes:
    """One JSONL line: no newline inside, none at the end (replay strips CR/LF there)."""
    return raw.replace(b"\n", b" ").rstrip(b"\r")


def run_replay(lines: list[bytes], workdir: Any, params: Any) -> None:
    """``replay`` over ``lines`` (the first one valid: replay sniffs gzip from the first
    bytes) with a rejects file: every rejected line is in it with its code, its message and
    its exact bytes (text, or base64 when not UTF-8)."""
    import base64

    from monitor.decode import decode
    from monitor.replay import replay

    path = workdir / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    rej_path = workdir / "rejects.jsonl"
    with open(workdir / "alerts.jsonl", "wb") as out, open(rej_path, "wb") as rejects:
        mon, summary = replay(str(path), out, rejects, params)
    records = [json.loads(x) for x in rej_path.read_bytes().splitlines()]
    assert summary.lines == len(lines)
    assert tally(mon) + summary.blank == len(lines)
    assert len(records) == sum(mon.rejected.values())
    for rec in records:
        raw = lines[rec["line"] - 1]
        kept = rec["raw"].encode() if "raw" in rec else base64.b64decode(rec["raw_base64"])
        assert kept == raw
        got = decode(raw, params.max_event_bytes)
        assert isinstance(got, Rejection) and rec["code"] == got.code.value
        assert rec["message"] == got.message
