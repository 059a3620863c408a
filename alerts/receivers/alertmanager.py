"""Alertmanager: POST ``/api/v2/alerts``, so teams that route everything through it get
ordermon's alerts there.

Labels: ``alertname`` (= kind), ``alert_id``, ``category``, ``severity`` and, for publisher
alerts, ``publisher_id`` (the alert id keeps two incidents of one publisher apart and lets
the resolved record end the firing one). Annotations: ``summary``, ``evidence`` (JSON),
``reason``, the window, ``detected_at`` and the dashboard link. ``startsAt`` is the start
of the first window; a firing alert's ``endsAt`` is the send time + ``ttl`` (ordermon
re-posts a still-firing alert every ``repeat_interval``, so keep ``ttl`` above it), a
resolved one's the end of its last window (never after the send time).
"""

from __future__ import annotations

import json
from typing import Any

from alerts.notice import Delivery, alerts_of, latest_by_id
from alerts.receivers.base import Http, OneRequest, Result, dashboard_link
from monitor.model import iso, parse_iso

API_PATH = "/api/v2/alerts"


def api_url(base: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith(API_PATH) else base + API_PATH


def payload(body: dict[str, Any], now: float, ttl: float, dashboard: str = "") -> list[dict]:
    out = []
    for a in latest_by_id(alerts_of(body)):
        starts = min(parse_iso(a.window_start), now)
        ends = now + ttl if a.status == "firing" else max(starts, min(parse_iso(a.window_end), now))
        lbl = {"alertname": a.kind, "alert_id": a.alert_id, "category": a.category,
               "severity": a.severity}  # fmt: skip
        if a.publisher_id:
            lbl["publisher_id"] = a.publisher_id
        link = dashboard_link(dashboard, a)
        ann = {
            "summary": a.summary,
            "evidence": json.dumps(a.evidence, separators=(",", ":"), sort_keys=True),
            "window_start": a.window_start,
            "window_end": a.window_end,
            "detected_at": a.detected_at,
        }
        if a.reason:
            ann["reason"] = a.reason
        if link:
            ann["dashboard"] = link
        item = {"labels": lbl, "annotations": ann, "startsAt": iso(starts), "endsAt": iso(ends)}
        if link:
            item["generatorURL"] = link
        out.append(item)
    return out


class AlertmanagerReceiver(OneRequest):
    def __init__(self, name: str, url: str, ttl: float = 12 * 3600.0, dashboard: str = "",
                 send_resolved: bool = True) -> None:  # fmt: skip
        self.name = name
        self._url = api_url(url)
        self.ttl = ttl
        self.dashboard = dashboard
        self.send_resolved = send_resolved

    async def send(self, d: Delivery, http: Http, now: float) -> Result:
        data = json.dumps(payload(d.body, now, self.ttl, self.dashboard)).encode()
        return await http.post(self._url, data, {}, now)
