"""Receivers: console, Slack incoming webhook, generic webhook, Alertmanager."""

from __future__ import annotations

from alerts.config import AlertsConfig, ReceiverConfig
from alerts.receivers.alertmanager import AlertmanagerReceiver
from alerts.receivers.base import FailReason, Http, Receiver, Result
from alerts.receivers.console import ConsoleReceiver
from alerts.receivers.slack import SlackReceiver
from alerts.receivers.webhook import WebhookReceiver


def build_receiver(r: ReceiverConfig, cfg: AlertsConfig) -> Receiver:
    url = r.url.reveal() if r.url else ""
    if r.type == "console":
        return ConsoleReceiver(r.name, r.stream, r.send_resolved)
    if r.type == "slack":
        return SlackReceiver(r.name, url, cfg.dashboard_url, r.send_resolved)
    if r.type == "webhook":
        secret = r.secret.reveal() if r.secret else None
        return WebhookReceiver(r.name, url, secret, r.mode, r.send_resolved)
    return AlertmanagerReceiver(r.name, url, r.ttl, cfg.dashboard_url, r.send_resolved)


__all__ = ["FailReason", "Http", "Receiver", "Result", "build_receiver"]
