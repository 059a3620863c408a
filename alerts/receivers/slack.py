"""Slack incoming webhook: a Block Kit message per notification.

One alert: header (status, severity, kind), the summary, the key evidence as fields, the
affected publishers and reason mix where the alert has them, window and id, and a
dashboard button. Several alerts (a group): one line each, most severe first, with a
dashboard link per alert, cut to stay within Slack's block limits ("…and N more").
"""

from __future__ import annotations

import json
from typing import Any

from alerts.notice import Delivery, alerts_of, latest_by_id
from alerts.receivers.base import Http, OneRequest, Result, dashboard_link
from monitor.model import Alert

MAX_LINES = 40  # publishers listed in a grouped message
MAX_AFFECTED = 30  # names listed from a platform alert's evidence
_SECTION_MAX = 2900  # Slack: section text <= 3000 characters
_ICON = {"critical": "\U0001f534", "warning": "\U0001f7e0", "info": "\U0001f535"}
_RESOLVED, _REPEAT = "\u2705", "\U0001f501"
_RANK = {"critical": 0, "warning": 1, "info": 2}
_EVIDENCE = (
    ("observed", "Observed"), ("expected", "Expected"), ("ratio", "Ratio"),
    ("score", "Score"), ("share", "Share of feed"), ("arrivals", "Arrivals"),
    ("publishers_with_excess", "Publishers with excess"), ("peak_score", "Peak score"),
    ("windows_active", "Windows active"), ("channel", "Channel"), ("test", "Test"),
)  # fmt: skip


def esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _num(v: Any) -> str:
    if isinstance(v, float):
        text = f"{v:,.3g}" if abs(v) < 1 else f"{v:,.2f}".rstrip("0").rstrip(".")
        return text
    return f"{v:,}" if isinstance(v, int) else esc(str(v))


def _when(a: Alert) -> str:
    ws, we = a.window_start.replace("T", " ")[:16], a.window_end.replace("T", " ")[:16]
    end = we[11:] if ws[:10] == we[:10] else we
    return f"{ws}\u2013{end} UTC"


def _icon(a: Alert, repeat: bool) -> str:
    if a.status == "resolved":
        return _RESOLVED
    return _REPEAT if repeat else _ICON.get(a.severity, "")


def key_evidence(a: Alert) -> list[dict[str, str]]:
    ev = a.evidence
    out = []
    for key, title in _EVIDENCE:
        if key not in ev or isinstance(ev[key], dict | list):
            continue
        value = _num(ev[key])
        threshold = (ev.get("thresholds") or {}).get(key)
        if threshold is not None:
            value += f" (threshold {_num(threshold)})"
        out.append({"type": "mrkdwn", "text": f"*{title}*\n{value}"})
    if a.publisher_id:
        out.insert(0, {"type": "mrkdwn", "text": f"*Publisher*\n`{esc(a.publisher_id)}`"})
    if a.reason:
        out.append({"type": "mrkdwn", "text": f"*Reason*\n{esc(a.reason)}"})
    return out[:10]


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:_SECTION_MAX]}}


def _listing(title: str, names: list[str], count: int) -> dict[str, Any]:
    shown = ", ".join(f"`{esc(n)}`" for n in names[:MAX_AFFECTED])
    more = count - min(len(names), MAX_AFFECTED)
    return _section(f"*{title}*: {shown}" + (f" \u2026and {more:,} more" if more > 0 else ""))


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:_SECTION_MAX]}]}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150], "emoji": True}}


