"""Offline driver: a JSONL file (plain, gzip or stdin) through the monitor."""

from __future__ import annotations

import base64
import gzip
import io
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, BinaryIO

import msgspec

from monitor.model import Alert, Rejection, iso
from monitor.pipeline import Monitor, MonitorParams

_enc = msgspec.json.Encoder()


class InputError(Exception):
    """The input cannot be read at all (missing, unreadable, corrupt compression)."""


def open_events(path: str) -> BinaryIO:
    """Open a JSONL events file; ``-`` is stdin; gzip is recognised by its magic bytes."""
    try:
        if path == "-":
            raw: BinaryIO = sys.stdin.buffer
        else:
            raw = open(path, "rb")  # noqa: SIM115 - returned to the caller
        head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
        if head == b"\x1f\x8b":
            return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
        return raw
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc


_BOM = b"\xef\xbb\xbf"


def iter_lines(stream: BinaryIO, path: str) -> Iterator[bytes]:
    """The lines of a file without their line ends; a UTF-8 byte-order mark at the start of
    the file (a Windows editor's) is dropped, as RFC 8259 allows a JSON reader to."""
    n = 0
    try:
        for line in stream:
            if n == 0 and line.startswith(_BOM):
                line = line[len(_BOM) :]
            n += 1
            yield line.rstrip(b"\r\n")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"cannot read {path} after line {n}: {exc}") from exc


def rejection_record(line_no: int, raw: bytes, rej: Rejection) -> bytes:
    rec = {"line": line_no, "code": rej.code.value, "message": rej.message, "field": rej.field}
    try:
        rec["raw"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        rec["raw_base64"] = base64.b64encode(raw).decode("ascii")
    return _enc.encode(rec) + b"\n"


def encode_alert(alert: Alert) -> bytes:
    return _enc.encode(alert) + b"\n"


@dataclass
class ReplaySummary:
    lines: int = 0
    blank: int = 0
    seconds: float = 0.0
    alerts: list[Alert] = field(default_factory=list)

    def events_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0


def replay(
    path: str,
    out: IO[bytes],
    rejects: IO[bytes] | None = None,
    params: MonitorParams | None = None,
    monitor: Monitor | None = None,
) -> tuple[Monitor, ReplaySummary]:
    mon = monitor or Monitor(params)
    summary = ReplaySummary()
    stream = open_events(path)
    t0 = time.perf_counter()
    process = mon.process
    line_no = 0
    try:
        for line_no, line in enumerate(iter_lines(stream, path), 1):  # noqa: B007
            if not line.strip():
                summary.blank += 1
                continue
            rej = process(line)
            if rej is not None and rejects is not None:
                rejects.write(rejection_record(line_no, line, rej))
            if mon.alerts:
                for alert in mon.take_alerts():
                    out.write(encode_alert(alert))
                    summary.alerts.append(alert)
        mon.flush()
        for alert in mon.take_alerts():
            out.write(encode_alert(alert))
            summary.alerts.append(alert)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    summary.lines = line_no
    summary.seconds = time.perf_counter() - t0
    return mon, summary


def format_summary(mon: Monitor, s: ReplaySummary) -> str:
    buf = io.StringIO()
    w = mon.windows
    print(
        f"replayed {s.lines:,} lines in {s.seconds:.1f} s ({s.events_per_second():,.0f} lines/s)",
        file=buf,
    )
    print(
        f"  events accepted {mon.accepted:,}  duplicates {mon.duplicates:,}  "
        f"late {w.late_total:,}  future {w.future_total:,}  blank lines {s.blank:,}",
        file=buf,
    )
    rej = ", ".join(f"{k} {v:,}" for k, v in mon.rejected.most_common()) or "none"
    print(f"  rejected {sum(mon.rejected.values()):,}: {rej}", file=buf)
    vio = ", ".join(f"{k} {v:,}" for k, v in mon.violations.most_common()) or "none"
    print(f"  lifecycle violations {sum(mon.violations.values()):,}: {vio}", file=buf)
    inv = ", ".join(f"{k} {v:,}" for k, v in mon.invalidations.most_common()) or "none"
    print(f"  invalidations {sum(mon.invalidations.values()):,}: {inv}", file=buf)
    print(
        f"  windows closed {mon.windows_closed:,}  publishers tracked "
        f"{len(mon.publisher.state):,}  orders tracked {len(mon.lifecycle):,}",
        file=buf,
    )
    patterns = mon.publisher.recurring_patterns()
    if patterns:
        width = mon.params.window_s
        shown = ", ".join(
            f"{p['publisher_id']} ({p['channel']} at {iso(p['first_window'] * width)[11:16]} UTC)"
            for p in patterns[:5]
        ) + (f", and {len(patterns) - 5} more" if len(patterns) > 5 else "")
        print(
            f"  daily patterns {len(patterns)} (publisher spikes at the time of day of an "
            f"earlier day's, not raised again: {mon.publisher.recurring} windows): {shown}",
            file=buf,
        )
    firing = {k: v for (k, st), v in mon.alert_counts.items() if st == "firing"}
    alerts = ", ".join(f"{k} {v}" for k, v in sorted(firing.items())) or "none"
    print(f"  alerts fired {sum(firing.values())}: {alerts}", file=buf)
    return buf.getvalue()
