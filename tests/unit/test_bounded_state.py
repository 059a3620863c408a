"""Worker bookkeeping that grows with time must stay bounded (the soak's memory verdict).

A real ``StreamApp`` (memory store; faust connects nothing until it starts)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import streams.app
from monitor.model import Alert
from monitor.pipeline import MonitorParams
from streams.checkpoint import BLOCK_CACHE_BYTES, WRITE_BUFFER_BYTES, table_options
from streams.settings import StreamSettings


def _alert(n: int) -> Alert:
    return Alert(alert_id=f"om-{n}", kind="publisher_spike", category="publisher",
                 status="firing", severity="critical", publisher_id="pub-9", reason="fraud",
                 window_start="2026-11-02T00:05:00Z", window_end="2026-11-02T00:10:00Z",
                 detected_at="2026-11-02T00:10:00Z", summary="s",
                 evidence={"observed": 9, "expected": 1.0, "score": 7.5})  # fmt: skip


def test_console_dedup_keys_are_bounded_and_still_catch_recent_repeats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(streams.app, "DELIVERED_KEEP", 3)
    printed: list[str] = []
    s = StreamSettings(app_id="om-unit", store="memory://", web_port=0, console=False)
    sa = streams.app.StreamApp(s, MonitorParams(), 2, out=io.StringIO(),
                               on_alert=lambda a: printed.append(a.alert_id))  # fmt: skip
    for n in range(10):
        sa.deliver(_alert(n))
    assert len(sa.delivered) == 3 and len(printed) == 10
    sa.deliver(_alert(9))  # a replayed recent record: not printed again
    assert sa.counts["alerts_repeated"] == 1 and len(printed) == 10


def test_checkpoint_tables_open_rocksdb_with_small_buffers(tmp_path: Path) -> None:
    """faust's RocksDB defaults (64 MB memtables, 2 GB block cache per partition database)
    let every ingest partition's memtable fill up with rewritten snapshots (+270 MB RSS in
    a soak); the checkpoint tables' stores must get ``table_options``."""
    s = StreamSettings(app_id="om-unit", store="rocksdb://", datadir=str(tmp_path),
                       web_port=0, console=False)  # fmt: skip
    sa = streams.app.StreamApp(s, MonitorParams(), 2, out=io.StringIO())
    for runner in (sa.ingest, sa.windowing, sa.detection):
        opts = runner.store.table.data.rocksdb_options
        assert opts.write_buffer_size == WRITE_BUFFER_BYTES < 64 * 2**20
        assert opts.block_cache_size == BLOCK_CACHE_BYTES < 2 * 2**30
        assert opts.max_write_buffer_number == 2
    assert table_options() is not table_options()  # faust's store pops keys from it


def test_malloc_tuning_follows_its_settings() -> None:
    """The worker fixes glibc's mmap threshold (large freed blocks go back to the system)
    unless told not to, or unless glibc's own variable already decides it."""
    from streams.memprobe import MMAP_THRESHOLD, MMAP_THRESHOLD_ENV, mallinfo, tune_malloc

    if mallinfo() is None:
        pytest.skip("not glibc >= 2.33: mallopt tuning does not apply")
    assert tune_malloc({}) == MMAP_THRESHOLD
    assert tune_malloc({MMAP_THRESHOLD_ENV: "1048576"}) == 1048576
    assert tune_malloc({MMAP_THRESHOLD_ENV: "0"}) is None
    assert tune_malloc({"MALLOC_MMAP_THRESHOLD_": "131072"}) is None
    with pytest.raises(ValueError, match=MMAP_THRESHOLD_ENV):
        tune_malloc({MMAP_THRESHOLD_ENV: "lots"})
