"""Human renderings of alerts (console, demo)."""

from __future__ import annotations

from monitor.model import Alert

_ICON = {"critical": "!!", "warning": " !", "info": "  "}


def alert_line(alert: Alert, color: bool = False) -> str:
    """One line a person reads at a glance: time, status, severity, what, who, why."""
    t = alert.detected_at.replace("T", " ").removesuffix("Z")
    scope = alert.publisher_id or alert.category
    status = alert.status.upper()
    head = f"{t}  {status:<8} {alert.severity:<8} {alert.kind:<19} {scope:<12}"
    if color:
        code = "31" if alert.status == "firing" else "32"
        if alert.status == "firing" and alert.severity == "warning":
            code = "33"
        head = f"\x1b[{code}m{head}\x1b[0m"
    return f"{head} {alert.summary}"
