"""From per-window findings to alert records: firing once, resolved once, stable ids.

An alert opens when a finding *fires* for a (kind, scope) that has no open alert, stays
open while findings keep at least *sustaining* it, and resolves after
``resolve_after_windows`` windows in a row without one. Its ``alert_id`` is derived from
kind, scope and the start of the window where it first fired: the same events give the
same ids in every driver and every run.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any

from monitor.detectors.base import Finding
from monitor.model import KIND_CATEGORY, Alert, AlertStatus, Kind, Severity, iso

_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


def alert_id(kind: str, scope: str | None, window_start: float) -> str:
    key = f"{kind}|{scope or '*'}|{iso(window_start)}"
    return "om-" + hashlib.sha256(key.encode()).hexdigest()[:20]


@dataclass(slots=True)
class OpenAlert:
    alert_id: str
    kind: Kind
    scope: str | None
    first_start: float
    last_end: float
    severity: Severity
    peak_score: float
    last: Finding
    windows: int = 1
    quiet: int = 0
    suppressed: list[str] = field(default_factory=list)
    fired: Finding | None = None  # the latest *firing* finding: what the resolve refers to
    carried: set[str] = field(default_factory=set)  # channels of every firing finding

    @property
    def headline(self) -> str:
        return self.fired.summary if self.fired is not None else ""


class AlertBook:
    def __init__(self, resolve_after_windows: int = 3) -> None:
        self.resolve_after = resolve_after_windows
        self.open: dict[tuple[str, str | None], OpenAlert] = {}

    def update(
        self, start: float, end: float, detected_at: float, findings: list[Finding]
    ) -> list[Alert]:
        out: list[Alert] = []
        seen: set[tuple[str, str | None]] = set()
        for f in findings:
            key = (f.kind.value, f.scope)
            seen.add(key)
            cur = self.open.get(key)
            if cur is not None:
                cur.quiet = 0
                cur.last_end = end
                cur.windows += 1
                if f.firing and f.score > cur.peak_score:
                    cur.peak_score = f.score
                if f.firing:
                    cur.fired = f
                    cur.carried.update(f.channels)
                cur.last = f
                continue
            if not f.firing:
                continue
            aid = alert_id(f.kind.value, f.scope, start)
            cur = OpenAlert(aid, f.kind, f.scope, start, end, f.severity, f.score, f, fired=f,
                            carried=set(f.channels))  # fmt: skip
            self.open[key] = cur
            out.append(self._record(cur, f, AlertStatus.FIRING, start, end, detected_at))
        for key, cur in list(self.open.items()):
            if key in seen:
                continue
            cur.quiet += 1
            if cur.quiet >= self.resolve_after:
                del self.open[key]
                # the resolve says what it resolves: the reason and evidence of the last
                # firing window (its headline), not of the quiet window that sustained last
                out.append(
                    self._record(
                        cur,
                        cur.fired or cur.last,
                        AlertStatus.RESOLVED,
                        cur.first_start,
                        cur.last_end,
                        detected_at,
                    )
                )
        return out

    def _record(
        self,
        cur: OpenAlert,
        f: Finding,
        status: AlertStatus,
        start: float,
        end: float,
        detected_at: float,
    ) -> Alert:
        evidence: dict[str, Any] = dict(f.evidence)
        summary = f.summary
        if status is AlertStatus.RESOLVED:
            minutes = (cur.last_end - cur.first_start) / 60
            # the figures are the last firing window's: say so, or they read as ongoing
            summary = (
                f"Resolved after {minutes:.0f} min, normal since {iso(cur.last_end)[11:16]} "
                f"UTC. Last firing window: {f.summary}"
            )
            evidence["peak_score"] = round(cur.peak_score, 2)
            evidence["windows_active"] = cur.windows
        return Alert(
            alert_id=cur.alert_id,
            kind=cur.kind.value,
            category=KIND_CATEGORY[cur.kind].value,
            status=status.value,
            severity=cur.severity.value,
            publisher_id=cur.scope if cur.kind is Kind.PUBLISHER_SPIKE else None,
            reason=f.reason,
            window_start=iso(start),
            window_end=iso(end),
            detected_at=iso(detected_at),
            summary=summary,
            evidence=evidence,
        )

    def firing(self, kind: Kind) -> list[OpenAlert]:
        return [a for a in self.open.values() if a.kind is kind]

    def snapshot(self) -> dict[str, Any]:
        import msgspec

        return {
            "open": [
                {
                    "alert_id": a.alert_id,
                    "kind": a.kind.value,
                    "scope": a.scope,
                    "first_start": a.first_start,
                    "last_end": a.last_end,
                    "severity": a.severity.value,
                    "peak_score": a.peak_score,
                    "windows": a.windows,
                    "quiet": a.quiet,
                    "last": msgspec.to_builtins(_finding_dict(a.last)),
                    "fired": msgspec.to_builtins(_finding_dict(a.fired)) if a.fired else None,
                    "carried": sorted(a.carried),
                }
                for a in self.open.values()
            ]
        }

    def restore(self, snap: dict[str, Any]) -> None:
        self.open = {}
        for d in snap["open"]:
            last = _finding_from(d["last"])
            a = OpenAlert(
                d["alert_id"],
                Kind(d["kind"]),
                d["scope"],
                d["first_start"],
                d["last_end"],
                Severity(d["severity"]),
                d["peak_score"],
                last,
                d["windows"],
                d["quiet"],
            )
            if d.get("fired"):
                a.fired = _finding_from(d["fired"])
            elif d.get("headline"):  # an older snapshot: the firing summary, no more
                a.fired = dataclasses.replace(last, summary=d["headline"])
            # older snapshots: what the firing finding carried
            a.carried = set(d.get("carried", a.fired.channels if a.fired else ()))
            self.open[(a.kind.value, a.scope)] = a


def _finding_from(f: dict[str, Any]) -> Finding:
    return Finding(
        Kind(f["kind"]),
        f["scope"],
        f["firing"],
        f["sustain"],
        f["score"],
        Severity(f["severity"]),
        f["summary"],
        f["reason"],
        f["evidence"],
        tuple(f["channels"]),
    )


def _finding_dict(f: Finding) -> dict[str, Any]:
    return {
        "kind": f.kind.value,
        "scope": f.scope,
        "firing": f.firing,
        "sustain": f.sustain,
        "score": f.score,
        "severity": f.severity.value,
        "summary": f.summary,
        "reason": f.reason,
        "evidence": f.evidence,
        "channels": list(f.channels),
    }
