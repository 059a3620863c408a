"""``ordermon demo``: the live service on a simulated stream, on this machine alone.

1. starts the embedded broker (Tansu) on a free loopback port and creates the topics;
2. simulates a labelled stream with scripted incidents (``monitor.simulate``);
3. starts one worker (``ordermon run``, memory store) and waits for ``/readyz``;
4. produces the stream paced in event time: ``--speed`` seconds of event time per second
   of wall time (default 1200: a 5-minute window every 0.25 s, 1.5 days in ~2 minutes);
5. prints alerts as the worker fires them, then, when the stream ends, the worker notices
   the silence (``stream_stall``, live only) and the demo stops.

Ctrl-C (or ``--duration``) stops the producer, the worker (SIGTERM, then SIGKILL) and the
broker, in that order: nothing it started is left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO

import msgspec

from streams.broker import EmbeddedBroker, free_port, set_pdeathsig, stop_process_group

ROOT = Path(__file__).resolve().parents[1]
_Time = msgspec.defstruct("T", [("occurred_at", str | None, None)])
_time_dec = msgspec.json.Decoder(_Time)
FUTURE_S = 900.0  # lines stamped further ahead of the paced clock are not waited for


def event_time(line: bytes) -> float | None:
    from monitor.model import parse_iso

    try:
        t = _time_dec.decode(line).occurred_at  # type: ignore[attr-defined]
        return parse_iso(t) if t else None
    except (msgspec.DecodeError, ValueError):
        return None


async def produce_paced(bootstrap: str, topic: str, lines: list[bytes], speed: float,
                        stop: threading.Event) -> int:  # fmt: skip
    """Produce ``lines`` keyed by order_id, each when the wall clock reaches its event time
    divided by ``speed`` (lines without a time go out at once)."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.partitioner import DefaultPartitioner

    from streams.produce import key_extractor

    key = key_extractor()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10,
                                partitioner=DefaultPartitioner())  # fmt: skip
    await producer.start()
    sent = 0
    try:
        t0, ts0, clock = time.monotonic(), None, None
        for line in lines:
            if stop.is_set():
                break
            ts = event_time(line)
            # pace on the stream's clock; a line stamped far ahead of it (clock skew) goes
            # out at once instead of stalling the stream
            if ts is not None and (clock is None or ts <= clock + FUTURE_S):
                clock = ts if clock is None else max(clock, ts)
                ts0 = ts if ts0 is None else ts0
                wait = t0 + (clock - ts0) / speed - time.monotonic()
                if wait > 0.02:
                    await asyncio.sleep(wait)  # pacing the stream, not synchronisation
            await producer.send(topic, line, key=key(line))
            sent += 1
    finally:
        await producer.stop()
    return sent


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
            return bool(json.loads(r.read()).get("ready"))
    except (OSError, ValueError):
        return False


