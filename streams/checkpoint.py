"""Stage snapshots in a faust table (changelog-backed), one per partition.

A snapshot is msgpack, compressed with zlib (level 1), cut into chunks of at most
``CHUNK`` bytes (a Kafka record must stay well under the 1 MB default request size) and
written to the table under keys of two alternating slots, then a header::

    "<part>"              -> header {gen, slot, chunks, bytes, crc}
    "<part>/<slot>/<i>"   -> chunk i of generation gen (slot = gen % 2)

The header is written last. The changelog of a partition is one ordered log, so a worker
killed in the middle of a checkpoint leaves the previous header, whose chunks are in the
other slot and intact; ``load`` checks the CRC and ignores a torn checkpoint.

Writes go to the changelog partition of the stage partition the snapshot belongs to
(``Collection.send_changelog`` with an explicit partition, the same partition faust picks
for ``table[key] = value`` while processing that partition's events). Explicit, because a
checkpoint is also written outside event iteration: when a partition goes quiet, and at
shutdown. faust's RocksDB store finds the partition's database through the *current event*;
``_as_partition`` scopes a stand-in event that names the partition around the write.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import msgspec
import structlog

CHUNK = 512 * 1024
# RocksDB settings of a checkpoint table. faust's defaults suit big key-value tables: per
# partition database a 64 MB memtable (up to 3) and a 2 GB block cache. A checkpoint table
# rewrites the same few keys, and every rewrite adds the snapshot's full size to the
# memtable until it is full: with the defaults each ingest partition's memtable grew by
# its snapshot size every few seconds (measured in a soak: 4 ingest memtables 108 MB after
# 5.5 minutes, tracking RSS; the plateau of the earlier 30-minute soaks at ~360 MB was
# 4 x ~64 MB of memtables). An 8 MB memtable holds a few snapshots at this scale (its flush
# writes only the latest versions); it is only read back at a restore, so the block cache
# is small too.
WRITE_BUFFER_BYTES = 8 * 2**20
BLOCK_CACHE_BYTES = 8 * 2**20

THREAD_PACK_BYTES = 1 << 20  # snapshots this big are compressed in a thread
_packer: ThreadPoolExecutor | None = None

_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder()


def table_options() -> dict[str, Any]:
    """``Table(options=...)`` for a checkpoint table (a new dict each call: faust's store
    pops keys from the one it gets). The memory store ignores it."""
    return {"write_buffer_size": WRITE_BUFFER_BYTES, "max_write_buffer_number": 2,
            "block_cache_size": BLOCK_CACHE_BYTES}  # fmt: skip


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be read back."""


