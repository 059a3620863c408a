"""Console: one readable block per notification (stderr by default; stdout in a replay
carries the alerts JSONL)."""

from __future__ import annotations

import sys
from typing import IO, Any

from alerts.notice import Delivery, alerts_of, latest_by_id
from alerts.receivers.base import OK, Http, OneRequest, Result
from monitor.render import alert_line

_KEYS = ("observed", "expected", "ratio", "score", "share", "peak_score", "windows_active")


def block(body: dict[str, Any]) -> str:
    alerts = latest_by_id(alerts_of(body))
    firing = sum(a.status == "firing" for a in alerts)
    labels = " ".join(f"{k}={v}" for k, v in body.get("group_labels", {}).items())
    head = f"== ordermon {'reminder' if body.get('repeat') else 'notification'}: "
    head += f"{firing} firing, {len(alerts) - firing} resolved ({labels}) =="
    lines = [head]
    for a in alerts:
        lines.append(alert_line(a))
        ev = "  ".join(f"{k}={a.evidence[k]}" for k in _KEYS if k in a.evidence)
        if ev:
            lines.append(f"    {ev}")
        if a.evidence.get("affected_publisher_count"):
            lines.append(f"    affected publishers: {a.evidence['affected_publisher_count']}")
    n = body.get("suppressed", {}).get("count", 0)
    if n:
        lines.append(f"    suppresses {n} alerts it explains (inhibited, not sent)")
    return "\n".join(lines) + "\n"


class ConsoleReceiver(OneRequest):
    def __init__(self, name: str, stream: str | IO[str] = "stderr", send_resolved: bool = True):
        self.name = name
        self.stream = stream
        self.send_resolved = send_resolved

    async def send(self, d: Delivery, http: Http, now: float) -> Result:
        out = self.stream
        if isinstance(out, str):
            out = sys.stdout if out == "stdout" else sys.stderr
        out.write(block(d.body))
        out.flush()
        return OK
