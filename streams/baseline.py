"""The faust baselines ``ordermon bench`` compares a stream worker against.

- ``decode`` (bare faust): one agent that only decodes and counts per publisher in a dict.
- ``table`` (plain faust windowed counting): what ordermon's windows count, per publisher
  in tumbling 5-minute event-time windows of a changelogged ``app.Table(...).tumbling(...)``
  (orders by status and invalidations by reason, one increment per valid event), re-keyed
  from order to publisher through a repartition topic, as ``group_by`` would.

Both run on the same broker in the same run as the worker. ``run_baseline`` starts a faust
worker in a subprocess (own process group, SIGKILL if the parent dies) over a pre-filled
topic; the agents decode every value with the contract decoder (``monitor.decode.decode``)
and, once ``count`` messages are decoded (and, for ``table``, every valid event among
them is counted in the table), write the result and SIGTERM their own worker, which shuts
down cleanly. The parent waits with a deadline and kills the group if it passes:
termination is deterministic either way.

Timing: ``events_per_second`` is measured inside the worker, from the first message to
the finish line above, so it excludes start-up and the group join (``startup_seconds``).

Faust settings follow ``RUNTIME-NOTES.md`` (session 10 s / heartbeat 1 s / rebalance 10 s:
a 5 s join instead of 30 s; ``topic_partitions`` = the source's; no web server: the
``worker`` CLI command forces it on, so the worker is started programmatically;
``recovery_consistency_check=False`` only for the embedded broker).

``python -m streams.baseline measure [--events 200000]`` reproduces the figure end to end:
simulate, embedded broker, prefill, baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from streams.broker import EmbeddedBroker, bootstrap_of, set_pdeathsig, stop_process_group

WINDOW_S = 300  # the table baseline's tumbling window (the monitor's default)


class BaselineError(RuntimeError):
    """The baseline worker failed or missed its deadline (it has been stopped)."""

    def __init__(self, message: str, pid: int) -> None:
        super().__init__(message)
        self.pid = pid


def _worker(a: argparse.Namespace) -> None:
    """Child process body: the faust app and its agent(s) (``--kind``)."""
    t_start = time.perf_counter()
    import faust

    app = faust.App(
        a.app_id,
        broker=";".join(f"kafka://{h}" for h in bootstrap_of(a.broker).split(",")),
        store=a.store,
        datadir=a.datadir,
        topic_partitions=a.partitions,
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        broker_rebalance_timeout=10,
        recovery_consistency_check=not a.embedded,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
    )
    topic = app.topic(
        a.topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    run = _Run(a, t_start)
    if a.kind == "table":
        _table_agents(app, topic, run)
    else:
        _decode_agent(app, topic, run)
    faust.Worker(app, loglevel="warn", redirect_stdouts=False).execute_from_commandline()


class _Run:
    """Counters and the finish line shared by a baseline's agents (one event loop)."""

    def __init__(self, a: argparse.Namespace, t_start: float) -> None:
        self.a = a
        self.t_start = t_start
        self.n = 0  # input messages decoded
        self.counts: dict[str, int] = {}  # per publisher (decode) or per table key (table)
        self.forwarded = 0  # table: events sent to the repartition topic
        self.written = 0  # table: table increments
        self.seen = {"t_first": 0.0, "cpu_first": 0.0}
        self.finished = False

    def first(self) -> None:
        self.seen.update(t_first=time.perf_counter(), cpu_first=time.process_time())

    def maybe_finish(self) -> None:
        """Done when every input message is decoded and (table) every count written."""
        if self.finished or self.n < self.a.count or self.written < self.forwarded:
            return
        self.finished = True
        _finish(self.a.result, self.n, self.seen, self.t_start, self.counts,
                {"table_writes": self.written})  # fmt: skip
        os.kill(os.getpid(), signal.SIGTERM)  # the worker stops cleanly


