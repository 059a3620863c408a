"""Generic webhook: POST the contract alert JSON (or a group envelope), signed.

Headers: ``Content-Type: application/json``; ``Idempotency-Key`` (the same on every retry
and after a restart); ``X-Ordermon-Timestamp`` (Unix seconds of this attempt);
``X-Ordermon-Repeat: n`` on the n-th reminder of a still-firing alert; and, with a secret,
``X-Ordermon-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>``.
See ``alerts/README.md`` for the envelope and a verification snippet.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from alerts.notice import Delivery, Notification, make_delivery
from alerts.receivers.base import Http, Result

ENVELOPE_VERSION = 1


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


def encode(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def body_of(d: Delivery, mode: str) -> bytes:
    """``alert`` mode: the contract alert record itself. ``group`` mode: the envelope."""
    b = d.body
    if mode == "alert":
        return encode(b["alerts"][0])
    firing = any(a["status"] == "firing" for a in b["alerts"])
    return encode({
        "version": ENVELOPE_VERSION,
        "receiver": b["receiver"],
        "group_key": b["group_key"],
        "group_labels": b["group_labels"],
        "status": "firing" if firing else "resolved",
        "repeat": b["repeat"],
        "alerts": b["alerts"],
        "suppressed": b["suppressed"],
    })  # fmt: skip


def request(d: Delivery, mode: str, secret: bytes | None, now: float) -> tuple[bytes, dict]:
    """The body and headers of one attempt."""
    body = body_of(d, mode)
    ts = str(int(now))
    headers = {"Idempotency-Key": d.key, "X-Ordermon-Timestamp": ts}
    repeat = max((seq for _, _, seq in d.items), default=0)
    if repeat:
        headers["X-Ordermon-Repeat"] = str(repeat)
    if secret:
        headers["X-Ordermon-Signature"] = sign(secret, ts, body)
    return body, headers


class WebhookReceiver:
    def __init__(
        self,
        name: str,
        url: str,
        secret: str | None = None,
        mode: str = "alert",
        send_resolved: bool = True,
    ) -> None:
        self.name = name
        self._url = url
        self._secret = secret.encode() if secret else None
        self.mode = mode
        self.send_resolved = send_resolved

    def split(self, n: Notification) -> list[Delivery]:
        if not n.items:
            return []
        if self.mode == "alert":
            return [make_delivery(n, (item,)) for item in n.items]
        return [make_delivery(n, n.items)]

    async def send(self, d: Delivery, http: Http, now: float) -> Result:
        body, headers = request(d, self.mode, self._secret, now)
        return await http.post(self._url, body, headers, now)
