"""The values that flow through the delivery pipeline.

A *notification* is one flush of one group for one receiver; the stages narrow it down to
the *items* the receiver must be told, and the receiver splits it into *deliveries* (one
HTTP request each), which the outbox stores and the sender delivers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from alerts.decide import Decision, Entry
from monitor.model import Alert

ItemKey = tuple[str, str, int]  # (alert_id, status, seq)


@dataclass(frozen=True, slots=True)
class Item:
    """One alert record to tell a receiver; ``seq`` 0 is the first notice of that status,
    n > 0 the n-th repeat reminder of a still-firing alert."""

    alert: Alert
    seq: int = 0

    @property
    def key(self) -> ItemKey:
        return (self.alert.alert_id, self.alert.status, self.seq)


@dataclass(frozen=True, slots=True)
class Notification:
    receiver: str
    group_key: str
    group_labels: Mapping[str, str]
    alerts: tuple[Alert, ...]  # the group's alerts, latest record of each
    firing_records: Mapping[str, Alert]  # the firing record of each, where known
    now: float  # pipeline time (wall clock live, event time in a replay)
    send_resolved: bool
    repeat_interval: float
    entry: Entry | None = None  # what the receiver was last told about this group
    decision: Decision | None = None
    items: tuple[Item, ...] = ()
    deduplicated: tuple[Item, ...] = ()  # items dropped as already queued before
    inhibited: tuple[Alert, ...] = ()
    silenced: tuple[Alert, ...] = ()
    suppressed: tuple[Alert, ...] = ()  # alerts (any group's) this one's alerts inhibit


@dataclass(frozen=True, slots=True)
class Delivery:
    """One request to one receiver, as stored in the outbox: ``body`` holds the contract
    alert records and context; the receiver renders it at send time."""

    receiver: str
    key: str  # idempotency key: the same for every attempt, across restarts
    items: tuple[ItemKey, ...]
    body: dict[str, Any] = field(default_factory=dict)


def delivery_key(receiver: str, items: tuple[ItemKey, ...]) -> str:
    text = receiver + "|" + ";".join(f"{a}:{s}:{q}" for a, s, q in items)
    return "om-n-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def make_delivery(n: Notification, items: tuple[Item, ...]) -> Delivery:
    keys = tuple(i.key for i in items)
    body = {
        "receiver": n.receiver,
        "group_key": n.group_key,
        "group_labels": dict(n.group_labels),
        "repeat": any(i.seq > 0 for i in items),
        "alerts": [msgspec.to_builtins(i.alert) for i in items],
        "suppressed": suppressed(n.suppressed),
    }
    return Delivery(n.receiver, delivery_key(n.receiver, keys), keys, body)


SUPPRESSED_MAX = 1000


def suppressed(alerts: tuple[Alert, ...]) -> dict[str, Any]:
    """The alerts a notification's alerts inhibit: a count and the first ids."""
    ordered = sorted(alerts, key=lambda a: (a.publisher_id or "", a.alert_id))
    return {
        "count": len(ordered),
        "alerts": [
            {"alert_id": a.alert_id, "kind": a.kind, "publisher_id": a.publisher_id}
            for a in ordered[:SUPPRESSED_MAX]
        ],
    }


def alerts_of(body: Mapping[str, Any]) -> list[Alert]:
    return [msgspec.convert(a, Alert) for a in body.get("alerts", [])]


def latest_by_id(alerts: list[Alert]) -> list[Alert]:
    """One record per alert id, the latest (records come firing first), in first-seen order."""
    out: dict[str, Alert] = {}
    for a in alerts:
        out[a.alert_id] = a
    return list(out.values())