def _decode_agent(app: Any, topic: Any, run: _Run) -> None:
    """The bare agent: decode, count per publisher in a dict."""
    from monitor.decode import decode

    counts = run.counts

    @app.agent(topic)
    async def count(stream: Any) -> None:
        async for value in stream:
            ev = decode(value)
            pub = getattr(ev, "publisher_id", "(rejected)")
            counts[pub] = counts.get(pub, 0) + 1
            run.n += 1
            if run.n == 1:
                run.first()
            run.maybe_finish()


def _table_agents(app: Any, topic: Any, run: _Run) -> None:
    """Plain faust windowed counting of what ordermon's windows count: per publisher,
    events by status and invalidations by reason, in tumbling 5-minute event-time windows
    of a changelogged ``Table`` (one increment per valid event, as a windowed-Table
    implementation of the same per-publisher counts would do; ordermon also de-duplicates
    and tracks each order's lifecycle, which this baseline does not).

    The input is keyed by order, the table by publisher, so (as ``group_by`` does) every
    event is re-keyed through a repartition topic; only its slot (the reason, or the
    status) travels, with the event time as the record timestamp, which
    ``relative_to_stream`` windows by.
    """
    from monitor.decode import decode
    from monitor.model import OrderEvent

    repart = app.topic(
        f"{run.a.app_id}-inv-by-publisher-repartition", key_type=bytes, value_type=bytes,
        key_serializer="raw", value_serializer="raw", partitions=run.a.partitions,
        internal=True,
    )  # fmt: skip
    table = (
        app.Table("inv-by-publisher-reason", default=int, partitions=run.a.partitions,
                  key_type=str, value_type=int)
        .tumbling(WINDOW_S, expires=dt.timedelta(hours=2))
        .relative_to_stream()
    )  # fmt: skip

    @app.agent(topic)
    async def split(stream: Any) -> None:
        async for value in stream:
            ev = decode(value)
            run.n += 1
            if run.n == 1:
                run.first()
            if isinstance(ev, OrderEvent):
                slot = ev.reason.value if ev.reason is not None else ev.status.value
                run.forwarded += 1
                await repart.send(key=ev.publisher_id.encode(), value=slot.encode(),
                                  timestamp=ev.occurred_at.timestamp())  # fmt: skip
            run.maybe_finish()

    @app.agent(repart)
    async def count(stream: Any) -> None:
        async for event in stream.events():
            key = f"{event.key.decode()}|{event.value.decode()}"
            table[key] += 1
            run.counts[key] = 1
            run.written += 1
            run.maybe_finish()


def _finish(
    path: str,
    n: int,
    seen: dict[str, float],
    t_start: float,
    counts: dict[str, int],
    extra: dict[str, Any],
) -> None:
    secs = time.perf_counter() - seen["t_first"]
    cpu = time.process_time() - seen["cpu_first"]
    res = {
        "events": n,
        "seconds": round(secs, 3),
        "events_per_second": round((n - 1) / secs, 1) if secs > 0 else None,
        # CPU time of the worker process over the same span: robust to a busy machine.
        "cpu_seconds": round(cpu, 3),
        "events_per_cpu_second": round((n - 1) / cpu, 1) if cpu > 0 else None,
        "startup_seconds": round(seen["t_first"] - t_start, 3),
        "publishers": len(counts) - ("(rejected)" in counts),
        "rejected": counts.get("(rejected)", 0),
        **extra,
    }
    tmp = Path(path + ".tmp")
    tmp.write_text(json.dumps(res))
    tmp.replace(path)  # atomic: the parent never reads half a file


