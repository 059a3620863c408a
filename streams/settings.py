"""Settings of the stream service: the ``[stream]`` section of the config file, then
``ORDERMON_STREAM_*`` environment variables, then command-line flags.

Detector thresholds are the monitor's (``monitor.config``); this is only how the service
runs on Kafka. Every field has a default that works against a local broker.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from monitor.config import ConfigError
from streams.topics import ALERTS, ORDERS, ORDERS_DLQ

LOG_FORMATS = ("auto", "json", "console")


@dataclass(frozen=True)
class StreamSettings:
    broker: str = "kafka://127.0.0.1:9092"  # bootstrap server(s), kafka://host:port[,...]
    app_id: str = "ordermon"  # consumer group; prefixes internal topics and tables
    input_topic: str = ORDERS  # order events, keyed by order_id
    dlq_topic: str = ORDERS_DLQ  # rejected messages: original bytes + error headers
    alerts_topic: str = ALERTS  # alert records (contract JSON), keyed by alert_id
    partitions: int = 4  # input partitions when the topic must be created
    store: str = "rocksdb://"  # table store: rocksdb:// (durable) or memory://
    datadir: str = "ordermon-data"  # local table data (one directory per worker)
    embedded: bool = False  # the broker is the embedded Tansu: relax faust's recovery check
    web_host: str = "127.0.0.1"  # /healthz, /readyz, /status bind address
    web_port: int = 6066  # 0 = no web server
    checkpoint_interval_s: float = 5.0  # checkpoint a partition's state at least this often
    checkpoint_events: int = 50_000  # ... or after this many of its messages
    facts_linger_s: float = 0.1  # send buffered facts at least this often
    idle_after_s: float = 5.0  # a caught-up input partition this quiet is idle (wall clock)
    stall_min_s: float = 300.0  # stream_stall: never before this much silence ...
    stall_factor: float = 10.0  # ... nor before this many median inter-arrival gaps
    connect_retry_max_s: float = 30.0  # back-off cap while the broker is unreachable
    # a running worker that cannot reach any broker for this long restarts and waits for it
    # without writing (a broker may come back without its data); 0 rides outages out
    outage_restart_s: float = 10.0
    fetch_max_wait_ms: int = 200  # longest a fetch waits for data (faust fixes 1500)
    # consumer group timing: a dead member is noticed after the session timeout, and a
    # group join waits about half of it (Tansu), so restarts take at least ~1.5x this
    broker_session_timeout: float = 10.0  # seconds without a heartbeat before eviction
    broker_heartbeat_interval: float = 1.0  # seconds; well under the session timeout
    broker_rebalance_timeout: float = 10.0  # seconds members get to rejoin a rebalance
    console: bool = True  # print alerts as they fire
    color: bool = False  # ANSI colours in printed alerts (always on a terminal)
    log_level: str = "warn"  # faust worker log level: debug, info, warn, error
    log_format: str = "auto"  # structlog output: json, console, auto (console on a terminal)
    metrics_top_publishers: int = 50  # /metrics: per-publisher series for the N largest

    @property
    def facts_topic(self) -> str:
        return f"{self.app_id}.facts"

    @property
    def partials_topic(self) -> str:
        return f"{self.app_id}.partials"


def _coerce(name: str, current: Any, value: Any) -> Any:
    kind = type(current)
    try:
        if isinstance(value, str) and kind is bool:
            return value.strip().lower() in ("1", "true", "yes", "on")
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and kind is not str:
            return kind(value)
    except ValueError as exc:
        raise ConfigError(f"stream.{name}: cannot read {value!r} as {kind.__name__}") from exc
    if not isinstance(value, kind):
        raise ConfigError(f"stream.{name}: expected {kind.__name__}, got {value!r}")
    return value


def load_stream_settings(
    path: str | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> StreamSettings:
    """Defaults < ``[stream]`` of the TOML file < ``ORDERMON_STREAM_*`` < ``overrides``
    (flags; ``None`` values are ignored)."""
    s = StreamSettings()
    fields = {f.name: f for f in dataclasses.fields(s)}
    layers: list[dict[str, Any]] = []
    if path:
        try:
            with open(path, "rb") as fh:
                layers.append(tomllib.load(fh).get("stream", {}))
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config {path} is not valid TOML: {exc}") from exc
    env = os.environ if env is None else env
    layers.append(
        {
            k[len("ORDERMON_STREAM_") :].lower(): v
            for k, v in env.items()
            if k.startswith("ORDERMON_STREAM_")
        }  # fmt: skip
    )
    layers.append({k: v for k, v in overrides.items() if v is not None})
    for layer in layers:
        changes = {}
        for k, v in layer.items():
            if k not in fields:
                raise ConfigError(f"unknown setting stream.{k}")
            changes[k] = _coerce(k, getattr(s, k), v)
        s = dataclasses.replace(s, **changes)
    if s.partitions < 1:
        raise ConfigError("stream.partitions must be >= 1")
    if not 10 <= s.fetch_max_wait_ms <= 10_000:
        raise ConfigError("stream.fetch_max_wait_ms must be between 10 and 10000")
    if not 0 < s.broker_heartbeat_interval < s.broker_session_timeout:
        raise ConfigError("stream.broker_heartbeat_interval must be > 0 and below "
                          "stream.broker_session_timeout")  # fmt: skip
    if s.broker_rebalance_timeout <= 0:
        raise ConfigError("stream.broker_rebalance_timeout must be > 0")
    if s.log_format not in LOG_FORMATS:
        raise ConfigError(f"stream.log_format: one of {', '.join(LOG_FORMATS)}, "
                          f"got {s.log_format!r}")  # fmt: skip
    if s.metrics_top_publishers < 0:
        raise ConfigError("stream.metrics_top_publishers must be >= 0")
    return s
