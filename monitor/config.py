"""Configuration: one TOML file plus ``ORDERMON_*`` environment overrides.

Every threshold lives in a frozen dataclass next to the code that uses it, with its
default and a one-line comment; this module maps them to TOML sections and environment
variables, validates types, and renders the effective values with those comments
(``ordermon config show``). Unknown keys are an error, never silently ignored.

Sections: ``[monitor]`` (windows, lifecycle, alerting), ``[publisher]``, ``[platform]``,
``[volume]``, ``[quality.<kind>]`` for malformed_events, duplicate_events,
lifecycle_violation, clock_skew. Environment: ``ORDERMON_<SECTION>_<KEY>``, e.g.
``ORDERMON_PUBLISHER_MIN_EXCESS=8`` or ``ORDERMON_QUALITY_CLOCK_SKEW_MIN_RATE=0.02``.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import os
import re
import tomllib
from collections.abc import Mapping
from typing import Any

from monitor.detectors.platform import PlatformParams
from monitor.detectors.publisher import PublisherParams
from monitor.detectors.quality import DEFAULT_RATES, RateParams, VolumeParams
from monitor.model import Kind
from monitor.pipeline import MonitorParams

_NESTED = ("publisher", "platform", "volume", "rates")


class ConfigError(ValueError):
    pass


def _docs(cls: type) -> dict[str, str]:
    """Trailing ``# comment`` of each field in the dataclass source."""
    try:
        src = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    pattern = re.compile(r"^\s+(\w+): [^#\n]+#\s*(.*)$", re.M)
    return {m[1]: m[2].strip() for m in pattern.finditer(src)}


