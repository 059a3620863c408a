"""``ordermon soak --minutes M [--rate EV_PER_S]``: a steady stream through a live worker.

Starts the embedded broker, one worker (``ordermon run``, RocksDB store, as in
production) and a producer that sends a simulated, labelled stream at a steady rate (a
token bucket on the monotonic clock). Every ``SAMPLE_S`` it reads the worker's RSS
(``/proc/PID/status``) and ``/status``; every minute it prints one line::

    [soak] minute  3/30  rss 181.2 MB  lag 12  events 90,014 (+30,002)  alerts 4 ...

and at the end a summary with the RSS of every minute and a verdict on memory.

How memory is measured: the worker's RSS is read every ``RSS_EVERY_S`` (1 s). A minute's
figure (``rss``) is the **median** of that minute's readings, printed with the minute's
**peak**; the summary gives both lists and the run's peak. The verdict is the
least-squares slope of block medians over the second half of the run (the first half holds
the warm-up: imports, the stores, state filling up to its steady size), against
``--max-slope`` MB/min; a block is a minute, shorter for runs under 12 minutes (a sixth of
the half, at least 10 s) so that a short run has enough points. Why medians: memory that
is allocated and returned within a few seconds (a checkpoint's snapshot being encoded, a
batch of records in flight) makes isolated high readings that are not growth; a median
ignores readings above it as long as they fill less than half of its block, whereas a
leak raises every reading and so the median. The peak is reported, not judged: it bounds
what the worker needs. The run fails (exit 1) on a slope above the bound, on errors in the
worker's log, on a worker restart or exit, or on a consumer lag that stays above
``--max-lag`` at the end. The simulated stream is long enough for the whole run (event
time advances ~1 day per 4 minutes at 500 ev/s: windows close and incidents fire
throughout).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

SAMPLE_S = 5.0  # lag, counters (``/status``) and a Sample
RSS_EVERY_S = 1.0  # RSS readings: per-minute medians and peaks, the verdict's blocks
MAX_BLOCK_S = 60.0
MIN_BLOCK_S = 10.0
EVENTS_PER_PUBLISHER_DAY = 380.0  # what monitor.simulate produces (measured, seed 11)


@dataclass
class Sample:
    t: float  # seconds since the stream started
    rss_mb: float
    lag: int
    events: int
    alerts: int
    windows: int
    produced: int
    orders: int | None = None  # lifecycle state: orders tracked (``/metrics``), if exported


@dataclass
class Minute:
    """One minute of RSS readings (every ``RSS_EVERY_S``), with the Sample at its end."""

    minute: int
    rss_median_mb: float
    rss_peak_mb: float
    readings: int
    sample: Sample


@dataclass
class SoakReport:
    minutes: float
    rate: float
    samples: list[Sample] = field(default_factory=list)
    per_minute: list[Minute] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)  # (t s, MB) every second
    block_s: float = MAX_BLOCK_S
    blocks: list[tuple[float, float]] = field(default_factory=list)  # (mid t s, median MB)
    rss_peak_mb: float | None = None
    errors: list[str] = field(default_factory=list)
    restarts: int = 0
    worker_exited: bool = False
    slope_mb_per_min: float | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def rss_mb(pid: int) -> float | None:
    """Resident set size of ``pid`` in MB (VmRSS), None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (x, y); None with fewer than 3 points."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def median(xs: list[float]) -> float:
    v = sorted(xs)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def block_seconds(minutes: float) -> float:
    """The verdict's block: a minute, or a sixth of the second half of a shorter run."""
    return max(MIN_BLOCK_S, min(MAX_BLOCK_S, minutes * 60 / 2 / 6))