def run_baseline(
    broker: str,
    topic: str,
    count: int,
    partitions: int,
    *,
    embedded: bool = True,
    timeout: float = 300.0,
    workdir: str | os.PathLike[str] | None = None,
    kind: str = "decode",
    store: str = "memory://",
) -> dict[str, Any]:
    """Run the baseline worker until it has seen ``count`` messages of ``topic``.

    ``kind``: ``decode`` (decode + count per publisher in a dict) or ``table`` (the plain
    faust windowed Table: until every valid event among them is counted too; ``store``
    is that table's). ``topic`` must already hold at least ``count`` records. Returns the
    child's result (``events_per_second``, ``seconds``, ``startup_seconds``, ``publishers``
    (table: keys written), ``rejected``, ``table_writes``)
    plus ``wall_seconds``, ``exit_code``, ``pid`` and ``log``. Raises ``BaselineError``
    (with the log tail) if the worker fails or misses the deadline; either way the worker
    has been stopped and reaped on return.
    """
    work = Path(workdir or tempfile.mkdtemp(prefix="ordermon-baseline-"))
    work.mkdir(parents=True, exist_ok=True)
    result, log_path = work / "result.json", work / "worker.log"
    cmd = [
        sys.executable, "-m", "streams.baseline", "_worker",
        "--broker", broker, "--topic", topic, "--count", str(count),
        "--partitions", str(partitions), "--result", str(result),
        "--datadir", str(work / "data"), "--app-id", f"ordermon-baseline-{uuid.uuid4().hex[:8]}",
        "--kind", kind, "--store", store,
    ] + (["--embedded"] if embedded else [])  # fmt: skip
    root = Path(__file__).resolve().parents[1]
    path = [str(root), os.environ.get("PYTHONPATH", "")]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(p for p in path if p)}
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=set_pdeathsig,
        )  # fmt: skip
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        rc = None
    finally:
        stop_process_group(proc)
    wall = time.monotonic() - t0
    if not result.exists():
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        why = "timed out" if rc is None else f"exited with {rc}"
        msg = f"baseline worker (pid {proc.pid}) {why} after {wall:.1f}s; log {log_path}:\n{tail}"
        raise BaselineError(msg, proc.pid)
    out: dict[str, Any] = json.loads(result.read_text())
    out.update(wall_seconds=round(wall, 3), exit_code=rc, pid=proc.pid, log=str(log_path))
    return out


def sample_events(events: int, seed: int, work: Path) -> Path:
    """The first ``events`` lines of a simulated stream (1000 publishers), in ``work``."""
    from monitor.simulate import simulate

    days = max(0.2, events / 320_000)  # ~320 events per publisher-day with 1000 publishers
    sim = simulate(seed, work / "sim", publishers=1000, days=days * 1.2)
    src = work / "events.jsonl"
    with open(sim["events_path"], "rb") as fin, open(src, "wb") as fout:
        for i, line in enumerate(fin):
            if i == events:
                break
            fout.write(line)
    return src


def measure(events: int = 200_000, seed: int = 7, partitions: int = 4) -> dict[str, Any]:
    """Simulate ``events`` events, prefill an embedded broker, run the baseline once."""
    from streams.produce import produce_file
    from streams.topics import ensure_topics

    work = Path(tempfile.mkdtemp(prefix="ordermon-measure-"))
    src = sample_events(events, seed, work)
    with EmbeddedBroker(log_path=work / "broker.log") as broker:
        asyncio.run(ensure_topics(broker.bootstrap, {"orders": partitions}))
        prod = asyncio.run(produce_file(str(src), broker.bootstrap, "orders"))
        if prod["produced"] < events:
            raise RuntimeError(f"only {prod['produced']} events produced of {events}")
        res = run_baseline(broker.url, "orders", events, partitions, workdir=work / "baseline")
    return {"produce": prod, "baseline": res}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m streams.baseline")
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("_worker")
    for flag in ("--broker", "--topic", "--result", "--datadir", "--app-id"):
        w.add_argument(flag, required=True)
    w.add_argument("--count", type=int, required=True)
    w.add_argument("--partitions", type=int, required=True)
    w.add_argument("--embedded", action="store_true")
    w.add_argument("--kind", choices=("decode", "table"), default="decode")
    w.add_argument("--store", default="memory://")
    m = sub.add_parser("measure")
    m.add_argument("--events", type=int, default=200_000)
    m.add_argument("--seed", type=int, default=7)
    m.add_argument("--partitions", type=int, default=4)
    a = p.parse_args(argv)
    from monitor.runtime import tune_gc

    tune_gc()  # the same interpreter settings as the ordermon worker it is compared with
    if a.cmd == "_worker":
        _worker(a)
        return 0
    print(json.dumps(measure(a.events, a.seed, a.partitions), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