def single(
    a: Alert, repeat: bool, dashboard: str, suppressed: dict[str, Any] | None = None
) -> dict[str, Any]:
    status = "RESOLVED" if a.status == "resolved" else ("STILL FIRING" if repeat else "FIRING")
    blocks = [
        _header(f"{_icon(a, repeat)} {status} \u00b7 {a.severity} \u00b7 {a.kind}"),
        _section(esc(a.summary)),
    ]
    fields = key_evidence(a)
    if fields:
        blocks.append({"type": "section", "fields": fields})
    affected = a.evidence.get("affected_publishers")
    if isinstance(affected, list) and affected:
        count = int(a.evidence.get("affected_publisher_count", len(affected)))
        blocks.append(_listing(f"Affected publishers ({count:,})", list(map(str, affected)), count))
    held = (suppressed or {}).get("alerts", [])
    if held:
        count = int((suppressed or {}).get("count", len(held)))
        names = [h["publisher_id"] or h["kind"] for h in held]
        blocks.append(_listing(f"Holding back {count:,} alerts it explains", names, count))
    mix = a.evidence.get("reason_mix")
    if isinstance(mix, dict) and mix:
        top = sorted(((v, k) for k, v in mix.items() if v), reverse=True)
        blocks.append(
            _section("*Reason mix*: " + " \u00b7 ".join(f"{esc(k)} {_num(v)}" for v, k in top))
        )
    detected = a.detected_at.replace("T", " ").removesuffix("Z")[:16]
    blocks.append(
        _context(f"Window {_when(a)} \u00b7 detected {detected} UTC \u00b7 `{a.alert_id}`")
    )
    link = dashboard_link(dashboard, a)
    if link:
        button = {
            "type": "button",
            "text": {"type": "plain_text", "text": "Open dashboard"},
            "url": link[:3000],
            "action_id": "dashboard",
        }
        blocks.append({"type": "actions", "elements": [button]})
    return {"text": f"[{status}] {a.severity} {a.kind}: {a.summary}"[:3000], "blocks": blocks}


def _group_icon(alerts: list[Alert], repeat: bool) -> str:
    firing = [a.severity for a in alerts if a.status == "firing"]
    if not firing:
        return _RESOLVED
    if repeat:
        return _REPEAT
    return _ICON.get(min(firing, key=lambda s: _RANK.get(s, 3)), "")


def _line(a: Alert, repeat: bool, dashboard: str) -> str:
    who = f"*{esc(a.publisher_id)}*" if a.publisher_id else f"*{esc(a.kind)}*"
    summary = esc(a.summary if len(a.summary) <= 160 else a.summary[:157] + "...")
    link = dashboard_link(dashboard, a)
    return f"{_icon(a, repeat)} {who} \u2014 {summary}" + (f" <{link}|dashboard>" if link else "")


def grouped(alerts: list[Alert], labels: dict[str, str], repeat: bool, dashboard: str) -> dict:
    firing = sum(a.status == "firing" for a in alerts)
    resolved = len(alerts) - firing
    what = " \u00b7 ".join(v for v in labels.values() if v) or "ordermon"
    parts = [f"{firing} {'still ' if repeat else ''}firing" if firing else "",
             f"{resolved} resolved" if resolved else ""]  # fmt: skip
    counts = ", ".join(p for p in parts if p)
    order = sorted(
        alerts,
        key=lambda a: (a.status != "firing", _RANK.get(a.severity, 3),
                       -float(a.evidence.get("score", 0) or 0)),
    )  # fmt: skip
    lines = [_line(a, repeat, dashboard) for a in order[:MAX_LINES]]
    if len(order) > MAX_LINES:
        lines.append(f"\u2026and {len(order) - MAX_LINES:,} more")
    blocks = [_header(f"{_group_icon(alerts, repeat)} {counts} \u00b7 {what}")]
    chunk = ""
    for line in lines:
        if chunk and len(chunk) + len(line) + 1 > _SECTION_MAX:
            blocks.append(_section(chunk))
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
    if chunk:
        blocks.append(_section(chunk))
    first = min(a.window_start for a in alerts).replace("T", " ")[:16]
    last = max(a.window_end for a in alerts).replace("T", " ")[:16]
    blocks.append(_context(f"{len(alerts)} alerts \u00b7 windows {first} \u2013 {last} UTC"))
    text = f"[{counts}] {what}: " + ", ".join(a.publisher_id or a.kind for a in order[:20])
    return {"text": text[:3000], "blocks": blocks[:50]}


def render(body: dict[str, Any], dashboard: str = "") -> dict[str, Any]:
    """The Slack message for a stored delivery body."""
    alerts = latest_by_id(alerts_of(body))
    repeat = bool(body.get("repeat"))
    if len(alerts) == 1:
        return single(alerts[0], repeat, dashboard, body.get("suppressed"))
    return grouped(alerts, dict(body.get("group_labels", {})), repeat, dashboard)


class SlackReceiver(OneRequest):
    def __init__(self, name: str, url: str, dashboard: str = "", send_resolved: bool = True):
        self.name = name
        self._url = url
        self.dashboard = dashboard
        self.send_resolved = send_resolved

    async def send(self, d: Delivery, http: Http, now: float) -> Result:
        data = json.dumps(render(d.body, self.dashboard), ensure_ascii=False).encode()
        return await http.post(self._url, data, {}, now)
