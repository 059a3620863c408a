"""Scoring of alerts against labelled incidents, next to a static Prometheus-style rule.

``evaluate`` reads the simulator's ``incidents.json`` and an ``alerts.jsonl`` and reports
recall and detection delay per incident kind, then precision, recall and F1 overall. Given
the event stream it also runs :func:`static_rule_alerts`, the per-publisher threshold rule
people write in Prometheus, and scores its alerts with exactly the same matching, so the
two columns of :func:`format_report` compare like with like.

Matching: a firing alert matches an incident when its kind is the incident's
``alert_kind``, the publisher agrees (an incident without a publisher accepts any), its
active span ``[window_start, resolved detected_at or +inf]`` overlaps
``[start, end + grace]`` and it was detected by ``end + grace``. An alert that matches
nothing is false, except a publisher alert overlapping a platform incident: those are
counted on their own and left out of precision. Traps (promotions, tiny or new large
publishers) have no alert kind; a trap is "alerted" when a false alert hits its scope.
"""

from __future__ import annotations

import bisect
import gzip
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from monitor.decode import decode
from monitor.model import Category, Kind, OrderEvent, Status, iso, parse_iso

INCIDENT_KINDS = (
    "fraud_burst", "brushing", "refund_wave", "platform_glitch", "malformed_burst",
    "duplicate_storm", "lifecycle_bug", "clock_skew", "volume_drop", "reason_shift",
)  # fmt: skip
DEFAULT_GRACE_S = 1800.0
FALSE_ALERTS_SHOWN = 20

# Static rule: sum over the last WINDOW_S > RATIO x trailing-BASELINE_S mean of such
# sums, and >= MIN_COUNT, per publisher, evaluated every STEP_S of event time.
STEP_S = 300
WINDOW_S = 900
BASELINE_S = 86400
RATIO = 3.0
MIN_COUNT = 5
MIN_HISTORY_S = 3600


@dataclass(slots=True)
class AlertSpan:
    """One alert as scored: active from window_start (or detection) to its resolve."""

    alert_id: str
    kind: str
    category: str
    publisher_id: str | None
    start: float
    detected: float
    summary: str
    end: float = math.inf

    def overlaps(self, lo: float, hi: float) -> bool:
        return self.start <= hi and self.end >= lo


@dataclass(frozen=True, slots=True)
class Incident:
    """One labelled incident or trap; publishers empty means platform-wide."""

    id: str
    kind: str
    alert_kind: str | None
    category: str | None
    publishers: frozenset[str]
    start: float
    end: float
    trap: bool


# ---------------------------------------------------------------- reading inputs