def _coerce(name: str, current: Any, value: Any) -> Any:
    kind = type(current)
    if isinstance(value, str) and kind is not str:
        try:
            if kind is bool:
                return value.strip().lower() in ("1", "true", "yes", "on")
            if kind is tuple:
                return tuple(float(v) for v in value.split(","))
            return kind(value)
        except ValueError as exc:
            raise ConfigError(f"{name}: cannot read {value!r} as {kind.__name__}") from exc
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is tuple and isinstance(value, list):
        return tuple(float(v) for v in value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{name}: expected {kind.__name__}, got {type(value).__name__}")
    return value


# settings a zero (or a share outside 0..1) makes meaningless: a division, a half-life, a
# dispersion; or a probability, a rate, a share. Checked by key in every section.
_POSITIVE = {"window_s", "dispersion", "dispersion_cap", "resolve_after_windows",
             "max_event_bytes", "prior_strength"}  # fmt: skip
_SHARE = {"family_alpha", "background", "max_top_share", "max_top3_share"}  # (0, 1]
_FRACTION = {"min_rate", "shift_min_tvd", "min_drop"}  # [0, 1]


def _check_range(name: str, key: str, value: Any) -> None:
    """Ranges no configuration may leave, whatever the section: a clear error instead of a
    ZeroDivisionError later, or a detector silently switched off (``nan`` compares false
    with every threshold)."""
    if isinstance(value, tuple):
        if not all(math.isfinite(v) and v >= 0 for v in value):
            raise ConfigError(f"{name}: must be finite, non-negative numbers, got {list(value)}")
        if key == "prior_mix" and (len(value) != 6 or not sum(value) > 0):
            raise ConfigError(
                f"{name}: must be 6 non-negative weights (one per reason, in the contract's "
                f"order) with a positive sum, got {list(value)}"
            )
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if not math.isfinite(value):
        raise ConfigError(f"{name}: must be a finite number, got {value}")
    if value < 0:  # no setting is meaningful below 0 (the TOML and env paths alike)
        raise ConfigError(f"{name}: must not be negative, got {value}")
    positive = key in _POSITIVE or key.endswith(("halflife_windows", "period_windows"))
    if positive and not value > 0:
        raise ConfigError(f"{name}: must be greater than 0, got {value}")
    if key in _SHARE and not 0 < value <= 1:
        raise ConfigError(f"{name}: must be a share in (0, 1], got {value}")
    if key in _FRACTION and not 0 <= value <= 1:
        raise ConfigError(f"{name}: must be a share in [0, 1], got {value}")


def _apply(obj: Any, values: Mapping[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(obj)}
    changes = {}
    for key, value in values.items():
        if key not in names or key in _NESTED:
            raise ConfigError(f"unknown setting {where}.{key}")
        changes[key] = _coerce(f"{where}.{key}", getattr(obj, key), value)
        _check_range(f"{where}.{key}", key, changes[key])
    try:  # a dataclass's own range checks (__post_init__) become configuration errors
        return dataclasses.replace(obj, **changes) if changes else obj
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    sections = {
        "MONITOR": "monitor",
        "PUBLISHER": "publisher",
        "PLATFORM": "platform",
        "VOLUME": "volume",
    }
    sections |= {f"QUALITY_{k.value.upper()}": f"quality.{k.value}" for k in DEFAULT_RATES}
    out: dict[str, dict[str, str]] = {}
    for var, value in env.items():
        if not var.startswith("ORDERMON_"):
            continue
        rest = var[len("ORDERMON_") :]
        for prefix in sorted(sections, key=len, reverse=True):
            if rest.startswith(prefix + "_"):
                out.setdefault(sections[prefix], {})[rest[len(prefix) + 1 :].lower()] = value
                break
        else:
            _refuse_misspelt_section(var, rest, sections)
    return out


def _refuse_misspelt_section(var: str, rest: str, sections: Mapping[str, str]) -> None:
    """An ``ORDERMON_*`` variable of no detector section is someone else's (the stream
    service's, the receivers', the supervisor's) unless its section part is one letter
    or two off a detector section's: then it is a typo that would be ignored, an error."""
    parts = rest.split("_")
    ratio, head, section = max(
        (difflib.SequenceMatcher(None, "_".join(parts[:n]), sec).ratio(), n, sec)
        for n in range(1, min(4, len(parts)))
        for sec in sections
    ) if len(parts) > 1 else (0.0, 0, "")  # fmt: skip
    if ratio >= 0.8:
        raise ConfigError(f"{var}: unknown section {'_'.join(parts[:head])!r} (did you mean "
                          f"ORDERMON_{section}_{'_'.join(parts[head:])}?)")  # fmt: skip


def load_params(path: str | None = None, env: Mapping[str, str] | None = None) -> MonitorParams:
    """Defaults, then the TOML file, then the environment."""
    doc: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                doc = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config {path} is not valid TOML: {exc}") from exc
    layers: list[dict[str, Any]] = [doc]
    env_doc = _env_overrides(os.environ if env is None else env)
    layers.append(_nest(env_doc))
    params = MonitorParams()
    for layer in layers:
        params = _apply_doc(params, layer)
    return params


def _nest(flat: dict[str, dict[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section, values in flat.items():
        if section.startswith("quality."):
            out.setdefault("quality", {})[section.split(".", 1)[1]] = values
        else:
            out[section] = values
    return out


def _apply_doc(params: MonitorParams, doc: Mapping[str, Any]) -> MonitorParams:
    # [stream] is the stream service's (streams.settings), not the detectors'
    unknown = set(doc) - {
        "monitor",
        "publisher",
        "platform",
        "volume",
        "quality",
        "alerts",
        "stream",
    }
    if unknown:
        raise ConfigError(f"unknown config section(s): {', '.join(sorted(unknown))}")
    params = _apply(params, doc.get("monitor", {}), "monitor")
    changes: dict[str, Any] = {}
    for sec in ("publisher", "platform", "volume"):
        if sec in doc:
            changes[sec] = _apply(getattr(params, sec), doc[sec], sec)
    if "quality" in doc:
        rates = dict(params.rates)
        for kind_name, values in doc["quality"].items():
            try:
                kind = Kind(kind_name)
            except ValueError:
                raise ConfigError(f"unknown section quality.{kind_name}") from None
            if kind not in rates:
                raise ConfigError(f"unknown section quality.{kind_name}")
            rates[kind] = _apply(rates[kind], values, f"quality.{kind_name}")
        changes["rates"] = rates
    return dataclasses.replace(params, **changes) if changes else params


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def _section(title: str, obj: Any, skip: tuple[str, ...] = ()) -> list[str]:
    docs = _docs(type(obj))
    lines = [f"[{title}]"]
    for f in dataclasses.fields(obj):
        if f.name in skip:
            continue
        line = f"{f.name} = {_toml_value(getattr(obj, f.name))}"
        doc = docs.get(f.name)
        lines.append(f"{line:<44} # {doc}" if doc else line)
    return lines


def render_section(title: str, obj: Any) -> str:
    """One settings dataclass as a commented TOML section (``[stream]``, say)."""
    return "\n".join(_section(title, obj)) + "\n"


def render(params: MonitorParams) -> str:
    """The effective configuration as commented TOML (it loads back unchanged)."""
    out = ["# ordermon effective configuration (defaults < config file < ORDERMON_* env)", ""]
    out += _section("monitor", params, skip=_NESTED) + [""]
    out += _section("publisher", params.publisher) + [""]
    out += _section("platform", params.platform) + [""]
    out += _section("volume", params.volume) + [""]
    for kind, rp in params.rates.items():
        out += _section(f"quality.{kind.value}", rp) + [""]
    return "\n".join(out)


__all__ = [
    "ConfigError",
    "load_params",
    "render",
    "render_section",
    "RateParams",
    "PlatformParams",
    "PublisherParams",
    "VolumeParams",
]
