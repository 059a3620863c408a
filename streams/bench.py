"""Events/s of one stream worker next to the bare-faust baseline, same broker, same run.

``python -m streams.bench [--events N] [--store rocksdb://|memory://]``: simulates a
stream, starts the embedded broker, fills a 4-partition topic, runs the baseline agent
(decode + count, ``streams.baseline``), then one ``ordermon run`` worker on the same topic.
The worker's rate is measured from its ``/status`` (polled every 0.1 s): from the first
message ingested to the last (the ingest stage), and to the last window detected
(end to end, including the facts and partials hops).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from streams.baseline import run_baseline, sample_events
from streams.broker import EmbeddedBroker


def _worker_rate(broker: EmbeddedBroker, topic: str, n: int, work: Path, store: str
                 ) -> dict[str, Any]:  # fmt: skip
    import urllib.request

    from streams.procs import WorkerProc, write_config

    cfg = write_config(work / "bench.toml", input_topic=topic, app_id="om-bench",
                       dlq_topic=topic + ".dlq", alerts_topic=topic + ".alerts", store=store,
                       partitions=4)  # fmt: skip
    w = WorkerProc(broker.url, cfg, work, "bench").start()
    t_first = t_last = t_end = None
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < 600 and w.running:
            try:
                url = f"http://127.0.0.1:{w.port}/status"
                with urllib.request.urlopen(url, timeout=2) as r:
                    st = json.loads(r.read())
            except OSError:
                st = None
            if st:
                got = st["stages"]["ingest"]["messages"]
                now = time.monotonic()
                if got and t_first is None:
                    t_first = (now, got)
                if got >= n and t_last is None:
                    t_last = now
                lag = sum(v for p in st["consumer_lag"].values() for v in p.values())
                if t_last and lag == 0 and not (st.get("detection") or {}).get("pending_windows"):
                    t_end = now
                    break
            time.sleep(0.1)  # sampling interval of the measurement
    finally:
        code = w.terminate()
    if not (t_first and t_last and t_end):
        raise RuntimeError(f"worker did not finish; log {w.log_path}")
    (tf, n0) = t_first
    return {
        "ingest_events_per_second": round((n - n0) / (t_last - tf), 1),
        "end_to_end_events_per_second": round((n - n0) / (t_end - tf), 1),
        "startup_seconds": round(tf - t0, 1),
        "exit_code": code,
    }


def bench(events: int = 200_000, store: str = "rocksdb://", seed: int = 7) -> dict[str, Any]:
    from streams.produce import produce_file
    from streams.topics import ensure_topics

    work = Path(tempfile.mkdtemp(prefix="ordermon-bench-"))
    src = sample_events(events, seed, work)
    with EmbeddedBroker(log_path=work / "broker.log") as broker:
        asyncio.run(ensure_topics(broker.bootstrap, {"orders": 4}))
        prod = asyncio.run(produce_file(str(src), broker.bootstrap, "orders"))
        n = int(prod["produced"])
        base = run_baseline(broker.url, "orders", n, 4, workdir=work / "baseline")
        worker = _worker_rate(broker, "orders", n, work / "worker", store)
    ratio = worker["ingest_events_per_second"] / base["events_per_second"]
    return {
        "events": n,
        "baseline": {k: base[k] for k in ("events_per_second", "startup_seconds")},
        "worker": worker,
        "store": store,
        "worker_vs_baseline": round(ratio, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m streams.bench")
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--store", default="rocksdb://")
    a = ap.parse_args()
    print(json.dumps(bench(a.events, a.store), indent=1))


if __name__ == "__main__":
    main()
