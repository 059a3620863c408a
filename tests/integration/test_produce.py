"""produce_file and ``ordermon produce``: every non-blank line in, keyed by order_id."""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner

from streams.broker import free_port
from streams.cli_produce import main_produce
from streams.produce import TokenBucket, key_extractor, produce_file
from streams.topics import TopicError, ensure_topics, topic_partitions
from tests.integration.conftest import consume_all, run

ROOT = Path(__file__).resolve().parents[2]


def _event(i: int) -> bytes:
    ev = {"schema_version": 1, "event_id": f"e-{i}", "order_id": f"o-{i % 97}",
          "publisher_id": f"pub-{i % 7}", "status": "paid", "amount": 10.5,
          "commission": 0.5, "occurred_at": "2026-11-02T00:00:00+08:00"}  # fmt: skip
    return json.dumps(ev, separators=(",", ":")).encode()


ODD = [  # (line, expected key): produced all the same, for the monitor's dead-letter topic
    (b'{"order_id": "o-1", "status": ', None),  # truncated: not JSON
    (b'{"event_id": "e-x", "status": "paid"}', None),  # no order_id
    (b'{"order_id": 12345}', None),  # not a string
    (b'["order_id", "o-2"]', None),  # not an object
    (b'\xff\xfe{"order_id":"o-3"}', None),  # not UTF-8
    (b'{"order_id" : "o-\\u00e9" , "x": {"order_id": "inner"}}', "o-é".encode()),
]


def _write(path: Path, lines: list[bytes], gz: bool = False) -> Path:
    data = b"\n".join(lines)  # no final newline: the last line still counts
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_key_extractor():
    key = key_extractor()
    for line, want in ODD:
        assert key(line) == want
    assert key(_event(5)) == b"o-5"
    assert key_extractor("publisher_id")(_event(5)) == b"pub-5"


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
async def test_round_trip(broker, topic_name, tmp_path, gz):
    await ensure_topics(broker.bootstrap, {topic_name: 4})
    events = [_event(i) for i in range(1000)]
    lines = events[:500] + [b"", b"   "] + [ln for ln, _ in ODD] + events[500:]
    lines[3] += b"\r"  # a CRLF line end
    src = _write(tmp_path / ("e.jsonl.gz" if gz else "e.jsonl"), lines, gz)

    res = await produce_file(str(src), broker.url, topic_name)
    n = len(events) + len(ODD)
    assert res["produced"] == res["lines"] == n and res["failed"] == 0
    assert res["blank"] == 2 and res["null_keys"] == sum(k is None for _, k in ODD)

    recs = await consume_all(broker.bootstrap, topic_name)  # up to the high watermark
    assert len(recs) == n
    got = sorted((r.value, r.key) for r in recs)
    want = [(e, json.loads(e)["order_id"].encode()) for e in events] + ODD
    assert got == sorted(want)
    part = DefaultPartitioner()
    for r in recs:
        if r.key is not None:  # murmur2, as the Java client and librdkafka murmur2_random
            assert r.partition == part(r.key, [0, 1, 2, 3], [0, 1, 2, 3])
    assert {r.partition for r in recs} == {0, 1, 2, 3}


async def test_missing_topic_is_an_error_not_auto_created(broker, topic_name, tmp_path):
    src = _write(tmp_path / "e.jsonl", [_event(1)])
    with pytest.raises(TopicError, match="does not exist"):
        await produce_file(str(src), broker.bootstrap, topic_name)
    assert await topic_partitions(broker.bootstrap, [topic_name]) == {}
    res = await produce_file(str(src), broker.bootstrap, topic_name, partitions=2)
    assert res["produced"] == 1
    assert await topic_partitions(broker.bootstrap, [topic_name]) == {topic_name: 2}


async def test_rate_limit(broker, topic_name, tmp_path):
    src = _write(tmp_path / "e.jsonl", [_event(i) for i in range(600)])
    t0 = time.monotonic()
    res = await produce_file(str(src), broker.bootstrap, topic_name, rate=2000, partitions=1)
    took = time.monotonic() - t0
    # 2000/s with a 100 ms (200 event) burst: 600 events need at least 0.2 s.
    assert res["produced"] == 600 and took >= 0.19
    assert res["events_per_second"] < 2000 * 1.5


def test_token_bucket_debt_is_kept():
    b = TokenBucket(rate=1000, burst=1)
    waits = [b.take() for _ in range(5)]
    assert waits[0] == 0.0 and waits[-1] == pytest.approx(0.004, abs=0.001)


def _ns(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"topic": None, "rate": None} | kw)


def test_cli_unreachable_broker_exit_2(tmp_path, capsys):
    src = _write(tmp_path / "e.jsonl", [_event(1)])
    t0 = time.monotonic()
    url = f"kafka://127.0.0.1:{free_port()}"
    rc = main_produce(_ns(events=str(src), broker=url, connect_timeout=0.5))
    assert rc == 2 and time.monotonic() - t0 < 5
    err = capsys.readouterr().err
    assert "broker unreachable" in err and url.removeprefix("kafka://") in err


def test_cli_summary_and_errors(broker, topic_name, tmp_path, capsys):
    src = _write(tmp_path / "e.jsonl", [_event(i) for i in range(10)])
    assert main_produce(_ns(events=str(src), broker=broker.url, topic=topic_name)) == 1
    assert "does not exist" in capsys.readouterr().err
    run(ensure_topics(broker.bootstrap, {topic_name: 2}))
    assert main_produce(_ns(events=str(src), broker=broker.url, topic=topic_name)) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(f"produced 10 events to {topic_name}")
    missing = str(tmp_path / "nope.jsonl")
    assert main_produce(_ns(events=missing, broker=broker.url, topic=topic_name)) == 1
    assert "cannot read" in capsys.readouterr().err


def test_cli_stdin(broker, topic_name):
    run(ensure_topics(broker.bootstrap, {topic_name: 3}))
    data = b"\n".join(_event(i) for i in range(250)) + b"\n"
    cmd = [sys.executable, "-m", "streams.cli_produce", "-", "--broker", broker.url,
           "--topic", topic_name]  # fmt: skip
    p = subprocess.run(cmd, input=data, capture_output=True, timeout=60, cwd=ROOT)
    assert p.returncode == 0, p.stderr.decode()
    assert b"produced 250 events" in p.stdout
    assert len(run(consume_all(broker.bootstrap, topic_name, count=250))) == 250
