"""Memory diagnostics of a worker, off unless ``ORDERMON_TRACEMALLOC=PATH`` is set.

A soak tells *that* RSS moves; this tells *what* moves. With the variable set, every
``ORDERMON_TRACEMALLOC_EVERY_S`` seconds (default 60) the worker appends one JSON line to
PATH: RSS, glibc's heap figures (``mallinfo2``: in use, free inside the heap, mmapped),
RocksDB's memtable, block-cache and table-reader sizes per stage (the checkpoint tables),
and the sizes of the worker's own growing-by-time structures and of faust's consumer
bookkeeping. That part costs ~10 ms a minute. ``ORDERMON_TRACEMALLOC_FRAMES=N`` (N > 0)
also starts ``tracemalloc`` with N frames and adds the bytes Python has traced and the top
allocation sites that grew since the previous line and since the first one: costly (every
allocation is recorded; with 6 frames a worker fell to a third of 500 events/s and a
snapshot took 10 s), for diagnosis only. Python-traced memory flat while RSS climbs points
at the allocator or native code (RocksDB), not at a Python leak.

``tune_malloc`` (always on, called by every worker) is the allocator setting these
figures led to.
"""

from __future__ import annotations

import ctypes
import json
import os
import time
import tracemalloc
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENV = "ORDERMON_TRACEMALLOC"


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                               "usmblks", "fsmblks", "uordblks", "fordblks",
                                               "keepcost")]  # fmt: skip


def mallinfo() -> dict[str, float] | None:
    """glibc's main-arena-and-all-arenas totals in MB (None off glibc or before 2.33)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _MallInfo2
    m = fn()
    mb = 1024.0 * 1024.0
    return {"heap_mb": round(m.arena / mb, 1), "in_use_mb": round(m.uordblks / mb, 1),
            "free_in_heap_mb": round(m.fordblks / mb, 1), "mmapped_mb": round(m.hblkhd / mb, 1),
            "mmapped_chunks": m.hblks, "top_pad_mb": round(m.keepcost / mb, 1)}  # fmt: skip


M_MMAP_THRESHOLD = -3  # mallopt(3) parameter number in glibc's malloc.h
MMAP_THRESHOLD_ENV = "ORDERMON_MALLOC_MMAP_THRESHOLD"
MMAP_THRESHOLD = 512 * 1024


def tune_malloc(env: Mapping[str, str] | None = None) -> int | None:
    """Fix glibc's mmap threshold at 512 KiB (``ORDERMON_MALLOC_MMAP_THRESHOLD`` bytes; 0
    leaves glibc alone, as does a ``MALLOC_MMAP_THRESHOLD_`` already set). Returns the
    threshold set, None if none was.

    Why: glibc raises its threshold dynamically (up to 32 MB) after a large block is freed,
    from then on serving large blocks from the heap. RocksDB's memtables are 1 MB arena
    blocks (write buffer / 8) allocated and freed at every flush, and a checkpoint encodes
    MBs of snapshot; in the heap they leave free holes that are not returned to the
    system, so RSS crept up with the heap's free space (soak: free in heap 15 -> 44 MB in
    5 minutes after the state's plateau, RSS +2.5 MB/min). Above a fixed threshold such
    blocks are mmapped and unmapped on free (measured: heap flat at 42 MB, free in it
    6-9 MB). The cost is an mmap/munmap per large block: a few per checkpoint."""
    if env is None:
        env = os.environ
    if "MALLOC_MMAP_THRESHOLD_" in env:
        return None
    try:
        value = int(env.get(MMAP_THRESHOLD_ENV, str(MMAP_THRESHOLD)))
    except ValueError:
        raise ValueError(f"{MMAP_THRESHOLD_ENV} must be a number of bytes") from None
    if value <= 0:
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(value))
    except (OSError, AttributeError):  # not glibc
        return None
    return value if ok == 1 else None


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def _len(obj: Any) -> int | None:
    try:
        return len(obj)
    except TypeError:
        return None


def structure_sizes(sa: Any) -> dict[str, Any]:
    """Lengths of what could grow with time in the worker and in faust's consumer."""
    out: dict[str, Any] = {
        "idle_sent": len(sa.idle_sent), "delivered": len(sa.delivered),
        "last_flush": len(sa.last_flush), "last_arrival": len(sa.live.last_arrival),
    }  # fmt: skip
    for r in (sa.ingest, sa.windowing, sa.detection):
        out[f"{r.stage}.restores"] = len(r.restores)
        out[f"{r.stage}.held"] = r.unacked()
        out[f"{r.stage}.tasks"] = len(r.tasks)
    stall = sa.live.stall
    for name in ("gaps", "_gaps", "arrivals", "_arrivals", "history"):
        if hasattr(stall, name):
            out[f"stall.{name}"] = _len(getattr(stall, name))
    try:
        c = sa.app.consumer
        out["consumer.acked"] = sum(len(v) for v in c._acked.values())
        out["consumer.acked_index"] = sum(len(v) for v in c._acked_index.values())
        out["consumer.gap_intervals"] = sum(len(v) for v in c._gap.values())
        out["consumer.unacked_messages"] = len(c._unacked_messages)
    except Exception:  # noqa: BLE001 - diagnostics only; the consumer may not be up yet
        pass
    for r in (sa.ingest, sa.windowing, sa.detection):
        mem = rocksdb_memory(r.store.table)
        if mem is not None:
            out[f"{r.stage}.rocksdb_mb"] = mem
    try:
        buf = sa.app.producer.buffer
        out["producer.buffer"] = buf.size if hasattr(buf, "size") else _len(buf.pending)
    except Exception:  # noqa: BLE001
        pass
    return out


