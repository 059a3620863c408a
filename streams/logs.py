"""Log output of a worker: structlog processors, and secrets kept out of every log line.

Receiver URLs (a Slack webhook URL *is* a credential), HMAC secrets and broker credentials
must never reach a log. The code logs receivers by name and errors by class; this is the
defence behind that rule, for what slips through (an exception text quoting a URL, a
library's message):

- values of keys that name a secret (``secret``, ``token``, ``password``,
  ``authorization``, ``api_key``, ...) are replaced;
- every string value (exception texts too: ``format_exc_info`` runs first) is scrubbed of
  the configured secrets themselves (``Redactor.add``), URL user:password parts, secret
  query parameters and Slack webhook paths;
- the same scrubbing applies to stdlib ``logging`` records (faust, aiokafka, aiohttp):
  ``install_stdlib_redaction`` wraps the log record factory.

Log events are snake_case names; context (partition, offset, receiver, publisher_id) is
bound as fields, and ``bind_contextvars`` adds the worker's identity to every line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

import structlog

MASK = "***"
SENSITIVE_KEY = re.compile(
    r"secret|token|passw(or)?d|authori[sz]ation|api[_-]?key|credential|cookie|signature", re.I
)
_URL_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.\-]*://)[^\s/@]+@", re.I)
_QUERY_SECRET = re.compile(
    r"([?&;](?:[a-z_]*token|secret|password|passwd|api_?key|key|sig|signature|auth)=)"
    r"[^&#\s\"']+",
    re.I,
)
_SLACK_PATH = re.compile(r"(hooks\.slack\.com/)[^\s\"'<>]+", re.I)
MIN_SECRET_LEN = 4  # shorter values would mask ordinary words


class Redactor:
    """A structlog processor (and a string scrubber) that masks secrets."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.known: list[str] = []
        for s in secrets:
            self.add(s)

    def add(self, secret: str | None) -> None:
        """Mask this exact value wherever it appears (longest first: a URL before its
        token)."""
        if secret and len(secret) >= MIN_SECRET_LEN and secret not in self.known:
            self.known.append(secret)
            self.known.sort(key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.known:
            if secret in text:
                text = text.replace(secret, MASK)
        if "://" in text:
            text = _URL_USERINFO.sub(rf"\1{MASK}@", text)
        if "=" in text:
            text = _QUERY_SECRET.sub(rf"\1{MASK}", text)
        if "hooks.slack.com" in text:
            text = _SLACK_PATH.sub(rf"\1{MASK}", text)
        return text

    def value(self, v: Any) -> Any:
        if isinstance(v, str):
            return self.scrub(v)
        if isinstance(v, Mapping):
            return {k: self.field(str(k), x) for k, x in v.items()}
        if isinstance(v, list | tuple | set | frozenset):
            return [self.value(x) for x in v]
        if isinstance(v, bool | int | float) or v is None:
            return v
        return self.scrub(str(v))  # objects: their text is what a renderer would print

    def field(self, key: str, v: Any) -> Any:
        if v is not None and not isinstance(v, bool) and SENSITIVE_KEY.search(key):
            return MASK
        return self.value(v)

    def __call__(self, logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        return {k: self.field(k, v) for k, v in event_dict.items()}


REDACTOR = Redactor()  # the process's: configured secrets are added at start


def processors(json: bool, redactor: Redactor = REDACTOR) -> list[Any]:
    """The chain: context, level, time, exception text, redaction, then the renderer."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redactor,
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(),
    ]


def install_stdlib_redaction(redactor: Redactor = REDACTOR) -> None:
    """Scrub stdlib log records (libraries' messages) as they are created. Idempotent."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "ordermon_redaction", False):
        return

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            msg = record.getMessage()
        except Exception:  # a bad format string is logging's own error to report
            return record
        clean = redactor.scrub(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return record

    make.ordermon_redaction = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make)


def alert_secrets(cfg: Any) -> list[str]:
    """Every secret of an ``AlertsConfig``: receiver URLs and HMAC keys."""
    out = []
    for r in cfg.receivers:
        for s in (r.url, r.secret):
            if s is not None:
                out.append(s.reveal())
    return out
