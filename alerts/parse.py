"""Reading configuration values: durations, times, URLs, secrets, tables with known keys.

Errors are ``ConfigError``s that name the setting and never repeat a secret's value.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from monitor.config import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class Secret:
    """A value that must never be logged or printed: ``repr``/``str`` show ``'***'``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def parse_duration(value: Any, where: str) -> float:
    """Seconds from a number or a string like ``"30s"``, ``"5m"``, ``"4h"``, ``"1.5d"``."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a duration, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ConfigError(f"{where}: must not be negative")
        return float(value)
    if isinstance(value, str) and (m := _DURATION.match(value)):
        return float(m[1]) * _UNIT[m[2]]
    raise ConfigError(f"{where}: cannot read {value!r} as a duration (e.g. 30s, 5m, 4h)")


def parse_time(value: Any, where: str) -> float:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ConfigError(f"{where}: a time needs an offset (e.g. Z)")
        return value.timestamp()
    if isinstance(value, str):
        try:
            t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            t = None
        if t is not None and t.tzinfo is not None:
            return t.timestamp()
    raise ConfigError(f"{where}: expected an RFC 3339 time with offset, got {value!r}")


def check_url(value: str, where: str) -> str:
    """Only http(s) URLs with a host; the error never repeats the URL (it may be secret)."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        raise ConfigError(f"{where}: not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise ConfigError(
            f"{where}: only http(s) URLs are accepted (got scheme {parts.scheme or 'none'!r})"
        )
    if not parts.hostname:
        raise ConfigError(f"{where}: URL has no host")
    return value.strip()


def keys(d: Mapping[str, Any], allowed: set[str], where: str) -> None:
    if not isinstance(d, Mapping):
        raise ConfigError(f"{where}: expected a table")
    unknown = set(d) - allowed
    if unknown:
        names = ", ".join(f"{where}.{k}" for k in sorted(unknown))
        raise ConfigError(f"unknown setting(s) {names}")


def string_of(d: Mapping[str, Any], key: str, where: str, default: str = "") -> str:
    v = d.get(key, default)
    if not isinstance(v, str):
        raise ConfigError(f"{where}.{key}: expected a string")
    return v


def truth_of(d: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise ConfigError(f"{where}.{key}: expected true or false")
    return v


def read_secret(
    d: Mapping[str, Any], key: str, where: str, env: Mapping[str, str], inline: bool
) -> tuple[Secret | None, str]:
    """``key`` (inline, if allowed), ``key_env`` (variable name) or ``key_file`` (path)."""
    given = [k for k in (key, f"{key}_env", f"{key}_file") if k in d]
    if len(given) > 1:
        raise ConfigError(f"{where}: give only one of {', '.join(given)}")
    if not given:
        return None, ""
    k = given[0]
    ref = string_of(d, k, where)
    if k == key:
        if not inline:
            raise ConfigError(f"{where}.{key}: put the secret in {key}_env or {key}_file")
        return Secret(ref), "config"
    if k.endswith("_env"):
        value = env.get(ref, "")
        if not value.strip():
            raise ConfigError(f"{where}.{k}: environment variable {ref} is not set")
        return Secret(value.strip()), f"env {ref}"
    try:
        with open(ref, encoding="utf-8") as fh:
            value = fh.read().strip()
    except OSError as exc:
        raise ConfigError(f"{where}.{k}: cannot read {ref}: {exc.strerror or exc}") from None
    if not value:
        raise ConfigError(f"{where}.{k}: {ref} is empty")
    return Secret(value), f"file {ref}"
