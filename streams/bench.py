"""The stream sections of ``ordermon bench``: one worker against faust, on one broker.

``stream_bench`` starts the embedded broker, fills a 4-partition topic with generated
events (``monitor.benchdata``: orders with lifecycles, invalidations and a fraud burst
every 2 windows, so alerts fire), then, in this order and in the same run:

1. ``bare``: the bare faust agent (decode + count per publisher; ``streams.baseline``);
2. ``table``: plain faust windowed counting of the same per-publisher counts (events by
   status, invalidations by reason; tumbling 5-minute windows, changelogged ``Table``;
   ``streams.baseline``);
3. ``worker``: one ``ordermon run`` worker (subprocess, ``streams.procs.WorkerProc``) over
   the same topic, timed from the first message ingested to the last window the
   prefilled data can close (detection's ``closed_through`` in ``/status``, polled every
   0.1 s); its capacity is that rate;
4. ``latency``: the same worker, now fed by this process at a steady 50% of that capacity
   for a fixed time (the stream continues where the prefill ended), with the alerts
   topic consumed here. Latency of an alert record = its arrival here minus the wall time
   at which this process sent the event that let the watermark pass the end of the window
   whose close emitted the record: the first event after which every input partition's
   event-time clock (largest event time sent to it) is >= window end + lateness. That
   window is the one ending at ``floor(detected_at / 300) * 300`` (for a firing record
   its ``window_end``; a resolved record names its first window, so ``detected_at`` is
   used for both). Both instants are this process's monotonic clock;
5. ``recovery``: the worker is SIGKILLed, a small probe batch is produced, the worker is
   restarted with the same data dir and group; seconds from restart to ``/readyz`` 200
   (tables restored, partitions held) and to the probe batch processed (ingest offsets at
   the end of every input partition).

``python -m streams.bench [--events N] [--store rocksdb://|memory://]`` prints the raw
figures as JSON; ``ordermon bench`` formats them with targets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.benchdata import Synth, generate
from monitor.pipeline import MonitorParams
from streams.baseline import run_baseline
from streams.broker import EmbeddedBroker
from streams.procs import WorkerProc, write_config
from streams.tasks import partition_for

PARTITIONS = 4
TOPIC = "orders"
PROBE_EVENTS = 2_000
PER_WINDOW = 1500.0  # events per 5-minute window (~ the simulator's 1,000 publishers)
SPIKE_EVERY = 2  # windows between fraud bursts: alerts for the latency measurement
MAX_OFFERED = 15_000.0  # events/s: sizes the generated continuation


@dataclass
class Feed:
    """What this process has produced: records and event-time clock per partition."""

    partitions: int
    counts: list[int] = field(default_factory=list)
    clocks: list[float] = field(default_factory=list)
    sent: int = 0  # lines of the synth stream sent so far

    def __post_init__(self) -> None:
        self.counts = [0] * self.partitions
        self.clocks = [-math.inf] * self.partitions

    def route(self, key: bytes, ts: float) -> int:
        """The partition of a line (murmur2 of its key, as produce does), counted."""
        p = partition_for(key, self.partitions) if key else self.sent % self.partitions
        self.counts[p] += 1
        if ts == ts and ts > self.clocks[p]:  # NaN: a malformed line moves no clock
            self.clocks[p] = ts
        self.sent += 1
        return p

    def watermark(self, lateness: float) -> float:
        return min(self.clocks) - lateness


async def _producer(bootstrap: str, linger_ms: int) -> Any:
    from aiokafka import AIOKafkaProducer

    prod = AIOKafkaProducer(bootstrap_servers=bootstrap, client_id="ordermon-bench", acks="all",
                            linger_ms=linger_ms, max_batch_size=256 * 1024)  # fmt: skip
    await prod.start()
    return prod


async def produce(bootstrap: str, synth: Synth, feed: Feed, n: int) -> float:
    """Send the next ``n`` lines as fast as possible; return the seconds it took."""
    prod = await _producer(bootstrap, 20)
    t0 = time.monotonic()
    pending: list[asyncio.Future[Any]] = []
    try:
        for i in range(feed.sent, min(feed.sent + n, len(synth.lines))):
            p = feed.route(synth.keys[i], synth.ts[i])
            pending.append(await prod.send(TOPIC, synth.lines[i], key=synth.keys[i] or None,
                                           partition=p))  # fmt: skip
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await prod.stop()
    return time.monotonic() - t0


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (Linux), to report events per CPU second."""
    import os

    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def last_closable(feed: Feed, params: MonitorParams) -> int:
    """Index of the last window the data sent so far lets the watermark close."""
    return int(feed.watermark(params.lateness_s) // params.window_s) - 1


def worker_throughput(w: WorkerProc, target: int, n: int, timeout: float) -> dict[str, Any]:
    """Poll ``/status`` every 0.1 s from start until detection closed window ``target``."""
    t0 = time.monotonic()
    first: tuple[float, int, float | None] | None = None
    t_last = None
    while True:
        if not w.running:
            raise RuntimeError(f"worker exited during the throughput run; log:\n{w.log_tail()}")
        now = time.monotonic()
        if now - t0 > timeout:
            raise RuntimeError(f"worker did not close window {target} in {timeout}s; "
                               f"last status {json.dumps(w.status())[:800]}")  # fmt: skip
        st = _faust_status(w)
        if st:
            got = st["stages"]["ingest"]["messages"]
            if got and first is None:
                first = (now, got, _cpu_seconds(w.proc.pid))  # type: ignore[union-attr]
            if got >= n and t_last is None:
                t_last = now
            det = st.get("detection") or {}
            if first and det.get("closed_through", -1) >= target:
                break
        time.sleep(0.1)  # the measurement's sampling interval, not synchronisation
    tf, n0, cpu0 = first
    cpu1 = _cpu_seconds(w.proc.pid)  # type: ignore[union-attr]
    done = n - n0
    cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
    return {
        "events": n,
        "eps": round(done / (now - tf), 1),
        "ingest_eps": round(done / ((t_last or now) - tf), 1),
        "cpu_eps": round(done / cpu, 1) if cpu else None,
        "startup_seconds": round(tf - t0, 1),
    }


async def offered_run(
    bootstrap: str, synth: Synth, feed: Feed, rate: float, duration: float, alerts_topic: str,
    params: MonitorParams, closed_through: Callable[[], int],
) -> dict[str, Any]:  # fmt: skip
    """Produce at ``rate`` events/s for ``duration`` s while consuming the alerts topic;
    return the latency figures (definition in the module docstring)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from streams.produce import TokenBucket

    W, late = params.window_s, params.lateness_s
    closes: dict[int, float] = {}  # window end (epoch s) -> wall time the watermark passed it
    nxt = (int(feed.watermark(late) // W) + 1) * W
    arrivals: list[tuple[float, bytes]] = []
    cons = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                            fetch_max_wait_ms=10)  # fmt: skip
    await cons.start()
    tp = TopicPartition(alerts_topic, 0)
    cons.assign([tp])
    await cons.seek_to_beginning(tp)
    stop = asyncio.Event()

    async def consume() -> None:
        while not stop.is_set():
            batch = await cons.getmany(tp, timeout_ms=20)
            now = time.monotonic()
            arrivals.extend((now, r.value) for recs in batch.values() for r in recs)

    reader = asyncio.create_task(consume())
    prod = await _producer(bootstrap, 5)
    bucket = TokenBucket(rate, burst=max(1.0, rate / 100))
    t0 = time.monotonic()
    sent0 = feed.sent
    pending: list[asyncio.Future[Any]] = []
    try:
        while feed.sent < len(synth.lines) and time.monotonic() - t0 < duration:
            if (wait := bucket.take()) > 0.002:
                await asyncio.sleep(wait)  # the offered rate, not synchronisation
            i = feed.sent
            p = feed.route(synth.keys[i], synth.ts[i])
            pending.append(await prod.send(TOPIC, synth.lines[i], key=synth.keys[i] or None,
                                           partition=p))  # fmt: skip
            if feed.clocks[p] - late >= nxt:
                now, wm = time.monotonic(), feed.watermark(late)
                while nxt <= wm:
                    closes[nxt] = now
                    nxt += W
        failed = [r for r in await asyncio.gather(*pending, return_exceptions=True)
                  if isinstance(r, BaseException)]  # fmt: skip
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(pending)} sends failed: {failed[0]!r}")
        sent_s = time.monotonic() - t0
        target = last_closable(feed, params)
        t_end = time.monotonic()
        while await asyncio.to_thread(closed_through) < target:
            if time.monotonic() > t_end + 300:
                raise RuntimeError(f"the worker did not close window {target} within 300 s")
            await asyncio.sleep(0.1)  # polling the worker against a deadline
        catchup_s = time.monotonic() - t_end  # > a few s: the worker fell behind the rate
        await asyncio.sleep(2.0)  # records already sent by detection are still arriving
    finally:
        stop.set()
        await reader
        await prod.stop()
        await cons.stop()
    return _latencies(arrivals, closes, W) | {
        "offered_eps": round(rate, 1),
        "achieved_eps": round((feed.sent - sent0) / sent_s, 1),
        "seconds": round(sent_s, 1),
        "catchup_s": round(catchup_s, 1),
    }


def _latencies(arrivals: list[tuple[float, bytes]], closes: dict[int, float], W: int
               ) -> dict[str, Any]:  # fmt: skip
    from monitor.model import parse_iso

    lat: list[float] = []
    other = mismatch = 0
    for t_arr, value in arrivals:
        rec = json.loads(value)
        e = int(parse_iso(rec["detected_at"]) // W) * W
        if rec["status"] == "firing" and int(parse_iso(rec["window_end"])) != e:
            mismatch += 1
        if e not in closes:
            other += 1  # a window closed before this run (the prefill's alerts)
            continue
        lat.append(t_arr - closes[e])
    lat.sort()

    def q(x: float) -> float | None:
        return round(lat[min(len(lat) - 1, math.ceil(x * len(lat)) - 1)], 3) if lat else None

    return {"records": len(lat), "records_earlier": other, "window_mismatch": mismatch,
            "p50_s": q(0.5), "p99_s": q(0.99), "max_s": q(1.0),
            "min_s": round(lat[0], 3) if lat else None}  # fmt: skip


def _faust_status(w: WorkerProc) -> dict[str, Any] | None:
    """The worker's ``/status`` from faust (a stand-in page without ``stages`` may answer
    while faust is not running: None then)."""
    st = w.status()
    return st if st and "stages" in st else None


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def recovery(w: WorkerProc, bootstrap: str, synth: Synth, feed: Feed, timeout: float = 180.0
             ) -> dict[str, Any]:  # fmt: skip
    """SIGKILL, produce a probe batch, restart; seconds to ready and to the probe processed."""
    w.kill()
    asyncio.run(produce(bootstrap, synth, feed, PROBE_EVENTS))
    ends = {p: c - 1 for p, c in enumerate(feed.counts)}
    t0 = time.monotonic()
    w.start()
    t_ready = t_done = None
    st: dict[str, Any] | None = None
    while t_done is None:
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"restarted worker not caught up in {timeout}s; status "
                               f"{json.dumps(st)[:800]}\n{w.log_tail()}")  # fmt: skip
        if not w.running:
            raise RuntimeError(f"restarted worker exited; log:\n{w.log_tail()}")
        if t_ready is None and _ready(w.port):
            t_ready = time.monotonic()
        st = _faust_status(w) if t_ready is not None else None
        if st:
            offs = st["stages"]["ingest"]["offsets"]
            done = [offs.get(str(p), offs.get(p)) for p in ends]
            if all(o is not None and o >= e for o, e in zip(done, ends.values(), strict=True)):
                t_done = time.monotonic()
        time.sleep(0.05)  # polling the restarted worker against the deadline
    return {
        "ready_s": round(t_ready - t0, 2),  # type: ignore[operator]
        "resumed_s": round(t_done - t0, 2),
        "probe_events": PROBE_EVENTS,
        "skipped_replayed": (st or {}).get("ingest", {}).get("skipped_replayed"),
    }


def stream_bench(
    events: int = 200_000, publishers: int = 1000, seed: int = 7, latency_s: float = 60.0,
    store: str = "rocksdb://", sections: tuple[str, ...] = ("stream", "recovery"),
    log: Callable[[str], None] = print,
) -> dict[str, Any]:  # fmt: skip
    """Run the stream sections; raw figures by section (see the module docstring)."""
    params = MonitorParams()
    extra = int(MAX_OFFERED / 2 * latency_s) if "stream" in sections else 0
    synth = generate(events + extra + 2 * PROBE_EVENTS, publishers, seed, per_window=PER_WINDOW,
                     spike_every=SPIKE_EVERY)  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="ordermon-bench-"))
    try:
        out = _run(work, synth, events, latency_s, store, sections, params, log)
    except Exception as exc:  # the logs stay for a look
        raise RuntimeError(f"{exc}\n(broker and worker logs in {work})") from exc
    shutil.rmtree(work, ignore_errors=True)  # broker log, table data: hundreds of MB
    return out


def _run(work: Path, synth: Synth, events: int, latency_s: float, store: str,
         sections: tuple[str, ...], params: MonitorParams, log: Callable[[str], None],
         ) -> dict[str, Any]:  # fmt: skip
    feed = Feed(PARTITIONS)
    out: dict[str, Any] = {"events": events, "publishers": synth.publishers}
    with EmbeddedBroker(log_path=work / "broker.log") as broker:
        from streams.topics import ensure_topics

        asyncio.run(ensure_topics(broker.bootstrap, {TOPIC: PARTITIONS}))
        prefill_s = asyncio.run(produce(broker.bootstrap, synth, feed, events))
        log(f"  prefilled {events:,} events in {prefill_s:.1f} s")
        if "stream" in sections:
            out["bare"] = run_baseline(broker.url, TOPIC, events, PARTITIONS,
                                       workdir=work / "bare", timeout=600)  # fmt: skip
            log(f"  bare faust: {out['bare']['events_per_second']:,.0f} ev/s")
            out["table"] = run_baseline(
                broker.url, TOPIC, events, PARTITIONS, kind="table", store=store,
                workdir=work / "table", timeout=900,
            )  # fmt: skip
            log(f"  faust windowed Table: {out['table']['events_per_second']:,.0f} ev/s")
        cfg = write_config(work / "bench.toml", input_topic=TOPIC, app_id="om-bench",
                           dlq_topic=TOPIC + ".dlq", alerts_topic=TOPIC + ".alerts",
                           store=store, partitions=PARTITIONS)  # fmt: skip
        w = WorkerProc(broker.url, cfg, work / "worker", "bench").start()
        try:
            out["worker"] = worker_throughput(w, last_closable(feed, params), events, 900)
            log(f"  worker: {out['worker']['eps']:,.0f} ev/s")
            if "stream" in sections:
                rate = out["worker"]["eps"] / 2

                def closed() -> int:
                    st = _faust_status(w) or {}
                    return int((st.get("detection") or {}).get("closed_through", -1))

                out["latency"] = asyncio.run(offered_run(
                    broker.bootstrap, synth, feed, rate, latency_s, TOPIC + ".alerts", params,
                    closed))  # fmt: skip
                log(f"  latency: {out['latency']['records']} alert records")
            if "recovery" in sections:
                out["recovery"] = recovery(w, broker.bootstrap, synth, feed)
        finally:
            out["worker_exit"] = w.terminate()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m streams.bench")
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--publishers", type=int, default=1000)
    ap.add_argument("--latency-seconds", type=float, default=60.0)
    ap.add_argument("--store", default="rocksdb://")
    a = ap.parse_args()
    res = stream_bench(a.events, a.publishers, latency_s=a.latency_seconds, store=a.store)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
