"""The flush pipeline: small stages with one signature, ``Notification -> Notification``.

Each due group's flush, for its receiver, runs ``inhibit → silence → decide → dedup →
enqueue`` (assembled in ``alerts.service.build_stages``); the sender then delivers the
outbox with retries and records acknowledgements. Suppression returns fewer alerts; no
stage raises for a decision. A stage that leaves nothing to do ends the run.

A receiver is always told that an alert it was told is firing has resolved: inhibition
and silences never hold back such a resolved record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

import structlog

from alerts.config import InhibitRule, SilenceConfig
from alerts.decide import Decision, Entry, needs_update
from alerts.notice import Delivery, Item, Notification
from alerts.routing import labels
from alerts.store import Store
from monitor.model import Alert, parse_iso

Stage = Callable[[Notification], Notification]
log = structlog.get_logger("ordermon.alerts")

_INF = float("inf")


def run_stages(stages: Sequence[Stage], n: Notification) -> Notification:
    for stage in stages:
        if not n.alerts or n.decision is Decision.SKIP:
            break
        n = stage(n)
    return n


def _owed_resolution(n: Notification, a: Alert) -> bool:
    return a.status == "resolved" and n.entry is not None and a.alert_id in n.entry.firing


class Inhibit:
    """Drop target alerts while a matching source alert covers them: by default a
    ``platform_spike`` inhibits the ``publisher`` alerts whose window overlaps the windows
    it is (or was) active in: from its first window to its last, open-ended while firing.
    A notification carrying a source alert lists the alerts it suppresses (any group's)."""

    def __init__(self, rules: Sequence[InhibitRule], known: Callable[[], Iterable[Alert]]):
        self.rules = tuple(rules)
        self.known = known

    def __call__(self, n: Notification) -> Notification:
        if not self.rules:
            return n
        known = list(self.known())
        sources = [[s for s in known if rule.source(labels(s))] for rule in self.rules]
        keep: list[Alert] = []
        muted: list[Alert] = []
        for a in n.alerts:
            hit = not _owed_resolution(n, a) and any(
                covers(rule, s, a) for rule, srcs in zip(self.rules, sources, strict=True)
                for s in srcs
            )  # fmt: skip
            (muted if hit else keep).append(a)
        suppressed = {
            t.alert_id: t
            for a in keep
            for rule in self.rules
            if rule.source(labels(a))
            for t in known
            if covers(rule, a, t)
        }
        if muted:
            log.debug("alerts_inhibited", receiver=n.receiver, group_key=n.group_key,
                      count=len(muted))  # fmt: skip
        return dataclasses.replace(
            n, alerts=tuple(keep), inhibited=n.inhibited + tuple(muted),
            suppressed=tuple(suppressed.values()),
        )  # fmt: skip


def covers(rule: InhibitRule, source: Alert, target: Alert) -> bool:
    """Whether ``source`` inhibits ``target`` under ``rule``."""
    if source.alert_id == target.alert_id:
        return False
    slbl, tlbl = labels(source), labels(target)
    if not (rule.source(slbl) and rule.target(tlbl)):
        return False
    if any(slbl.get(k) != tlbl.get(k) for k in rule.equal):
        return False
    if not rule.same_window:
        return True
    s_start, s_end = _active(source)
    return parse_iso(target.window_start) < s_end and s_start < parse_iso(target.window_end)


def _active(a: Alert) -> tuple[float, float]:
    end = parse_iso(a.window_end) if a.status == "resolved" else _INF
    return parse_iso(a.window_start), end


class Silence:
    """Drop alerts a configured silence matches at the pipeline's time."""

    def __init__(self, silences: Sequence[SilenceConfig]):
        self.silences = tuple(silences)

    def __call__(self, n: Notification) -> Notification:
        active = [s for s in self.silences if s.starts_at <= n.now < s.ends_at]
        if not active:
            return n
        keep: list[Alert] = []
        muted: list[Alert] = []
        for a in n.alerts:
            hit = not _owed_resolution(n, a) and any(s.matcher(labels(a)) for s in active)
            (muted if hit else keep).append(a)
        if muted:
            log.debug("alerts_silenced", receiver=n.receiver, group_key=n.group_key,
                      count=len(muted))  # fmt: skip
        return dataclasses.replace(n, alerts=tuple(keep), silenced=n.silenced + tuple(muted))


def decide(n: Notification) -> Notification:
    """``needs_update`` on the notification log entry, and the items that follow from it."""
    firing = frozenset(a.alert_id for a in n.alerts if a.status == "firing")
    resolved = frozenset(a.alert_id for a in n.alerts if a.status == "resolved")
    d = needs_update(n.entry, firing, resolved, send_resolved=n.send_resolved,
                     repeat_interval=n.repeat_interval, now=n.now)  # fmt: skip
    told_f = n.entry.firing if n.entry else frozenset()
    told_r = n.entry.resolved if n.entry else frozenset()
    items: list[Item] = []
    if d is Decision.NOTIFY:
        for a in n.alerts:
            if a.status == "firing":
                if a.alert_id not in told_f:
                    items.append(Item(a))
            elif n.send_resolved and a.alert_id not in told_r:
                first = n.firing_records.get(a.alert_id)
                if first is not None and a.alert_id not in told_f:
                    items.append(Item(first))  # fired and resolved between two flushes
                items.append(Item(a))
    elif d is Decision.REPEAT:
        seq = (n.entry.seq if n.entry else 0) + 1
        items = [Item(a, seq) for a in n.alerts if a.status == "firing"]
    return dataclasses.replace(n, decision=d, items=tuple(items))


class Dedup:
    """Drop items already queued for this receiver, by any group, in any run: a
    (receiver, alert_id, status, seq) is queued, and so delivered, at most once."""

    def __init__(self, store: Store):
        self.store = store

    def __call__(self, n: Notification) -> Notification:
        seen = self.store.already_notified(n.receiver, (i.key for i in n.items))
        if not seen:
            return n
        log.debug("notification_items_deduplicated", receiver=n.receiver, count=len(seen))
        return dataclasses.replace(
            n,
            items=tuple(i for i in n.items if i.key not in seen),
            deduplicated=tuple(i for i in n.items if i.key in seen),
        )


class Splitter(Protocol):
    def split(self, n: Notification) -> list[Delivery]: ...


class Enqueue:
    """Record the notification: deliveries into the outbox, items into the notified log,
    the new notification log entry; one transaction, before any request is made."""

    def __init__(self, store: Store, receivers: Mapping[str, Splitter], clock: Callable[[], float]):
        self.store = store
        self.receivers = receivers
        self.clock = clock

    def __call__(self, n: Notification) -> Notification:
        deliveries = self.receivers[n.receiver].split(n) if n.items else []
        self.store.record(n.receiver, n.group_key, next_entry(n), deliveries, n.now, self.clock())
        if deliveries:
            log.info("notification_queued", receiver=n.receiver, group_key=n.group_key,
                     decision=n.decision, items=len(n.items), deliveries=len(deliveries),
                     inhibited=len(n.inhibited), silenced=len(n.silenced))  # fmt: skip
        return n


def next_entry(n: Notification) -> Entry:
    """What the receiver knows after this notification (ids no longer in the group pruned)."""
    present = {a.alert_id for a in (*n.alerts, *n.inhibited, *n.silenced)}
    told_f = (n.entry.firing if n.entry else frozenset()) & present
    told_r = (n.entry.resolved if n.entry else frozenset()) & present
    told = (*n.items, *n.deduplicated)
    new_f = {i.alert.alert_id for i in told if i.alert.status == "firing"}
    new_r = {i.alert.alert_id for i in told if i.alert.status == "resolved"}
    seq = (n.entry.seq if n.entry else 0) + (1 if n.decision is Decision.REPEAT else 0)
    return Entry(frozenset(told_f | new_f), frozenset(told_r | new_r), n.now, seq)
