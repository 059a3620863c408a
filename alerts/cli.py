"""``ordermon replay EVENTS --notify``: send a replay's alerts through the receivers.

The pipeline runs on event time (each alert's ``detected_at``), so grouping, inhibition
and repeat intervals behave as they would have live; every group is flushed at the end of
the input, then the outbox is delivered on the wall clock for up to ``drain_timeout``.
The outbox file remembers what was sent: replaying the same input again sends nothing.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Mapping
from typing import IO

import structlog

from alerts.config import AlertsConfig, load_alerts_config
from alerts.service import AlertService
from alerts.store import OutboxError
from monitor.config import ConfigError
from monitor.model import Alert, parse_iso


def configure_logging() -> None:
    """Warnings and errors to stderr (stdout carries alerts), unless already configured."""
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def prepare_notify(
    config_path: str | None, env: Mapping[str, str] | None = None
) -> Callable[[list[Alert]], int]:
    """Validate the alerts configuration now (before a long replay); the sending step."""
    cfg = load_alerts_config(config_path, env)
    if not cfg.receivers:
        raise ConfigError(
            "--notify: no receivers; add [[alerts.receivers]] to the --config file or set "
            "ORDERMON_SLACK_WEBHOOK_URL, ORDERMON_WEBHOOK_URL or ORDERMON_ALERTMANAGER_URL"
        )
    return lambda alerts: notify(cfg, alerts)


def notify(cfg: AlertsConfig, alerts: list[Alert], err: IO[str] | None = None) -> int:
    configure_logging()
    err = err or sys.stderr
    try:
        return asyncio.run(_notify(cfg, alerts, err))
    except OutboxError as exc:
        err.write(f"ordermon replay --notify: {exc}\n")
        return 2


async def _notify(cfg: AlertsConfig, alerts: list[Alert], err: IO[str]) -> int:
    async with AlertService(cfg) as svc:
        accepted = 0
        t = None
        for alert in alerts:
            t = parse_iso(alert.detected_at)
            svc.flush(t)
            accepted += svc.accept(alert, t)
        if t is not None:
            svc.flush(t, force=True)
        drained = await svc.drain()
        out = svc.sender.outcomes
        pending = sum(n for (_, state), n in svc.store.depth().items() if state == "pending")
    delivered = {r: n for (r, o), n in out.items() if o == "delivered"}
    failed = sum(n for (_, o), n in out.items() if o != "delivered")
    per = ", ".join(f"{r} {n}" for r, n in sorted(delivered.items())) or "none"
    err.write(
        f"notify: {accepted} new alert records; {sum(delivered.values())} notifications "
        f"delivered ({per}); {out_count(out, 'rejected')} rejected, "
        f"{out_count(out, 'dead_lettered')} dead-lettered, {pending} pending "
        f"(outbox {cfg.outbox})\n"
    )
    return 0 if drained and not failed else 1


def out_count(outcomes: Mapping[tuple[str, str], int], outcome: str) -> int:
    return sum(n for (_, o), n in outcomes.items() if o == outcome)
