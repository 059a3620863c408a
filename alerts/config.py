"""The ``[alerts]`` configuration: receivers, the route tree, inhibition, silences, delivery.

Read from the same TOML file as the monitor (``monitor.config`` accepts the section and
leaves it to this module) plus a quick start from the environment:
``ORDERMON_SLACK_WEBHOOK_URL``, ``ORDERMON_WEBHOOK_URL`` (+ ``ORDERMON_WEBHOOK_SECRET``) and
``ORDERMON_ALERTMANAGER_URL`` each add a receiver that gets every alert (each also as
``..._FILE``, a path to read the value from). Secrets (receiver URLs, HMAC secrets) are
``Secret`` values: their ``repr`` and ``str`` never show them, and ``render`` redacts them.
Unknown keys are an error, as in the rest of ordermon. See ``alerts/README.md``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from alerts.parse import (
    Secret,
    check_url,
    keys,
    parse_duration,
    parse_time,
    read_secret,
    string_of,
    truth_of,
)
from alerts.routing import MATCH_KEYS, Matcher, Route, RouteOpts
from monitor.config import ConfigError

RECEIVER_TYPES = ("console", "slack", "webhook", "alertmanager")
GROUP_KEYS = ("kind", "category", "severity", "publisher_id", "alert_id")
DASHBOARD_FIELDS = frozenset(
    {"alert_id", "kind", "category", "severity", "status", "publisher_id", "reason",
     "window_start", "window_end", "window_start_ms", "window_end_ms", "detected_at"}
)  # fmt: skip


@dataclass(frozen=True)
class ReceiverConfig:
    name: str
    type: str
    url: Secret | None = None  # http(s) endpoint (secret: Slack's carries the token)
    url_source: str = ""  # where the URL came from ("env NAME", "file PATH", "config")
    secret: Secret | None = None  # webhook HMAC-SHA256 key
    secret_source: str = ""
    send_resolved: bool = True  # send a notice when an alert resolves
    mode: str = "alert"  # webhook: "alert" (one POST per alert record) or "group"
    ttl: float = 12 * 3600.0  # alertmanager: endsAt of a firing alert = send time + ttl
    stream: str = "stderr"  # console: stdout or stderr


@dataclass(frozen=True)
class InhibitRule:
    source: Matcher
    target: Matcher
    equal: tuple[str, ...] = ()
    same_window: bool = True  # target's window must overlap the source's active window


@dataclass(frozen=True)
class SilenceConfig:
    matcher: Matcher
    ends_at: float
    starts_at: float = 0.0
    comment: str = ""


@dataclass(frozen=True)
class DeliveryConfig:
    timeout: float = 10.0  # seconds, every request
    max_age: float = 3600.0  # a notice still failing this long after it was queued is dead-lettered
    backoff_initial: float = 1.0  # first retry delay, doubled on each failure
    backoff_max: float = 300.0  # retry delay cap
    jitter: float = 0.5  # each delay is scaled by a random factor in [1 - jitter, 1]
    drain_timeout: float = 60.0  # replay --notify: how long to wait for pending deliveries


DEFAULT_INHIBIT: tuple[InhibitRule, ...] = (
    InhibitRule(
        source=Matcher.of({"kind": "platform_spike"}),
        target=Matcher.of({"category": "publisher"}),
    ),
)


@dataclass(frozen=True)
class AlertsConfig:
    receivers: tuple[ReceiverConfig, ...] = ()
    route: Route = field(default_factory=lambda: Route(opts=RouteOpts()))
    inhibit_rules: tuple[InhibitRule, ...] = DEFAULT_INHIBIT
    silences: tuple[SilenceConfig, ...] = ()
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    outbox: str = ""  # SQLite file of the durable outbox (default: XDG state dir)
    dashboard_url: str = ""  # link template, e.g. https://grafana/d/om?var-pub={publisher_id}
    inhibit_retention: float = 6 * 3600.0  # keep resolved inhibiting alerts this long

    def receiver(self, name: str) -> ReceiverConfig:
        for r in self.receivers:
            if r.name == name:
                return r
        raise KeyError(name)


def default_outbox_path(env: Mapping[str, str]) -> str:
    base = env.get("XDG_STATE_HOME") or os.path.join(
        env.get("HOME") or os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "ordermon", "outbox.sqlite")


_RECEIVER_KEYS = {
    "name", "type", "url", "url_env", "url_file", "secret", "secret_env", "secret_file",
    "send_resolved", "mode", "ttl", "stream",
}  # fmt: skip


def _receiver(d: Mapping[str, Any], i: int, env: Mapping[str, str]) -> ReceiverConfig:
    where = f"alerts.receivers[{i}]"
    keys(d, _RECEIVER_KEYS, where)
    name = string_of(d, "name", where)
    if not name:
        raise ConfigError(f"{where}.name: required")
    where = f"alerts.receivers.{name}"
    kind = string_of(d, "type", where)
    if kind not in RECEIVER_TYPES:
        raise ConfigError(f"{where}.type: one of {', '.join(RECEIVER_TYPES)}, got {kind!r}")
    url, url_source = read_secret(d, "url", where, env, inline=True)
    if kind == "console":
        if url is not None:
            raise ConfigError(f"{where}: a console receiver takes no url")
    elif url is None:
        raise ConfigError(f"{where}: needs url, url_env or url_file")
    else:
        check_url(url.reveal(), f"{where}.url")
    secret, secret_source = read_secret(d, "secret", where, env, inline=False)
    if secret is not None and kind != "webhook":
        raise ConfigError(f"{where}: only webhook receivers take a secret")
    mode = string_of(d, "mode", where, "alert")
    if mode not in ("alert", "group"):
        raise ConfigError(f"{where}.mode: 'alert' or 'group', got {mode!r}")
    stream = string_of(d, "stream", where, "stderr")
    if stream not in ("stdout", "stderr"):
        raise ConfigError(f"{where}.stream: 'stdout' or 'stderr', got {stream!r}")
    ttl = parse_duration(d.get("ttl", ReceiverConfig.ttl), f"{where}.ttl")
    send_resolved = truth_of(d, "send_resolved", where, True)
    return ReceiverConfig(name, kind, url, url_source, secret, secret_source,
                          send_resolved, mode, ttl, stream)  # fmt: skip


def _matcher(d: Mapping[str, Any], where: str) -> Matcher:
    return _matcher_re(d, {}, where)


def _matcher_re(eq: Any, rx: Any, where: str) -> Matcher:
    for table, suffix in ((eq, ""), (rx, "_re")):
        keys(table, set(MATCH_KEYS), where + suffix)
        for k, v in table.items():
            vals = v if isinstance(v, list) else [v]
            if not vals or not all(isinstance(x, str) for x in vals):
                raise ConfigError(f"{where}.{k}: expected a string or a list of strings")
    try:
        return Matcher.of(eq, rx)
    except re.error as exc:
        raise ConfigError(f"{where}: bad regular expression: {exc}") from None


_ROUTE_KEYS = {
    "receiver", "group_by", "group_wait", "group_interval", "repeat_interval",
    "match", "match_re", "continue", "routes",
}  # fmt: skip


def _route(d: Mapping[str, Any], parent: RouteOpts, where: str, names: set[str]) -> Route:
    keys(d, _ROUTE_KEYS, where)
    changes: dict[str, Any] = {}
    if "receiver" in d:
        rcv = string_of(d, "receiver", where)
        if rcv not in names:
            raise ConfigError(f"{where}.receiver: no receiver named {rcv!r}")
        changes["receiver"] = rcv
    if "group_by" in d:
        gb = d["group_by"]
        if not isinstance(gb, list) or not all(isinstance(x, str) for x in gb):
            raise ConfigError(f"{where}.group_by: expected a list of label names")
        bad = [x for x in gb if x not in GROUP_KEYS]
        if bad:
            raise ConfigError(f"{where}.group_by: unknown label(s) {bad}; use {GROUP_KEYS}")
        changes["group_by"] = tuple(gb)
    for k in ("group_wait", "group_interval", "repeat_interval"):
        if k in d:
            changes[k] = parse_duration(d[k], f"{where}.{k}")
    opts = dataclasses.replace(parent, **changes)
    routes = d.get("routes", [])
    if not isinstance(routes, list):
        raise ConfigError(f"{where}.routes: expected an array of tables")
    children = tuple(_route(c, opts, f"{where}.routes[{i}]", names) for i, c in enumerate(routes))
    return Route(
        opts=opts,
        matcher=_matcher_re(d.get("match", {}), d.get("match_re", {}), where + ".match"),
        continue_=truth_of(d, "continue", where, False),
        children=children,
    )


def _env_receivers(env: Mapping[str, str]) -> list[ReceiverConfig]:
    def var(name: str) -> tuple[str, str] | None:
        if env.get(name, "").strip():
            return env[name].strip(), f"env {name}"
        path = env.get(name + "_FILE", "").strip()
        if path:
            try:
                with open(path, encoding="utf-8") as fh:
                    return fh.read().strip(), f"file {path}"
            except OSError as exc:
                raise ConfigError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
        return None

    out = []
    for name, kind, rcv in (
        ("ORDERMON_SLACK_WEBHOOK_URL", "slack", "slack"),
        ("ORDERMON_WEBHOOK_URL", "webhook", "webhook"),
        ("ORDERMON_ALERTMANAGER_URL", "alertmanager", "alertmanager"),
    ):
        got = var(name)
        if got is None:
            continue
        url = check_url(got[0], name)
        secret = var("ORDERMON_WEBHOOK_SECRET") if kind == "webhook" else None
        out.append(
            ReceiverConfig(
                rcv,
                kind,
                Secret(url),
                got[1],
                Secret(secret[0]) if secret else None,
                secret[1] if secret else "",
            )  # fmt: skip
        )
    return out


_TOP_KEYS = {
    "receivers", "route", "inhibit_rules", "silences", "delivery", "outbox", "dashboard_url",
    "inhibit_retention",
}  # fmt: skip


def load_alerts_config(
    path: str | None = None, env: Mapping[str, str] | None = None
) -> AlertsConfig:
    """The ``[alerts]`` section of ``path`` (if any) plus the environment quick start."""
    env = os.environ if env is None else env
    doc: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                doc = tomllib.load(fh).get("alerts", {})
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config {path} is not valid TOML: {exc}") from exc
    return alerts_config_from_doc(doc, env)


def alerts_config_from_doc(doc: Mapping[str, Any], env: Mapping[str, str]) -> AlertsConfig:
    keys(doc, _TOP_KEYS, "alerts")
    raw = doc.get("receivers", [])
    if not isinstance(raw, list):
        raise ConfigError("alerts.receivers: expected an array of tables ([[alerts.receivers]])")
    receivers = [_receiver(r, i, env) for i, r in enumerate(raw)]
    file_names = {r.name for r in receivers}
    receivers += [r for r in _env_receivers(env) if r.name not in file_names]
    names = [r.name for r in receivers]
    if len(set(names)) != len(names):
        raise ConfigError(f"alerts.receivers: duplicate receiver names in {names}")
    route = _route(doc.get("route", {}), RouteOpts(), "alerts.route", set(names))
    # Receivers no route names (all of them without a [alerts.route], the environment's
    # quick-start ones always) get every alert: catch-all children that continue.
    routed = route.receivers()
    extra = tuple(
        Route(opts=dataclasses.replace(route.opts, receiver=n), continue_=True)
        for n in names
        if n not in routed
    )
    if extra:
        route = dataclasses.replace(route, children=extra + route.children)
    rules = doc.get("inhibit_rules")
    inhibit = DEFAULT_INHIBIT
    if rules is not None:
        if not isinstance(rules, list):
            raise ConfigError("alerts.inhibit_rules: expected an array of tables")
        inhibit = tuple(_inhibit_rule(r, i) for i, r in enumerate(rules))
    silences = tuple(_silence(s, i) for i, s in enumerate(doc.get("silences", [])))
    delivery = _delivery(doc.get("delivery", {}))
    dashboard = env.get("ORDERMON_ALERTS_DASHBOARD_URL") or string_of(
        doc, "dashboard_url", "alerts"
    )
    if dashboard:
        check_dashboard_template(dashboard)
    outbox = env.get("ORDERMON_ALERTS_OUTBOX") or string_of(doc, "outbox", "alerts")
    retention = parse_duration(
        doc.get("inhibit_retention", AlertsConfig.inhibit_retention), "alerts.inhibit_retention"
    )
    return AlertsConfig(
        receivers=tuple(receivers), route=route, inhibit_rules=inhibit, silences=silences,
        delivery=delivery, outbox=outbox or default_outbox_path(env), dashboard_url=dashboard,
        inhibit_retention=retention,
    )  # fmt: skip


def _inhibit_rule(d: Mapping[str, Any], i: int) -> InhibitRule:
    where = f"alerts.inhibit_rules[{i}]"
    keys(d, {"source", "target", "equal", "same_window"}, where)
    equal = d.get("equal", [])
    if not isinstance(equal, list) or any(x not in GROUP_KEYS for x in equal):
        raise ConfigError(f"{where}.equal: a list of labels from {GROUP_KEYS}")
    return InhibitRule(
        source=_matcher(d.get("source", {}), f"{where}.source"),
        target=_matcher(d.get("target", {}), f"{where}.target"),
        equal=tuple(equal),
        same_window=truth_of(d, "same_window", where, True),
    )


def _silence(d: Mapping[str, Any], i: int) -> SilenceConfig:
    where = f"alerts.silences[{i}]"
    keys(d, {"match", "match_re", "starts_at", "ends_at", "comment"}, where)
    if "ends_at" not in d:
        raise ConfigError(f"{where}.ends_at: required (a silence must end)")
    return SilenceConfig(
        matcher=_matcher_re(d.get("match", {}), d.get("match_re", {}), f"{where}.match"),
        starts_at=parse_time(d["starts_at"], f"{where}.starts_at") if "starts_at" in d else 0.0,
        ends_at=parse_time(d["ends_at"], f"{where}.ends_at"),
        comment=string_of(d, "comment", where),
    )


def _delivery(d: Mapping[str, Any]) -> DeliveryConfig:
    names = {f.name for f in dataclasses.fields(DeliveryConfig)}
    keys(d, names, "alerts.delivery")
    changes: dict[str, float] = {}
    for k, v in d.items():
        if k == "jitter":
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
                raise ConfigError("alerts.delivery.jitter: a number in [0, 1]")
            changes[k] = float(v)
        else:
            changes[k] = parse_duration(v, f"alerts.delivery.{k}")
    if changes.get("timeout", 1.0) <= 0:
        raise ConfigError("alerts.delivery.timeout: must be positive")
    return dataclasses.replace(DeliveryConfig(), **changes)


def check_dashboard_template(template: str) -> None:
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise ConfigError(f"alerts.dashboard_url: {exc}") from None
    unknown = fields - DASHBOARD_FIELDS
    if unknown:
        raise ConfigError(
            f"alerts.dashboard_url: unknown placeholder(s) {sorted(unknown)}; "
            f"use {sorted(DASHBOARD_FIELDS)}"
        )
    check_url(template, "alerts.dashboard_url")


def _q(v: str) -> str:
    """A TOML basic string."""
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(cfg: AlertsConfig) -> str:
    """The effective ``[alerts]`` configuration, secrets redacted (for ``config show``)."""
    q = _q

    d = cfg.delivery
    out = ["[alerts]", f"outbox = {q(cfg.outbox)}"]
    if cfg.dashboard_url:
        out.append(f"dashboard_url = {q(cfg.dashboard_url)}")
    out += [f"inhibit_retention = {cfg.inhibit_retention:g}", "", "[alerts.delivery]"]
    out += [f"{f.name} = {getattr(d, f.name):g}" for f in dataclasses.fields(d)]
    for r in cfg.receivers:
        out += ["", "[[alerts.receivers]]", f"name = {q(r.name)}", f"type = {q(r.type)}"]
        if r.url is not None:
            out.append(f"# url: <redacted> (from {r.url_source})")
        if r.secret is not None:
            out.append(f"# secret: <redacted> (from {r.secret_source})")
        out.append(f"send_resolved = {'true' if r.send_resolved else 'false'}")
        if r.type == "webhook":
            out.append(f"mode = {q(r.mode)}")
        if r.type == "alertmanager":
            out.append(f"ttl = {r.ttl:g}")
    out += ["", "# routes (receiver <- match; group_by, group_wait/interval, repeat_interval)"]
    out += [f"# {line}" for line in cfg.route.describe()]
    for rule in cfg.inhibit_rules:
        # as TOML that loads back as the same rule (a comment alone loaded back as an
        # empty rule: every alert inhibiting every other)
        out += ["", "[[alerts.inhibit_rules]]", f"# {rule.source} inhibits {rule.target}"
                f"{' in the same windows' if rule.same_window else ''}"
                f"{' with equal ' + ','.join(rule.equal) if rule.equal else ''}",
                f"source = {_toml_matcher(rule.source)}",
                f"target = {_toml_matcher(rule.target)}",
                f"equal = [{', '.join(q(x) for x in rule.equal)}]",
                f"same_window = {'true' if rule.same_window else 'false'}"]  # fmt: skip
    return "\n".join(out) + "\n"


def _toml_matcher(m: Matcher) -> str:
    """An equality matcher as a TOML inline table (inhibit rules have no regexes)."""

    def val(vs: frozenset[str]) -> str:
        items = sorted(vs)
        return _q(items[0]) if len(items) == 1 else "[" + ", ".join(map(_q, items)) + "]"

    return "{" + ", ".join(f"{k} = {val(vs)}" for k, vs in m.eq) + "}"
