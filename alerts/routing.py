"""Labels of an alert, matchers, and the route tree (Alertmanager's ``dispatch/route.go``).

A route matches an alert when its matcher does; its children are tried in order, the first
match wins unless that child has ``continue``; a route none of whose children match takes
the alert itself. Children inherit receiver, grouping and timing from their parent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from monitor.model import Alert

MATCH_KEYS = ("kind", "category", "severity", "publisher_id")


def labels(alert: Alert) -> dict[str, str]:
    """The labels routing, grouping, inhibition and silences see ("" for none)."""
    return {
        "alert_id": alert.alert_id,
        "kind": alert.kind,
        "category": alert.category,
        "severity": alert.severity,
        "publisher_id": alert.publisher_id or "",
    }


@dataclass(frozen=True)
class Matcher:
    """Every listed label must equal one of its values (``eq``) or fully match a regex
    (``rx``); an empty matcher matches everything."""

    eq: tuple[tuple[str, frozenset[str]], ...] = ()
    rx: tuple[tuple[str, re.Pattern[str]], ...] = ()

    @classmethod
    def of(
        cls, eq: Mapping[str, str | list[str]], rx: Mapping[str, str | list[str]] | None = None
    ) -> Matcher:
        def vals(v: str | list[str]) -> list[str]:
            return [v] if isinstance(v, str) else list(v)

        return cls(
            tuple(sorted((k, frozenset(vals(v))) for k, v in eq.items())),
            tuple(sorted((k, re.compile("|".join(f"(?:{p})" for p in vals(v))))
                         for k, v in (rx or {}).items())),
        )  # fmt: skip

    def __call__(self, lbl: Mapping[str, str]) -> bool:
        return all(lbl.get(k, "") in vs for k, vs in self.eq) and all(
            p.fullmatch(lbl.get(k, "")) for k, p in self.rx
        )

    def __str__(self) -> str:
        parts = [f"{k}={'|'.join(sorted(v))}" for k, v in self.eq]
        parts += [f"{k}=~{p.pattern}" for k, p in self.rx]
        return "{" + ", ".join(parts) + "}"


@dataclass(frozen=True)
class RouteOpts:
    receiver: str | None = None
    group_by: tuple[str, ...] = ("kind",)
    group_wait: float = 30.0  # seconds before a new group's first notification
    group_interval: float = 300.0  # seconds between notifications of one group
    repeat_interval: float = 4 * 3600.0  # re-notify a still-firing alert (0: never)


@dataclass(frozen=True)
class Route:
    opts: RouteOpts
    matcher: Matcher = field(default_factory=Matcher)
    continue_: bool = False
    children: tuple[Route, ...] = ()

    def match(self, lbl: Mapping[str, str], path: str = "0") -> list[tuple[str, RouteOpts]]:
        """(route path, options) of every route that takes the alert, in tree order."""
        if not self.matcher(lbl):
            return []
        out: list[tuple[str, RouteOpts]] = []
        for i, child in enumerate(self.children):
            got = child.match(lbl, f"{path}.{i}")
            out += got
            if got and not child.continue_:
                break
        return out or [(path, self.opts)]

    def receivers(self) -> set[str]:
        own = {self.opts.receiver} if self.opts.receiver else set()
        return own.union(*(c.receivers() for c in self.children))

    def describe(self, depth: int = 0) -> list[str]:
        o = self.opts
        line = (
            f"{'  ' * depth}{o.receiver or '(none)'} <- {self.matcher}"
            f"{' continue' if self.continue_ else ''}; group_by={list(o.group_by)} "
            f"wait={o.group_wait:g}s interval={o.group_interval:g}s repeat={o.repeat_interval:g}s"
        )
        return [line] + [ln for c in self.children for ln in c.describe(depth + 1)]


def group_key(path: str, opts: RouteOpts, lbl: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The group an alert joins on a route: its key and its group labels."""
    glabels = {k: lbl.get(k, "") for k in opts.group_by}
    key = f"{path}:{opts.receiver}:" + ",".join(f"{k}={v}" for k, v in glabels.items())
    return key, glabels