def _drained(port: int) -> bool:
    """The worker has read every topic it holds to the end, with no window pending."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=1) as r:
            st = json.loads(r.read())
    except (OSError, ValueError):
        return False
    lag = sum(n for parts in st["consumer_lag"].values() for n in parts.values())
    return lag == 0 and not (st.get("detection") or {}).get("pending_windows")


def _pump(src: IO[bytes], out: IO[str], seen: list[str]) -> None:
    for raw in iter(src.readline, b""):
        line = raw.decode(errors="replace").rstrip("\n")
        seen.append(line)
        print(line, file=out, flush=True)


def run_live_demo(args: argparse.Namespace) -> int:
    from monitor.simulate import simulate

    out = sys.stdout
    speed = float(args.speed)
    publishers = args.publishers or 400
    stop = threading.Event()
    work = Path(tempfile.mkdtemp(prefix="ordermon-demo-"))
    broker = EmbeddedBroker(log_path=work / "broker.log")
    worker: subprocess.Popen[bytes] | None = None
    prev = signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    t_start = time.monotonic()
    try:
        print(f"simulating {publishers} publishers over {args.days} days (seed {args.seed}) ...",
              file=out, flush=True)  # fmt: skip
        info = simulate(args.seed, work / "sim", publishers=publishers, days=args.days)
        lines = [ln for ln in Path(info["events_path"]).read_bytes().splitlines() if ln.strip()]
        broker.start()
        from streams.topics import default_topics, ensure_topics

        asyncio.run(ensure_topics(broker.bootstrap, default_topics(4)))
        port = args.web_port or free_port()
        env = os.environ | {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
                            "ORDERMON_STREAM_STALL_MIN_S": "10",
                            "ORDERMON_STREAM_COLOR": "1" if out.isatty() else "0"}  # fmt: skip
        cmd = [
            sys.executable,
            "-m",
            "monitor.cli",
            "run",
            "--broker",
            broker.url,
            "--embedded",
            "--store",
            "memory://",
            "--web-port",
            str(port),
            "--datadir",
            str(work / "data"),
        ]
        worker = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=open(work / "worker.log", "wb"),  # noqa: SIM115 - the child owns it
            start_new_session=True, preexec_fn=set_pdeathsig,
        )  # fmt: skip
        seen: list[str] = []
        assert worker.stdout is not None
        threading.Thread(target=_pump, args=(worker.stdout, out, seen), daemon=True).start()
        page = f"http://127.0.0.1:{port}/"
        bar = "=" * (len(page) + 24)
        print(f"\n{bar}\n  live status page:  {page}\n{bar}\n", file=out, flush=True)
        print(f"broker   {broker.url}  (embedded Tansu, log {work / 'broker.log'})\n"
              f"worker   pid {worker.pid}, log {work / 'worker.log'}\n"
              f"status   http://127.0.0.1:{port}/status   health /healthz   ready /readyz\n"
              f"metrics  http://127.0.0.1:{port}/metrics   (Prometheus text format)\n"
              f"waiting for the worker to join ...", file=out, flush=True)  # fmt: skip
        deadline = time.monotonic() + 90
        while not _ready(port):
            if stop.is_set() or worker.poll() is not None or time.monotonic() > deadline:
                print("worker did not become ready; see its log", file=out)
                return 1
            stop.wait(0.2)  # polling readiness against a deadline
        hours = len(lines) and (event_time(lines[-1]) or 0) - (event_time(lines[0]) or 0)
        print(
            f"ready: streaming {len(lines):,} events at {speed:g}x event time "
            f"(~{hours / speed:.0f} s); watch it on {page}; Ctrl-C stops everything\n",
            file=out,
            flush=True,
        )
        prod = threading.Thread(
            target=lambda: asyncio.run(produce_paced(broker.bootstrap, "orders", lines, speed,
                                                     stop)), daemon=True)  # fmt: skip
        prod.start()
        end = None if args.duration is None else t_start + args.duration
        finished_at: float | None = None
        n_before = 0
        while not stop.is_set():
            if end is not None and time.monotonic() >= end:
                break
            if worker.poll() is not None:
                print("worker exited; see its log", file=out)
                return 1
            if not prod.is_alive():
                if finished_at is None:
                    finished_at = time.monotonic()
                stalled = any("stream_stall" in ln and "FIRING" in ln
                              for ln in seen[n_before:])  # fmt: skip
                if (stalled and _drained(port)) or time.monotonic() - finished_at > 120:
                    break  # the stream ended, the worker caught up and noticed the silence
            else:
                n_before = len(seen)
            stop.wait(0.2)  # the demo's own pace of checking
        stop.set()
        prod.join(10)
        incidents = json.loads(Path(info["incidents_path"]).read_text())["incidents"]
        print("\nscripted incidents (what the monitor should have found):", file=out)
        for inc in incidents:
            who = inc.get("publisher_id") or ("trap" if inc.get("trap") else "stream")
            print(f"  {inc['start'][:16].replace('T', ' ')}  {inc['kind']:<20} {who}", file=out)
        return 0
    finally:
        stop.set()
        if worker is not None:
            stop_process_group(worker, term_wait=30.0)
        broker.stop()
        signal.signal(signal.SIGINT, prev)
        print(f"stopped: worker, broker and producer (took {time.monotonic() - t_start:.0f} s)",
              file=out, flush=True)  # fmt: skip
