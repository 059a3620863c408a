"""What every receiver shares: the result of a request, its classification, the HTTP port.

Classification follows Alertmanager's notifiers: 2xx delivered; 429 and 5xx retried
(``Retry-After`` honoured); connection errors and timeouts retried; any other status
(3xx, 4xx) refused for good, kept with the response for a person to read.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

from alerts.notice import Delivery, Notification, make_delivery
from monitor.model import Alert, parse_iso

USER_AGENT = "ordermon-alerts/1"
_DETAIL_MAX = 500


class FailReason(StrEnum):
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    CLIENT_ERROR = "client_error"
    OTHER = "other"
    MAX_AGE = "max_age"  # not a request's failure: retries ran out (dead-lettered)


@dataclass(frozen=True, slots=True)
class Result:
    ok: bool
    retryable: bool = False
    reason: FailReason | None = None
    status: int | None = None
    retry_after: float | None = None
    detail: str = ""  # response body (truncated) or the error's class; never the URL


OK = Result(True)


def classify(status: int, headers: Any, text: str, now: float) -> Result:
    if 200 <= status < 300:
        return Result(True, status=status)
    retry_after = parse_retry_after(headers.get("Retry-After"), now)
    detail = text[:_DETAIL_MAX]
    if status == 429:
        return Result(False, True, FailReason.RATE_LIMITED, status, retry_after, detail)
    if status >= 500:
        return Result(False, True, FailReason.SERVER_ERROR, status, retry_after, detail)
    return Result(False, False, FailReason.CLIENT_ERROR, status, None, detail)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - now)


class Http:
    """POSTs with a timeout on every request; errors become ``Result`` values."""

    def __init__(self, session: aiohttp.ClientSession, timeout: float) -> None:
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def post(self, url: str, data: bytes, headers: dict[str, str], now: float) -> Result:
        hdrs = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
        try:
            async with self.session.post(
                url, data=data, headers=hdrs, timeout=self.timeout, allow_redirects=False
            ) as resp:
                text = await resp.text(errors="replace")
                return classify(resp.status, resp.headers, text, now)
        except TimeoutError:  # aiohttp's timeouts (ServerTimeoutError too) are TimeoutErrors
            return Result(False, True, FailReason.TIMEOUT, detail="timeout")
        except (aiohttp.ClientConnectionError, OSError) as exc:
            return Result(False, True, FailReason.CONNECTION, detail=type(exc).__name__)
        except aiohttp.ClientError as exc:
            return Result(False, False, FailReason.OTHER, detail=type(exc).__name__)


class Receiver(Protocol):
    name: str
    send_resolved: bool

    def split(self, n: Notification) -> list[Delivery]: ...

    async def send(self, d: Delivery, http: Http, now: float) -> Result: ...


class OneRequest:
    """A receiver that tells a notification in one request."""

    name: str

    def split(self, n: Notification) -> list[Delivery]:
        return [make_delivery(n, n.items)] if n.items else []


def dashboard_link(template: str, alert: Alert) -> str:
    """The configured dashboard URL for an alert; placeholders are URL-quoted."""
    if not template:
        return ""
    ws, we = parse_iso(alert.window_start), parse_iso(alert.window_end)
    values = {
        "alert_id": alert.alert_id, "kind": alert.kind, "category": alert.category,
        "severity": alert.severity, "status": alert.status,
        "publisher_id": alert.publisher_id or "", "reason": alert.reason or "",
        "window_start": alert.window_start, "window_end": alert.window_end,
        "window_start_ms": str(int(ws * 1000)), "window_end_ms": str(int(we * 1000)),
        "detected_at": alert.detected_at,
    }  # fmt: skip
    return template.format(**{k: quote(v, safe="") for k, v in values.items()})
