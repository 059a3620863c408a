"""The live status page on the worker's web port: ``/``, ``/static/<file>``, ``/api/overview``.

The page (``streams/static/``: plain HTML, CSS and JavaScript, no build step, no external
network) polls ``/api/overview`` every 2 s and draws its charts as inline SVG. The JSON is
assembled here from what the worker already keeps:

- detection's read model (``monitor.overview.Overview``: recent windows, ranked publishers,
  open alerts), present only on the worker holding partition 0 of the partials topic;
  other workers say so (``detection.here`` is false, with a note naming the topic);
- ``streams.web.status`` for pipeline health (readiness, assignment, lag, watermark,
  checkpoints) and this worker's ingest totals;
- an event rate from this process's counters, sampled once a second into a ring buffer;
- the alert records this worker delivered (firing and resolved), so an incident that opens
  and closes between two polls (seconds, in the accelerated demo) still shows on the page.

All of it is per-process and in memory: a restarted worker's page starts empty again.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from pathlib import Path
from typing import Any

import structlog

from monitor.model import Alert, iso

log = structlog.get_logger("ordermon.stream")

STATIC_DIR = Path(__file__).with_name("static")
# the only files served under /static/ (no path from a request ever reaches the filesystem)
ASSETS = {
    "app.js": "text/javascript",
    "style.css": "text/css",
}
NO_CACHE = {"Cache-Control": "no-store"}
SAMPLE_EVERY_S = 1.0
RATE_OVER_S = 10.0  # the headline event rate: accepted events over the last 10 s
CHART_WINDOWS = 96  # 8 h of 5-minute windows in the charts
TOP_PUBLISHERS = 10
RECENT_ALERTS = 40


class EventRate:
    """Accepted events per second from per-partition counters sampled over wall time.

    Ingest counters live in partition state: they jump when a partition's state is restored
    from a checkpoint and vanish when it is revoked. Increments of the *same* task object
    between two samples count; a task seen for the first time counts from zero if it started
    fresh (``fresh``: no checkpoint was restored), else from its first sample (events it
    accepted between its restore and that sample, under a second's worth, are not counted).
    So the rate is what this process accepted, never a restore. ``samples`` is a ring
    buffer of ``(wall time, accepted, input messages)``.
    """

    def __init__(self, keep: int = 300) -> None:
        self.samples: deque[tuple[float, int, int]] = deque(maxlen=keep)
        self.accepted = 0  # accepted by this process since it started
        self._last: dict[int, tuple[int, int]] = {}  # partition -> (id(task), accepted)

    def sample(self, now: float, tasks: dict[int, Any], messages: int,
               fresh: set[int] | frozenset[int] = frozenset()) -> None:  # fmt: skip
        seen: dict[int, tuple[int, int]] = {}
        for p, task in tasks.items():
            n = task.ingest.accepted
            prev = self._last.get(p)
            if prev is not None and prev[0] == id(task):
                self.accepted += max(0, n - prev[1])
            elif p in fresh:
                self.accepted += n
            seen[p] = (id(task), n)
        self._last = seen
        self.samples.append((now, self.accepted, messages))

    def rate(self, over_s: float = RATE_OVER_S) -> tuple[float | None, float | None]:
        """(accepted events/s, input messages/s) over the last ``over_s`` seconds; None
        until two samples exist."""
        if len(self.samples) < 2:
            return None, None
        t1, a1, m1 = self.samples[-1]
        base = self.samples[0]
        for s in reversed(self.samples):
            base = s
            if t1 - s[0] >= over_s:
                break
        dt = t1 - base[0]
        if dt <= 0:
            return None, None
        return round((a1 - base[1]) / dt, 1), round(max(0, m1 - base[2]) / dt, 1)

    def series(self) -> list[list[float]]:
        """[[wall time, events/s]] between consecutive samples (the sparkline)."""
        out, prev = [], None
        for t, a, _ in self.samples:
            if prev is not None and t > prev[0]:
                out.append([round(t, 1), round((a - prev[1]) / (t - prev[0]), 1)])
            prev = (t, a)
        return out


class RecentAlerts:
    """The latest record of the last ``keep`` alerts this worker delivered, newest first."""

    def __init__(self, keep: int = RECENT_ALERTS) -> None:
        self.keep = keep
        self.items: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def add(self, alert: Alert, now: float) -> None:
        ev = alert.evidence or {}
        prev = self.items.pop(alert.alert_id, None)
        self.items[alert.alert_id] = {
            "alert_id": alert.alert_id,
            "kind": alert.kind,
            "category": alert.category,
            "status": alert.status,
            "severity": alert.severity
            if alert.status == "firing"
            else (prev or {}).get("severity", alert.severity),  # fmt: skip
            "publisher_id": alert.publisher_id,
            "reason": alert.reason,
            "window_start": (prev or {}).get("window_start", alert.window_start),
            "window_end": alert.window_end,
            "detected_at": alert.detected_at,
            "summary": alert.summary,
            "observed": ev.get("observed"),
            "expected": ev.get("expected"),
            "score": ev.get("score"),
            "affected_publishers": affected(alert.publisher_id, ev),
            "received_at": iso(now),
        }
        while len(self.items) > self.keep:
            self.items.popitem(last=False)

    def newest_first(self) -> list[dict[str, Any]]:
        return list(reversed(self.items.values()))


def affected(scope: str | None, evidence: dict[str, Any]) -> list[str]:
    """The publishers an alert names: its scope, else the evidence's list."""
    if scope:
        return [scope]
    pubs = evidence.get("affected_publishers")
    return [str(p) for p in pubs] if isinstance(pubs, list) else []


class StatusPage:
    """Per-worker state of the page (rate samples, recent alerts) and the JSON it reads."""

    def __init__(self, sa: Any) -> None:
        self.sa = sa
        self.rate = EventRate()
        self.recent = RecentAlerts()
        self.started_at = time.time()

    def sample(self, now: float | None = None) -> None:
        ingest = self.sa.ingest
        latest = {info["partition"]: info["restored"] for info in ingest.restores}
        fresh = {p for p, restored in latest.items() if not restored}
        self.rate.sample(now or time.time(), ingest.tasks, ingest.messages, fresh)

    def on_alert(self, alert: Alert) -> None:
        self.recent.add(alert, time.time())

    def overview(self, n_windows: int = CHART_WINDOWS, n_pubs: int = TOP_PUBLISHERS) -> dict:
        from streams.web import status

        st = status(self.sa)
        det = self.sa.detection.tasks.get(0)
        ov = det.detection.overview if det is not None else None
        recent = self.recent.newest_first()
        firing = [firing_row(a) for a in ov.firing()] if ov is not None else []
        # live-only alerts (stream_stall) are not in detection's book: open ones come from
        # the records this worker delivered
        firing += [a | {"since": a["window_start"], "windows": None, "peak_score": a["score"]}
                   for a in recent if a["status"] == "firing"
                   and a["kind"] == "stream_stall"]  # fmt: skip
        windows = ov.windows()[-n_windows:] if ov is not None else []
        ev, msgs = self.rate.rate()
        return {
            "generated_at": iso(time.time()),
            "worker": worker_info(self.sa, self.started_at),
            "detection": detection_info(self.sa, st, ov is not None),
            "rate": {"events_per_s": ev, "messages_per_s": msgs, "over_s": RATE_OVER_S,
                     "accepted_total": self.rate.accepted, "series": self.rate.series()},
            "window_s": self.sa.params.window_s,
            "windows": windows,
            "publishers": ov.publishers(n_pubs) if ov is not None else [],
            "firing": firing,
            "recent_alerts": recent,
            "quality": quality(st, windows, ov.windows() if ov is not None else []),
            "health": health(self.sa, st),
        }  # fmt: skip


def firing_row(a: dict[str, Any]) -> dict[str, Any]:
    """An open alert of detection's book, with the evidence the page shows up front."""
    ev = a.get("evidence") or {}
    return a | {
        "observed": ev.get("observed"),
        "expected": ev.get("expected"),
        "score": ev.get("score"),
        "publisher_id": a.get("scope"),
        "affected_publishers": affected(a.get("scope"), ev),
    }


def worker_info(sa: Any, started_at: float) -> dict[str, Any]:
    s = sa.s
    return {"app_id": s.app_id, "input_topic": s.input_topic, "partitions": sa.P,
            "web": f"http://{s.web_host}:{s.web_port}", "started_at": iso(started_at)}  # fmt: skip


def detection_info(sa: Any, st: dict[str, Any], here: bool) -> dict[str, Any]:
    topic = sa.s.partials_topic
    d = st.get("detection") or {}
    note = None
    if not here:
        roles = by_role(sa, st["assigned"])
        held = "; ".join(f"{r} {ps}" for r, ps in roles.items() if r != "internal" and ps)
        held = held or "no stage partitions yet"
        note = (f"Detection runs on the worker holding partition 0 of {topic}; this worker "
                f"holds {held}. Windows, publishers and alerts are on that worker's page; "
                f"this page shows this worker's event rate, ingest data quality and "
                f"pipeline health.")  # fmt: skip
    wm = d.get("watermark")
    return {
        "here": here,
        "partials_topic": topic,
        "note": note,
        "closed_through": d.get("closed_through"),
        "windows_closed": d.get("windows_closed"),
        "watermark": iso(wm) if wm is not None else None,
        "pending_windows": d.get("pending_windows", []),
    }


def quality(st: dict[str, Any], shown: list[dict], kept: list[dict]) -> dict[str, Any]:
    """Per window (the chart reads ``windows``) and totals: this worker's ingest counters
    (rejections by code, duplicates, violations by type: the state of its input partitions)
    and late/future events summed over the windows detection keeps."""
    ing = st["ingest"]
    return {
        "per_window_keys": ["rejected", "duplicates", "violations", "late", "future"],
        "last_window": {k: w[k] for w in shown[-1:] for k in
                        ("rejected", "duplicates", "violations", "late", "future", "arrivals")},
        "totals": {
            "rejected_by_code": dict(sorted(ing["rejected"].items(), key=lambda kv: -kv[1])),
            "rejected": sum(ing["rejected"].values()),
            "duplicates": ing["duplicates"],
            "violations_by_type": ing["violations"],
            "violations": sum(ing["violations"].values()),
            "accepted": ing["accepted"],
            "dead_lettered": st["counts"].get("dead_lettered", 0),
        },
        "kept_windows": {
            "windows": len(kept),
            "late": sum(w["late"] for w in kept),
            "future": sum(w["future"] for w in kept),
            "rejected": sum(w["rejected"] for w in kept),
            "duplicates": sum(w["duplicates"] for w in kept),
            "violations": sum(w["violations"] for w in kept),
        },
    }  # fmt: skip


def roles_of(sa: Any) -> dict[str, str]:
    s = sa.s
    return {s.input_topic: "input", s.facts_topic: "facts", s.partials_topic: "partials",
            s.alerts_topic: "alerts"}  # fmt: skip


def by_role(sa: Any, assigned: list[str]) -> dict[str, Any]:
    """Assigned partitions per stage topic (input, facts, partials, alerts); the rest
    (checkpoint changelogs, faust's assignor topic) only counted, as ``internal``."""
    names = roles_of(sa)
    out: dict[str, Any] = {role: [] for role in names.values()}
    internal = 0
    for tp in assigned:
        topic, _, part = tp.rpartition(":")
        role = names.get(topic)
        if role is None:
            internal += 1
        else:
            out[role].append(int(part))
    out["internal"] = internal
    return out


def health(sa: Any, st: dict[str, Any]) -> dict[str, Any]:
    lag = st["consumer_lag"]
    runners = {"ingest": sa.ingest, "windowing": sa.windowing, "detection": sa.detection}
    stages = {
        name: {
            "partitions": r["partitions"],
            "messages": r["messages"],
            "unacked": r["unacked"],
            "checkpoints": r["checkpoints"],
            "checkpoint_bytes_total": r["checkpoint_bytes"],
            # size of each partition's last checkpoint (``CheckpointStore.sizes``)
            "checkpoint_bytes_last": dict(getattr(runners[name].store, "sizes", {})),
        }
        for name, r in st["stages"].items()
    }
    return {
        "ready": st["ready"],
        "reason": st["reason"],
        "assigned": st["assigned"],
        "assigned_by_role": by_role(sa, st["assigned"]),
        "consumer_lag": lag,
        "lag_by_role": {roles_of(sa).get(t, t): parts for t, parts in lag.items()},
        "lag_total": sum(n for parts in lag.values() for n in parts.values()),
        "watermark_delay_seconds": st["watermark_delay_seconds"],
        "stages": stages,
        "counts": st["counts"],
        "offset_gaps": st["ingest"]["offset_gaps"],
    }


def add_status_page(sa: Any) -> StatusPage:
    """Register ``/``, ``/static/<file>`` and ``/api/overview`` on the worker's web server,
    the 1 s rate sampler, and a tap on delivered alerts (chained to any ``on_alert``)."""
    app = sa.app
    page = StatusPage(sa)
    sa.status_page = page
    prev = sa.on_alert

    def tap(alert: Alert) -> None:
        page.on_alert(alert)
        if prev is not None:
            prev(alert)

    sa.on_alert = tap

    @app.timer(SAMPLE_EVERY_S, name="ordermon-statuspage-sampler")
    async def _sample() -> None:
        page.sample()

    @app.page("/")
    async def index(web: Any, request: Any) -> Any:
        return web.html((STATIC_DIR / "index.html").read_text(), headers=dict(NO_CACHE))

    @app.page("/static/{file}")
    async def static(web: Any, request: Any, file: str) -> Any:
        ctype = ASSETS.get(file)
        if ctype is None:
            return web.text(f"no such asset: {file}\n", status=404)
        body = (STATIC_DIR / file).read_text(encoding="utf-8")
        return web.text(body, content_type=ctype, headers=dict(NO_CACHE))

    @app.page("/api/overview")
    async def api_overview(web: Any, request: Any) -> Any:
        try:
            doc = page.overview()
        except Exception as exc:  # the page shows the error; the worker goes on
            log.exception("status_page_overview_failed")
            return web.json({"error": f"{type(exc).__name__}: {exc}"}, status=500)
        return web.json(doc, headers=dict(NO_CACHE))

    return page