def _lines(path: str | Path) -> Iterator[bytes]:
    """Lines of a JSONL file, gzip-compressed or not (detected by magic bytes)."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    with opener(path, "rb") as f:
        for line in f:
            line = line.strip()
            if line:
                yield line


def load_incidents(doc: dict[str, Any]) -> list[Incident]:
    out = []
    for d in doc.get("incidents", []):
        pubs = set(d.get("publisher_ids") or ())
        if d.get("publisher_id"):
            pubs.add(d["publisher_id"])
        out.append(
            Incident(
                id=d["id"],
                kind=d["kind"],
                alert_kind=d.get("alert_kind"),
                category=d.get("category"),
                publishers=frozenset(pubs),
                start=parse_iso(d["start"]),
                end=parse_iso(d["end"]),
                trap=bool(d.get("trap")),
            )
        )
    return out


def alert_spans(records: Iterable[dict[str, Any]]) -> list[AlertSpan]:
    """Firing records as alerts, each closed by the next resolved record of its id.

    A firing record for an id that is already open is a repeat and ignored; after a
    resolve the same id may fire again as a new alert.
    """
    spans: list[AlertSpan] = []
    open_: dict[str, AlertSpan] = {}
    for r in records:
        aid = r["alert_id"]
        if r["status"] == "firing" and aid not in open_:
            a = AlertSpan(
                alert_id=aid,
                kind=r["kind"],
                category=r["category"],
                publisher_id=r.get("publisher_id"),
                start=parse_iso(r["window_start"]),
                detected=parse_iso(r["detected_at"]),
                summary=r.get("summary", ""),
            )
            a.start = min(a.start, a.detected)
            open_[aid] = a
            spans.append(a)
        elif r["status"] == "resolved" and aid in open_:
            open_.pop(aid).end = parse_iso(r["detected_at"])
    return spans


# ---------------------------------------------------------------- scoring


def _quantile(xs: list[float], q: float) -> float | None:
    """Linear-interpolated quantile (numpy's default) of xs; None when empty."""
    if not xs:
        return None
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _matches(a: AlertSpan, inc: Incident, grace_s: float) -> bool:
    hi = inc.end + grace_s
    return (
        a.kind == inc.alert_kind
        and (not inc.publishers or a.publisher_id in inc.publishers)
        and a.overlaps(inc.start, hi)
        and a.detected <= hi
    )


def _trap_hit(a: AlertSpan, trap: Incident, grace_s: float) -> bool:
    if not a.overlaps(trap.start, trap.end + grace_s):
        return False
    if trap.publishers:
        return a.category == Category.PUBLISHER and a.publisher_id in trap.publishers
    return a.category in (Category.PUBLISHER, Category.PLATFORM) or a.kind == Kind.VOLUME_DROP


def score(incidents: list[Incident], alerts: list[AlertSpan], grace_s: float) -> dict[str, Any]:
    """Per-kind and overall scores of ``alerts`` against ``incidents`` (JSON-able)."""
    real = [i for i in incidents if not i.trap]
    traps = [i for i in incidents if i.trap]
    platform = [i for i in real if i.category == Category.PLATFORM]

    first: dict[str, float] = {}  # incident id -> first matching detected_at
    true_n, during_platform = 0, 0
    false: list[AlertSpan] = []
    for a in alerts:
        hit = [i for i in real if _matches(a, i, grace_s)]
        for i in hit:
            first[i.id] = min(first.get(i.id, math.inf), a.detected)
        if hit:
            true_n += 1
        elif a.category == Category.PUBLISHER and any(
            a.overlaps(p.start, p.end + grace_s) for p in platform
        ):
            during_platform += 1
        else:
            false.append(a)

    delays: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    for i in real:
        counts[i.kind] = counts.get(i.kind, 0) + 1
        ds = delays.setdefault(i.kind, [])
        if i.id in first:
            ds.append(max(0.0, first[i.id] - i.start))
    kinds = [k for k in INCIDENT_KINDS if k in counts] + sorted(set(counts) - set(INCIDENT_KINDS))
    by_kind = {
        k: {
            "incidents": counts[k],
            "detected": len(delays[k]),
            "recall": _ratio(len(delays[k]), counts[k]),
            "median_delay_s": _quantile(delays[k], 0.5),
            "p90_delay_s": _quantile(delays[k], 0.9),
        }
        for k in kinds
    }

    precision = _ratio(true_n, true_n + len(false))
    recall = _ratio(len(first), len(real))
    f1 = None
    if precision is not None and recall is not None:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    # the alerts one platform incident raised: its own kind's and publisher alerts during
    # it that no other incident explains (a concurrent fraud burst elsewhere, a duplicate
    # storm of the feed, are their own incidents, not part of this one's storm)
    def raised_by(a: AlertSpan, p: Incident) -> bool:
        if not a.overlaps(p.start, p.end + grace_s):
            return False
        if a.kind == p.alert_kind:
            return True
        return a.category == Category.PUBLISHER and not any(
            _matches(a, i, grace_s) for i in real if i is not p
        )

    per_platform = [sum(raised_by(a, p) for a in alerts) for p in platform]
    all_delays = [d for ds in delays.values() for d in ds]
    false_by_kind: dict[str, int] = {}
    for a in false:
        false_by_kind[a.kind] = false_by_kind.get(a.kind, 0) + 1
    false.sort(key=lambda a: (a.detected, a.alert_id))
    overall = {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "incidents": len(real),
        "detected": len(first),
        "alerts": len(alerts),
        "true_alerts": true_n,
        "false_alerts": len(false),
        "publisher_alerts_during_platform": during_platform,
        "false_alerts_by_kind": dict(sorted(false_by_kind.items())),
        "median_delay_s": _quantile(all_delays, 0.5),
        "p90_delay_s": _quantile(all_delays, 0.9),
        "traps": len(traps),
        "traps_alerted": [t.id for t in traps if any(_trap_hit(a, t, grace_s) for a in false)],
        "alerts_per_platform_incident_max": max(per_platform, default=None),
        "alerts_per_platform_incident_mean": (
            sum(per_platform) / len(per_platform) if per_platform else None
        ),
    }
    shown = [
        {
            "alert_id": a.alert_id,
            "kind": a.kind,
            "publisher_id": a.publisher_id,
            "detected_at": iso(a.detected),
            "summary": a.summary,
        }
        for a in false[:FALSE_ALERTS_SHOWN]
    ]
    return {"by_kind": by_kind, "overall": overall, "false_alerts": shown}


# ---------------------------------------------------------------- static rule


def _invalidation_bins(events_path: str | Path) -> tuple[dict[str, dict[int, int]], float, float]:
    """Distinct valid invalidations per publisher per STEP_S bin; time range of all events."""
    bins: dict[str, dict[int, int]] = {}
    seen: set[str] = set()
    lo, hi = math.inf, -math.inf
    for line in _lines(events_path):
        ev = decode(line)
        if not isinstance(ev, OrderEvent):
            continue
        ts = ev.occurred_at.timestamp()
        lo, hi = min(lo, ts), max(hi, ts)
        if ev.status is not Status.INVALIDATED or ev.event_id in seen:
            continue
        seen.add(ev.event_id)
        b = int(ts // STEP_S)
        d = bins.setdefault(ev.publisher_id, {})
        d[b] = d.get(b, 0) + 1
    return bins, lo, hi


class _Series:
    """One publisher's invalidation counts per bin, with the rule evaluated at a bin's end."""

    def __init__(self, counts: dict[int, int], hist_b: int) -> None:
        self.counts = counts
        self.hist_b = hist_b  # first bin of the stream: no history before it
        self.keys = sorted(counts)
        self.cum = [0]
        for k in self.keys:
            self.cum.append(self.cum[-1] + counts[k])

    def window(self, b: int) -> int:
        """Invalidations in the WINDOW_S ending at the end of bin b."""
        return sum(self.counts.get(b - d, 0) for d in range(WINDOW_S // STEP_S))

    def expected(self, b: int) -> float:
        """Mean WINDOW_S count over the BASELINE_S (or the history there is) before it."""
        wb = WINDOW_S // STEP_S
        n = min(BASELINE_S // STEP_S, b - wb + 1 - self.hist_b)
        if n <= 0:
            return 0.0
        lo, hi = b - wb + 1 - n, b - wb  # inclusive
        ks = self.keys
        return (
            (self.cum[bisect.bisect_right(ks, hi)] - self.cum[bisect.bisect_left(ks, lo)]) * wb / n
        )

    def firing(self, first_b: int, last_b: int) -> list[int]:
        """Bins b in [first_b, last_b] at whose end the rule is true, ascending.

        Only bins whose window holds an invalidation can fire, so only those are tested.
        """
        out = []
        for b in sorted({k + d for k in self.keys for d in range(WINDOW_S // STEP_S)}):
            if first_b <= b <= last_b:
                w = self.window(b)
                if w >= MIN_COUNT and w > RATIO * self.expected(b):
                    out.append(b)
        return out


def _static_record(pub: str, series: _Series, b: int, status: str, opened: int) -> dict[str, Any]:
    t, obs, mean = (b + 1) * STEP_S, series.window(b), series.expected(b)
    summary = (
        f"static rule: {pub} had {obs} invalidations in 15 min"
        f" > {RATIO:g} x trailing 24 h mean {mean:.2f}"
        if status == "firing"
        else f"static rule: {pub} back under threshold ({obs} in 15 min, mean {mean:.2f})"
    )
    return {
        "schema_version": 1,
        "alert_id": f"static-{pub}-{(opened + 1) * STEP_S}",
        "kind": Kind.PUBLISHER_SPIKE.value,
        "category": Category.PUBLISHER.value,
        "status": status,
        "severity": "warning",
        "publisher_id": pub,
        "reason": None,
        "window_start": iso(t - WINDOW_S),
        "window_end": iso(t),
        "detected_at": iso(t),
        "summary": summary,
        "evidence": {
            "observed": obs,
            "expected": round(mean, 4),
            "ratio": RATIO,
            "min_count": MIN_COUNT,
            "window_s": WINDOW_S,
            "baseline_s": BASELINE_S,
        },
    }


def static_rule_alerts(
    events_path: str | Path, start: float | None = None, end: float | None = None
) -> list[dict[str, Any]]:
    """Contract alert records (firing and resolved) of the static per-publisher rule.

    Per publisher, at every 5-min boundary T of event time: the distinct valid
    invalidations in [T-15m, T) > 3 x the mean 15-min count over the 24 h before that
    window, and >= 5. While less than 24 h of history exist (from ``start``, default the
    first valid event) the mean is over the history there is, and no evaluation happens
    in the first hour. A run of true evaluations is one alert, detected at its first
    true evaluation and resolved at the first false one; a run still true at ``end``
    (default: once the last valid event has left the window) stays firing.
    """
    bins, lo, hi = _invalidation_bins(events_path)
    if not bins:
        return []
    start = lo if start is None else start
    end = hi + WINDOW_S if end is None else end
    first_b = math.ceil((start + MIN_HISTORY_S) / STEP_S) - 1
    last_b = math.floor(end / STEP_S)
    records = []
    for pub, counts in bins.items():
        series = _Series(counts, math.floor(start / STEP_S))
        runs: list[list[int]] = []
        for b in series.firing(first_b, last_b):
            if runs and runs[-1][-1] == b - 1:
                runs[-1].append(b)
            else:
                runs.append([b])
        for run in runs:
            records.append(_static_record(pub, series, run[0], "firing", run[0]))
            if run[-1] < last_b:
                records.append(_static_record(pub, series, run[-1] + 1, "resolved", run[0]))
    records.sort(key=lambda r: (r["detected_at"], r["status"] == "firing", r["alert_id"]))
    return records


# ---------------------------------------------------------------- entry points


def default_events_path(incidents_path: str | Path) -> str | None:
    """``events.jsonl`` (or ``.gz``) beside ``incidents.json``, if there is one."""
    for name in ("events.jsonl", "events.jsonl.gz"):
        p = Path(incidents_path).with_name(name)
        if p.exists():
            return str(p)
    return None


def evaluate(
    incidents_path: str | Path,
    alerts_path: str | Path,
    events_path: str | Path | None = None,
    grace_s: float = DEFAULT_GRACE_S,
) -> dict[str, Any]:
    """Score ``alerts_path`` (and the static rule on ``events_path``) against incidents."""
    doc = msgspec.json.decode(Path(incidents_path).read_bytes())
    incidents = load_incidents(doc)
    records = [msgspec.json.decode(line) for line in _lines(alerts_path)]
    report: dict[str, Any] = {"grace_s": grace_s}
    report.update(score(incidents, alert_spans(records), grace_s))
    if events_path is not None:
        start = parse_iso(doc["start"]) if doc.get("start") else None
        end = parse_iso(doc["end"]) if doc.get("end") else None
        static = static_rule_alerts(events_path, start, end)
        report["static"] = score(incidents, alert_spans(static), grace_s)
    return report


# ---------------------------------------------------------------- formatting


def _dur(s: float | None) -> str:
    if s is None:
        return "-"
    s = round(s)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}" if x in (0, 1) else f"{x:.1%}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def format_report(report: dict[str, Any]) -> str:
    """Markdown tables, ordermon and the static rule side by side."""
    sides = [("ordermon", report)] + ([("static", report["static"])] if "static" in report else [])
    header = ["incident kind", "n"]
    for name, _ in sides:
        header += [f"{name} recall", f"{name} delay p50 / p90"]
    rows = []
    for kind, k in report["by_kind"].items():
        row = [kind, str(k["incidents"])]
        for _, side in sides:
            s = side["by_kind"][kind]
            row += [
                f"{s['detected']}/{s['incidents']} ({_pct(s['recall'])})",
                f"{_dur(s['median_delay_s'])} / {_dur(s['p90_delay_s'])}",
            ]
        rows.append(row)
    out = [_table(header, rows)]

    def cells(o: dict[str, Any]) -> list[str]:
        traps = ", ".join(o["traps_alerted"])
        apm, apmean = o["alerts_per_platform_incident_max"], o["alerts_per_platform_incident_mean"]
        f1 = "-" if o["f1"] is None else f"{o['f1']:.3f}"
        return [
            f"{_pct(o['precision'])} ({o['true_alerts']}/{o['true_alerts'] + o['false_alerts']})",
            f"{_pct(o['recall'])} ({o['detected']}/{o['incidents']})",
            f1,
            f"{_dur(o['median_delay_s'])} / {_dur(o['p90_delay_s'])}",
            str(o["alerts"]),
            str(o["true_alerts"]),
            str(o["false_alerts"]),
            str(o["publisher_alerts_during_platform"]),
            f"{len(o['traps_alerted'])}/{o['traps']}" + (f" ({traps})" if traps else ""),
            "-" if apm is None else f"{apm} / {apmean:.1f}",
        ]

    labels = [
        "precision", "recall", "F1", "delay p50 / p90", "alerts (firing)", "true alerts",
        "false alerts", "publisher alerts during platform incidents (not in precision)",
        "traps alerted", "alerts per platform incident (max / mean)",
    ]  # fmt: skip
    cols = [cells(side["overall"]) for _, side in sides]
    rows = [[label, *(c[i] for c in cols)] for i, label in enumerate(labels)]
    out.append(_table(["overall", *(name for name, _ in sides)], rows))
    for name, side in sides:
        if side["false_alerts"]:
            shown = [
                f"- {f['detected_at']} {f['kind']} {f['publisher_id'] or '-'}: {f['summary']}"
                for f in side["false_alerts"]
            ]
            out.append("\n".join([f"first false alerts ({name}):", *shown]))
    out.append(f"matching grace: {_dur(report['grace_s'])} after each incident's end")
    return "\n\n".join(out) + "\n"