ROCKSDB_PROPS = {"memtables": "rocksdb.cur-size-all-mem-tables",
                 "block_cache": "rocksdb.block-cache-usage",
                 "table_readers": "rocksdb.estimate-table-readers-mem"}  # fmt: skip


def rocksdb_memory(table: Any) -> dict[str, float] | None:
    """Memtables, block cache and table readers of a table's RocksDB databases (one per
    partition), in MB summed over them; None for another store."""
    dbs = getattr(getattr(table, "_data", None), "_dbs", None)
    if not dbs:
        return None
    out = dict.fromkeys(ROCKSDB_PROPS, 0.0)
    for db in list(dbs.values()):
        for name, prop in ROCKSDB_PROPS.items():
            try:
                v = db.property_int_value(prop) or 0
            except Exception:  # noqa: BLE001 - python-rocksdb has no such call
                return None
            out[name] += v / 2**20
    return {k: round(v, 2) for k, v in out.items()}


class MemProbe:
    def __init__(self, sa: Any, path: str, frames: int, top: int = 25) -> None:
        self.sa = sa
        self.path = Path(path)
        self.top = top
        self.first: tracemalloc.Snapshot | None = None
        self.prev: tracemalloc.Snapshot | None = None
        self.t0 = time.monotonic()
        self.frames = frames
        if frames > 0:
            tracemalloc.start(frames)

    def _snapshot(self) -> tracemalloc.Snapshot:
        snap = tracemalloc.take_snapshot()
        return snap.filter_traces(
            [
                tracemalloc.Filter(False, tracemalloc.__file__),
                tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
            ]
        )

    def _top(self, snap: tracemalloc.Snapshot, base: tracemalloc.Snapshot) -> list[str]:
        stats = snap.compare_to(base, "traceback")
        out = []
        for st in stats[: self.top]:
            frames = " <- ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}"
                                 for f in st.traceback[:4])  # fmt: skip
            out.append(f"{st.size_diff / 1024:+.0f} KiB ({st.count_diff:+d}) "
                       f"now {st.size / 1024:.0f} KiB: {frames}")  # fmt: skip
        return out

    async def tick(self) -> None:
        t = time.monotonic()
        rec: dict[str, Any] = {"t": round(t - self.t0, 1), "rss_mb": round(rss_mb(), 1),
                               "malloc": mallinfo(), "sizes": structure_sizes(self.sa)}  # fmt: skip
        if self.frames > 0:
            self._traced(rec)
        rec["probe_s"] = round(time.monotonic() - t, 2)
        with self.path.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")

    def _traced(self, rec: dict[str, Any]) -> None:
        snap = self._snapshot()
        cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        rec["traced_mb"] = round(cur / 2**20, 1)
        rec["traced_peak_mb"] = round(peak / 2**20, 1)
        if self.prev is not None:
            rec["top_since_prev"] = self._top(snap, self.prev)
        if self.first is not None:
            rec["top_since_first"] = self._top(snap, self.first)
        else:
            self.first = snap
        self.prev = snap


def install(sa: Any) -> MemProbe | None:
    """Start the probe on ``sa``'s faust app when ``ORDERMON_TRACEMALLOC`` is set."""
    path = os.environ.get(ENV)
    if not path:
        return None
    probe = MemProbe(sa, path, int(os.environ.get(f"{ENV}_FRAMES", "0")))
    every = float(os.environ.get(f"{ENV}_EVERY_S", "60"))
    sa.app.timer(every, name="ordermon-memprobe")(probe.tick)
    return probe
