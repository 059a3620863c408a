"""Routing and grouping (Alertmanager's dispatcher): alerts in, due group flushes out.

``accept`` stores an alert record durably and puts its alert into one group per matching
route; ``flush_due(now)`` runs the flush pipeline on every group whose timer is due: a new
group waits ``group_wait`` for company, then flushes every ``group_interval``. Resolved
alerts leave their groups after a flush; an alert in no group any more is closed (kept a
while longer when it can inhibit others). Time is an argument: the wall clock in the
service, event time in a replay. State survives a restart through the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import structlog

from alerts.config import InhibitRule
from alerts.notice import Notification
from alerts.routing import Route, RouteOpts, group_key, labels
from alerts.store import Store
from monitor.model import Alert

log = structlog.get_logger("ordermon.alerts")


@dataclass(slots=True)
class Group:
    key: str
    opts: RouteOpts
    labels: dict[str, str]
    created_at: float
    next_flush: float
    members: set[str] = field(default_factory=set)


def _order(a: Alert) -> tuple[str, str, str, str]:
    return (a.window_start, a.kind, a.publisher_id or "", a.alert_id)


class Dispatcher:
    def __init__(
        self,
        route: Route,
        store: Store,
        flush: Callable[[Notification], object],
        send_resolved: Mapping[str, bool],
        inhibit_rules: tuple[InhibitRule, ...] = (),
        inhibit_retention: float = 6 * 3600.0,
    ) -> None:
        self.route = route
        self.store = store
        self.flush = flush
        self.send_resolved = send_resolved
        self.rules = inhibit_rules
        self.retention = inhibit_retention
        self.latest: dict[str, Alert] = {}
        self.firing: dict[str, Alert] = {}
        self.resolved_at: dict[str, float] = {}
        self.groups: dict[str, Group] = {}
        self.member_of: dict[str, set[str]] = {}
        self._restore()

    def known(self) -> Iterator[Alert]:
        """Every alert not yet closed, latest record (the candidates for inhibiting)."""
        return iter(self.latest.values())

    def accept(self, alert: Alert, now: float) -> bool:
        """Store and place one alert record; False for one already known or closed."""
        cur = self.latest.get(alert.alert_id)
        if cur == alert or (cur is not None and cur.status == "resolved"):
            return False  # a redelivery, or a firing record after the resolved one
        if cur is None and self.store.is_closed(alert.alert_id):
            log.debug("alert_ignored_closed", alert_id=alert.alert_id, status=alert.status)
            return False
        self.store.save_alert(alert, now)
        self._place(alert, now)
        return True

    def _place(self, alert: Alert, now: float) -> None:
        aid = alert.alert_id
        self.latest[aid] = alert
        if alert.status == "firing":
            self.firing[aid] = alert
        else:
            self.resolved_at[aid] = now
        lbl = labels(alert)
        routes = self.route.match(lbl)
        groups = self.member_of.setdefault(aid, set())
        for path, opts in routes:
            if opts.receiver is None:
                continue
            key, glabels = group_key(path, opts, lbl)
            g = self.groups.get(key)
            if g is None:
                g = Group(key, opts, glabels, now, now + opts.group_wait)
                self.groups[key] = g
                self.store.save_group(key, g.created_at, g.next_flush)
            g.members.add(aid)
            groups.add(key)
        if not groups:
            log.warning("alert_unrouted", alert_id=aid, kind=alert.kind)

    def next_due(self) -> float | None:
        return min((g.next_flush for g in self.groups.values()), default=None)

    def flush_due(self, now: float, force: bool = False) -> int:
        """Flush every group due at ``now`` (all of them with ``force``); the count."""
        due = sorted(
            (g for g in self.groups.values() if force or g.next_flush <= now),
            key=lambda g: (g.next_flush, g.key),
        )
        for g in due:
            self._flush(g, now)
        self._close_done(now)
        return len(due)

    def _flush(self, g: Group, now: float) -> None:
        receiver = g.opts.receiver or ""
        alerts = tuple(sorted((self.latest[i] for i in g.members), key=_order))
        n = Notification(
            receiver=receiver,
            group_key=g.key,
            group_labels=g.labels,
            alerts=alerts,
            firing_records={i: self.firing[i] for i in g.members if i in self.firing},
            now=now,
            send_resolved=self.send_resolved.get(receiver, True),
            repeat_interval=g.opts.repeat_interval,
            entry=self.store.entry(receiver, g.key),
        )
        self.flush(n)
        for aid in [i for i in g.members if self.latest[i].status == "resolved"]:
            g.members.discard(aid)
            self.member_of[aid].discard(g.key)
        if g.members:
            g.next_flush = now + g.opts.group_interval
            self.store.save_group(g.key, g.created_at, g.next_flush)
        else:
            del self.groups[g.key]
            self.store.delete_group(g.key)

    def _close_done(self, now: float) -> None:
        for aid, groups in list(self.member_of.items()):
            a = self.latest[aid]
            if groups or a.status != "resolved":
                continue
            lbl = labels(a)
            if any(r.source(lbl) for r in self.rules) and (
                now - self.resolved_at.get(aid, now) < self.retention
            ):
                continue  # still inhibits publisher alerts of its windows
            self.store.close_alert(aid, now)
            for d in (self.latest, self.firing, self.resolved_at, self.member_of):
                d.pop(aid, None)

    def _restore(self) -> None:
        saved = self.store.load_groups()
        for alert, at in self.store.load_alerts():
            if alert.alert_id in self.latest and alert.status == "firing":
                self.firing[alert.alert_id] = alert
                continue
            self._place(alert, at)
        for key, g in self.groups.items():
            if key in saved:
                g.created_at, g.next_flush = saved[key]
        for key in set(saved) - set(self.groups):
            self.store.delete_group(key)
        if self.latest:
            log.info("alerts_restored", alerts=len(self.latest), groups=len(self.groups))