class CheckpointStore:
    """Save/load snapshots of partition-keyed stage state in ``table``."""

    def __init__(self, table: Any, chunk: int = CHUNK, not_before: float = 0.0) -> None:
        self.table = table
        # checkpoints written before this wall-clock time are ignored: after the broker
        # lost data, a checkpoint written by the process that noticed it too late
        # describes logs that no longer exist (``streams.supervise``)
        self.not_before = not_before
        self.ignored: list[dict[str, Any]] = []
        self.chunk = chunk
        self.gens: dict[int, int] = {}
        self.saved_bytes = 0
        self.saves = 0
        self.sizes: dict[int, int] = {}  # partition -> bytes of its current checkpoint
        # called with each changelog write's future (``streams.sendgate.SendGate.track``)
        self.on_send: Callable[[Any, str], Any] | None = None

    def _write(self, part: int, key: str, value: bytes) -> None:
        with _as_partition(part):
            self.table.data[key] = value
        fut = self.table.send_changelog(part, key, value)
        if self.on_send is not None:
            self.on_send(fut, "checkpoint")

    @staticmethod
    def pack(snap: dict[str, Any]) -> bytes:
        """A snapshot's stored form: taken at once, so that state changing afterwards
        cannot leak into a checkpoint written later (``write``)."""
        return zlib.compress(_enc.encode(snap), 1)

    @staticmethod
    def pack_soon(snap: dict[str, Any]) -> bytes | asyncio.Future[bytes]:
        """``pack``, with a big snapshot's compression in a thread: the encoding is taken
        at once (the state goes on changing), zlib releases the GIL while it compresses
        (~0.7 s for the 35 MB of ~750k orders), and one thread keeps the order of the
        partition's checkpoints. Returns the bytes, or a future of them."""
        raw = _enc.encode(snap)
        if len(raw) < THREAD_PACK_BYTES:
            return zlib.compress(raw, 1)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (tests, tools)
            return zlib.compress(raw, 1)
        global _packer
        if _packer is None:
            _packer = ThreadPoolExecutor(1, thread_name_prefix="ordermon-pack")
        return loop.run_in_executor(_packer, zlib.compress, raw, 1)

    def save(self, part: int, snap: dict[str, Any]) -> int:
        """Write ``snap`` for partition ``part``; returns its stored size in bytes."""
        return self.write(part, self.pack(snap))

    def write(self, part: int, payload: bytes) -> int:
        """Write a ``pack``-ed snapshot for partition ``part``; returns its size."""
        gen = self.gens.get(part)
        if gen is None:
            gen = self._header(part).get("gen", 0)
        gen += 1
        slot = gen % 2
        n = max(1, -(-len(payload) // self.chunk))
        for i in range(n):
            self._write(part, f"{part}/{slot}/{i}", payload[i * self.chunk : (i + 1) * self.chunk])
        header = {"gen": gen, "slot": slot, "chunks": n, "bytes": len(payload),
                  "crc": zlib.crc32(payload), "at": time.time()}  # fmt: skip
        self._write(part, str(part), _enc.encode(header))
        self.gens[part] = gen
        self.saved_bytes += len(payload)
        self.sizes[part] = len(payload)
        self.saves += 1
        return len(payload)

    def _read(self, part: int, key: str) -> bytes | None:
        with _as_partition(part):
            return self.table.data.get(key)  # type: ignore[no-any-return]

    def _header(self, part: int) -> dict[str, Any]:
        raw = self._read(part, str(part))
        return _dec.decode(raw) if raw else {}

    def load(self, part: int) -> dict[str, Any] | None:
        """The last complete snapshot of ``part``, or None if there is none."""
        h = self._header(part)
        if not h:
            return None
        if self.not_before and h.get("at", 0.0) < self.not_before:
            self.gens[part] = h["gen"]  # numbering goes on above it
            self.ignored.append({"partition": part, "gen": h["gen"], "at": h.get("at")})
            structlog.get_logger("ordermon.stream").warning(
                "checkpoint_ignored", partition=part, gen=h["gen"], written_at=h.get("at"),
                reason="written before the restart with fresh state")  # fmt: skip
            return None
        chunks = []
        for i in range(h["chunks"]):
            c = self._read(part, f"{part}/{h['slot']}/{i}")
            if c is None:
                raise CheckpointError(
                    f"partition {part}: chunk {i} of generation {h['gen']} missing"
                )
            chunks.append(c)
        payload = b"".join(chunks)
        if len(payload) != h["bytes"] or zlib.crc32(payload) != h["crc"]:
            raise CheckpointError(f"partition {part}: generation {h['gen']} fails its CRC check")
        self.gens[part] = h["gen"]
        self.sizes[part] = h["bytes"]
        snap: dict[str, Any] = _dec.decode(zlib.decompress(payload))
        return snap

    def forget(self, part: int) -> None:
        """The partition left this worker: its generation is re-read on return."""
        self.gens.pop(part, None)
        self.sizes.pop(part, None)


class _StandIn:
    __slots__ = ("message", "__weakref__")

    def __init__(self, message: Any) -> None:
        self.message = message


@contextlib.contextmanager
def _as_partition(part: int) -> Iterator[None]:
    try:
        from faust.streams import _current_event
    except ImportError:  # no faust (unit tests with a fake table)
        yield
        return
    stand_in = _StandIn(SimpleNamespace(partition=part))
    token = _current_event.set(weakref.ref(stand_in))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)