def block_medians(readings: list[tuple[float, float]], start: float, block: float,
                  ) -> list[tuple[float, float]]:  # fmt: skip
    """(block middle, median) of ``readings`` from ``start`` on, in blocks of ``block``
    seconds; a block needs half its readings (a stalled sampler gives no point)."""
    by: dict[int, list[float]] = {}
    for t, mb in readings:
        if t >= start:
            by.setdefault(int((t - start) // block), []).append(mb)
    need = max(1, int(block / RSS_EVERY_S / 2))
    return [(start + (i + 0.5) * block, median(v)) for i, v in sorted(by.items())
            if len(v) >= need]  # fmt: skip


def log_errors(path: Path) -> list[str]:
    """ERROR lines of a worker log: structlog JSON with level error, faust's [ERROR]."""
    out: list[str] = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        if '"level": "error"' in line or "[ERROR]" in line or line.startswith("Traceback"):
            out.append(line[:300])
    return out


def simulated_stream(out: Path, events: int, seed: int, publishers: int) -> tuple[str, int]:
    """A labelled stream with at least ``events`` events (simulated once more, longer, if
    the estimate fell short). Returns (path, number of lines)."""
    from monitor.simulate import simulate

    days = max(1.0, events / (EVENTS_PER_PUBLISHER_DAY * publishers) * 1.3)
    for _ in range(3):
        info = simulate(seed, out, publishers=publishers, days=days)
        path = str(info["events_path"])
        with open(path, "rb") as fh:
            n = sum(1 for line in fh if line.strip())
        if n >= events:
            return path, n
        days *= events / max(n, 1) * 1.2
    return path, n


async def produce_steady(bootstrap: str, topic: str, path: str, rate: float,
                         stop: threading.Event, sent: list[int]) -> None:  # fmt: skip
    """Send the lines of ``path`` keyed by order_id at ``rate`` events/s until ``stop``
    (or the end of the file); ``sent[0]`` counts acknowledged sends."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.partitioner import DefaultPartitioner

    from streams.produce import TokenBucket, key_extractor

    key = key_extractor()
    bucket = TokenBucket(rate)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10,
                                partitioner=DefaultPartitioner())  # fmt: skip
    await producer.start()
    pending: list[asyncio.Future[Any]] = []
    try:
        with open(path, "rb") as fh:
            for raw in fh:
                if stop.is_set():
                    break
                line = raw.rstrip(b"\r\n")
                if not line:
                    continue
                wait = bucket.take()
                if wait > 0.005:
                    await asyncio.sleep(wait)  # pacing the stream, not synchronisation
                pending.append(await producer.send(topic, line, key=key(line)))
                if len(pending) >= 500:
                    await asyncio.gather(*pending)
                    sent[0] += len(pending)
                    pending.clear()
        if pending:
            await asyncio.gather(*pending)
            sent[0] += len(pending)
    finally:
        await producer.stop()


def _read(st: dict[str, Any] | None) -> tuple[int, int, int, int] | None:
    """(lag on every topic the worker reads, events processed, alerts sent, windows
    closed) from ``/status``, None when it is not faust's page."""
    if not st or "stages" not in st:
        return None
    lag = sum(int(n) for parts in (st.get("consumer_lag") or {}).values() for n in parts.values())
    det = st.get("detection") or {}
    return (lag, int(st["stages"]["ingest"]["messages"]), int(st["counts"]["alerts_sent"]),
            int(det.get("windows_closed", 0)))  # fmt: skip


def tracked_orders(port: int) -> int | None:
    """``ordermon_tracked_orders`` from the worker's ``/metrics``: what the state holds,
    to read the memory figures against (None if not exported)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("ordermon_tracked_orders"):
            try:
                return int(float(line.split()[-1]))
            except ValueError:
                return None
    return None


def fmt_minute(m: Minute, total: int, prev: Sample | None) -> str:
    s = m.sample
    d = s.events - (prev.events if prev else 0)
    orders = "n/a" if s.orders is None else f"{s.orders:,}"
    return (f"[soak] minute {m.minute:>3}/{total}  rss {m.rss_median_mb:7.1f} MB  "
            f"lag {s.lag:>6,}  events {s.events:>10,} (+{d:,})  alerts {s.alerts:>4}  "
            f"windows {s.windows:>6,}  produced {s.produced:>10,}  orders {orders}  "
            f"peak {m.rss_peak_mb:.1f} MB")  # fmt: skip


def judge(rep: SoakReport, max_slope: float, max_lag: int) -> None:
    """Fill ``slope_mb_per_min`` and ``problems``."""
    rep.block_s = block_seconds(rep.minutes)
    rep.blocks = block_medians(rep.rss, rep.minutes * 60 / 2, rep.block_s)
    rep.slope_mb_per_min = slope([(t / 60.0, mb) for t, mb in rep.blocks])
    rep.rss_peak_mb = max((mb for _, mb in rep.rss), default=None)
    if rep.slope_mb_per_min is None:
        rep.problems.append("too few samples to judge memory")
    elif rep.slope_mb_per_min > max_slope:
        rep.problems.append(f"memory grows {rep.slope_mb_per_min:.2f} MB/min over the second "
                            f"half (bound {max_slope:g})")  # fmt: skip
    if rep.errors:
        rep.problems.append(f"{len(rep.errors)} error lines in the worker log")
    if rep.restarts:
        rep.problems.append(f"the worker restarted {rep.restarts} times")
    if rep.worker_exited:
        rep.problems.append("the worker exited")
    if rep.samples and rep.samples[-1].lag > max_lag:
        rep.problems.append(f"consumer lag {rep.samples[-1].lag:,} at the end (bound {max_lag:,})")
    if rep.samples and rep.samples[-1].events == 0:
        rep.problems.append("no events processed")


def summary(rep: SoakReport, max_slope: float) -> list[str]:
    last = rep.samples[-1] if rep.samples else None
    lines = []
    if last is not None:
        lines.append(f"[soak] summary: {rep.minutes:g} min at {rep.rate:g} ev/s: produced "
                     f"{last.produced:,}, processed {last.events:,}, alerts {last.alerts}, "
                     f"windows {last.windows:,}, errors {len(rep.errors)}, restarts "
                     f"{rep.restarts}")  # fmt: skip
        lines.append("[soak] rss MB per minute (median of the minute's readings): "
                     + " ".join(f"{m.rss_median_mb:.1f}" for m in rep.per_minute))  # fmt: skip
        lines.append("[soak] rss MB per minute (peak): "
                     + " ".join(f"{m.rss_peak_mb:.1f}" for m in rep.per_minute))  # fmt: skip
        lines.append(f"[soak] rss peak {rep.rss_peak_mb or 0:.1f} MB; {len(rep.rss):,} readings"
                     f" (every {RSS_EVERY_S:g} s)")  # fmt: skip
        lags = [s.lag for s in rep.samples]
        lines.append(f"[soak] lag: max {max(lags):,}, at the end {last.lag:,}")
    sl = rep.slope_mb_per_min
    flat = sl is not None and sl <= max_slope
    lines.append(
        f"[soak] memory: second-half slope of {len(rep.blocks)} {rep.block_s:g}-s block "
        f"medians {'n/a' if sl is None else f'{sl:+.2f}'} MB/min (bound {max_slope:g}): "
        f"{'FLAT' if flat else 'NOT FLAT'}"
    )
    for e in rep.errors[:5]:
        lines.append(f"[soak] error: {e}")
    lines.append(f"[soak] verdict: {'PASS' if rep.ok else 'FAIL'}"
                 + ("" if rep.ok else " (" + "; ".join(rep.problems) + ")"))  # fmt: skip
    return lines


def run_soak(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    """The ``ordermon soak`` command; 0 when the verdict passes."""
    from streams.broker import EmbeddedBroker
    from streams.procs import WorkerProc, write_config
    from streams.topics import ensure_topics

    out = out or sys.stdout
    minutes, rate = float(args.minutes), float(args.rate)
    if minutes <= 0 or rate <= 0:
        print("ordermon soak: --minutes and --rate must be > 0", file=sys.stderr)
        return 2
    work = Path(args.workdir or tempfile.mkdtemp(prefix="ordermon-soak-"))
    work.mkdir(parents=True, exist_ok=True)

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    need = int(minutes * 60 * rate * 1.05) + 1000
    say(f"[soak] simulating >= {need:,} events ({args.publishers} publishers, seed "
        f"{args.seed}) in {work} ...")  # fmt: skip
    path, n = simulated_stream(work / "sim", need, args.seed, args.publishers)
    rep = SoakReport(minutes, rate)
    broker = EmbeddedBroker(log_path=work / "broker.log")
    stop = threading.Event()
    sent = [0]
    prod: threading.Thread | None = None
    w: WorkerProc | None = None
    try:
        broker.start()
        P = args.partitions
        asyncio.run(ensure_topics(broker.bootstrap, {"orders": P}))
        cfg = write_config(work / "ordermon.toml", partitions=P, idle_after_s=5.0,
                           console=False)  # fmt: skip
        if args.max_tracked_orders:  # per ingest partition: memory reaches its steady size
            with cfg.open("a") as fh:
                fh.write(f"\n[monitor]\nmax_tracked_orders = {int(args.max_tracked_orders)}\n")
        w = WorkerProc(broker.url, cfg, work, "worker").start()
        w.wait_for(lambda st: st["ready"], 120, "the worker's readiness")
        pid = w.proc.pid if w.proc else 0
        say(f"[soak] broker {broker.url}, worker pid {pid} (log {w.log_path}), {n:,} events "
            f"ready; streaming at {rate:g} ev/s for {minutes:g} min")  # fmt: skip
        prod = threading.Thread(target=lambda: asyncio.run(produce_steady(
            broker.bootstrap, "orders", path, rate, stop, sent)), daemon=True)  # fmt: skip
        t0 = time.monotonic()
        prod.start()
        _sample_loop(rep, w, pid, t0, sent, say)
    except KeyboardInterrupt:
        say("[soak] interrupted")
    finally:
        stop.set()
        if prod is not None:
            prod.join(15)
        if w is not None:
            code = w.terminate()
            if code not in (0, None) and not rep.worker_exited:
                rep.errors.append(f"worker exit code {code} at the end")
            rep.errors += log_errors(w.log_path)
            rep.restarts = w.log_path.read_text(errors="replace").count('"worker_restarted"')
        broker.stop()
    judge(rep, args.max_slope, args.max_lag)
    for line in summary(rep, args.max_slope):
        say(line)
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(rep), indent=1) + "\n")
    return 0 if rep.ok else 1


def _sample_loop(rep: SoakReport, w: Any, pid: int, t0: float, sent: list[int],
                 say: Any) -> None:  # fmt: skip
    """Read RSS every ``RSS_EVERY_S``, take a Sample every ``SAMPLE_S``, close a minute
    (median and peak of its readings, a printed line) every 60 s, until the run's end."""
    total = max(1, round(rep.minutes))
    end = t0 + rep.minutes * 60
    minute = 1
    nxt = t0 + RSS_EVERY_S
    nxt_sample = t0 + SAMPLE_S
    last: tuple[int, int, int, int] = (0, 0, 0, 0)
    this_minute: list[float] = []
    while True:
        now = time.monotonic()
        if now < nxt:
            time.sleep(min(nxt - now, 1.0))  # the sampling period, not synchronisation
            continue
        nxt += RSS_EVERY_S
        if not w.running or (mem := rss_mb(pid)) is None:
            rep.worker_exited = True
            say(f"[soak] the worker exited; log:\n{w.log_tail()}")
            return
        rep.rss.append((round(now - t0, 1), round(mem, 1)))
        this_minute.append(mem)
        closing = now >= t0 + minute * 60 - 0.5 or now >= end
        if not (now >= nxt_sample - 0.5 or closing):
            continue
        nxt_sample += SAMPLE_S
        got = _read(w.status())
        last = got or last  # the stand-in page (a restart) carries no counters
        s = Sample(round(now - t0, 1), round(mem, 1), *last, sent[0])
        rep.samples.append(s)
        if closing:
            s.orders = tracked_orders(w.port)
            prev = rep.per_minute[-1].sample if rep.per_minute else None
            m = Minute(minute, round(median(this_minute), 1), round(max(this_minute), 1),
                       len(this_minute), s)  # fmt: skip
            rep.per_minute.append(m)
            say(fmt_minute(m, total, prev))
            this_minute = []
            minute += 1
        if now >= end:
            return


def add_parser(sub: Any) -> None:
    """``ordermon soak`` (called from ``monitor.cli``)."""
    p = sub.add_parser("soak", help="a steady simulated stream through a live worker; reports "
                       "memory, lag and alert counts every minute")  # fmt: skip
    p.add_argument("--minutes", type=float, required=True, help="how long to stream")
    p.add_argument("--rate", type=float, default=500.0, help="events per second (default 500)")
    p.add_argument("--publishers", type=int, default=300, help="simulated publishers")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument(
        "--max-slope",
        type=float,
        default=1.0,
        help="memory verdict: least-squares slope, over the second half, of the medians "
        "of RSS read every second in 1-minute blocks (shorter in runs under 12 min), "
        "MB/min (default 1). Each minute's median and peak are printed",
    )
    p.add_argument(
        "--max-lag",
        type=int,
        default=10_000,
        help="consumer lag allowed at the end (default 10,000)",
    )
    p.add_argument(
        "--max-tracked-orders",
        type=int,
        default=0,
        help="[monitor] max_tracked_orders for the worker (per input partition; default: "
        "the production default). Orders otherwise stay for 45 days of event time, which "
        "a soak at 500 ev/s covers in ~3 hours: a cap shows memory at its steady size",
    )
    p.add_argument("--workdir", help="keep the broker/worker logs and data here")
    p.add_argument("--json", help="write every sample and the verdict to this file")
    p.set_defaults(func=lambda a: run_soak(a))
