"""``/healthz``, ``/readyz`` and ``/status`` on the worker's web port (127.0.0.1 default).

- ``/healthz``: 200 while the worker's event loop answers (liveness).
- ``/readyz``: 200 once the worker holds partitions and table recovery is done; 503 with
  the reason otherwise (starting, rebalancing, recovering).
- ``/status``: JSON for people and the metrics issue: assignment, consumer lag, watermark
  and its delay, unacknowledged messages, checkpoint sizes, counters.
"""

from __future__ import annotations

from typing import Any

from streams.metrics import add_metrics_page
from streams.statuspage import add_status_page


def readiness(sa: Any) -> tuple[bool, str]:
    app = sa.app
    lost = getattr(sa, "unready_reason", None)  # streams.supervise.BrokerWatch
    if lost:
        return False, lost
    try:
        assigned = app.consumer.assignment()
    except Exception:
        return False, "consumer not started"
    if not assigned:
        if getattr(sa, "assigned_none", False):  # the group settled, with nothing for us
            return True, "idle: no partitions assigned (more workers than partitions)"
        return False, "no partitions assigned (joining the group or rebalancing)"
    if getattr(app, "in_recovery", False) or not app.tables.recovery.completed.is_set():
        return False, "recovering table state"
    if not app.flow_control.is_active():
        return False, "rebalancing"
    return True, "ok"


def status(sa: Any) -> dict[str, Any]:
    ready, why = readiness(sa)
    try:
        assigned = sorted(f"{tp.topic}:{tp.partition}" for tp in sa.app.consumer.assignment())
    except Exception:
        assigned = []
    runners = {}
    for name, r in (("ingest", sa.ingest), ("windowing", sa.windowing),
                    ("detection", sa.detection)):  # fmt: skip
        runners[name] = {
            "partitions": sorted(r.tasks),
            "messages": r.messages,
            "unacked": r.unacked(),
            "checkpoints": r.store.saves,
            "checkpoint_bytes": r.store.saved_bytes,
            "offsets": {p: getattr(t, "offset", None) for p, t in r.tasks.items()},
        }
    det = sa.detection.tasks.get(0)
    detection = None
    if det is not None:
        d = det.detection
        detection = {"closed_through": d.closed_through, "windows_closed": d.windows_closed,
                     "watermark": d.watermark, "redelivered_partials": d.redelivered,
                     "fact_gaps": {q: t.gaps for q, t in sa.windowing.tasks.items() if t.gaps},
                     "pending_windows": sorted(d.pending)}  # fmt: skip
    ingest: dict[str, Any] = {"accepted": 0, "duplicates": 0, "rejected": {}, "violations": {},
                              "skipped_replayed": 0, "offset_gaps": {}}  # fmt: skip
    for t in sa.ingest.tasks.values():
        i = t.ingest
        ingest["accepted"] += i.accepted
        ingest["duplicates"] += i.duplicates
        ingest["skipped_replayed"] += t.skipped
        if t.gaps:
            ingest["offset_gaps"][t.partition] = t.gaps[:10]
        for name in ("rejected", "violations"):
            for k, v in getattr(i, name).items():
                ingest[name][k] = ingest[name].get(k, 0) + v
    return {
        "ready": ready,
        "ingest": ingest,
        "detection": detection,
        "reason": why,
        "assigned": assigned,
        "consumer_lag": sa.live.consumer_lag(),
        "watermark": sa.live.watermark,
        "watermark_delay_seconds": sa.live.watermark_delay_s(),
        "stages": runners,
        "counts": dict(sa.counts),
        # records the broker has acknowledged, by output ("alerts" reaches counts'
        # alerts_sent once every alert sent so far is readable on the alerts topic)
        "on_broker": dict(sa.gate.on_broker),
    }


def add_pages(sa: Any) -> None:
    app = sa.app
    add_metrics_page(sa)  # GET /metrics
    add_status_page(sa)  # GET /, /static/<file>, /api/overview (streams/statuspage.py)

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        ready, why = readiness(sa)
        return web.json({"ready": ready, "reason": why}, status=200 if ready else 503)

    @app.page("/status")
    async def status_page(web: Any, request: Any) -> Any:
        return web.json(status(sa))
