"""The bare-faust baseline runs over a pre-filled topic and always terminates."""

from __future__ import annotations

import pytest

from monitor.simulate import simulate
from streams.baseline import BaselineError, run_baseline
from streams.produce import produce_file
from streams.topics import ensure_topics
from tests.integration.conftest import process_gone


@pytest.fixture
async def prefilled(broker, topic_name, tmp_path) -> tuple[str, int]:
    sim = simulate(3, tmp_path / "sim", publishers=40, days=0.1, incidents=False)
    await ensure_topics(broker.bootstrap, {topic_name: 2})
    res = await produce_file(sim["events_path"], broker.bootstrap, topic_name)
    assert res["produced"] == sim["events"] > 500
    return topic_name, res["produced"]


@pytest.mark.slow
def test_baseline_counts_and_exits(broker, prefilled, tmp_path):
    topic, n = prefilled
    res = run_baseline(broker.url, topic, n, partitions=2, timeout=120, workdir=tmp_path)
    assert res["events"] == n and res["events_per_second"] > 0
    assert 0 < res["publishers"] <= 40
    assert res["exit_code"] == 0  # SIGTERM after the count: a clean faust shutdown
    assert process_gone(res["pid"])


@pytest.mark.slow
def test_baseline_missing_its_deadline_is_stopped(broker, prefilled, tmp_path):
    topic, n = prefilled
    with pytest.raises(BaselineError, match="timed out") as exc:
        run_baseline(broker.url, topic, n + 1, partitions=2, timeout=10, workdir=tmp_path)
    assert process_gone(exc.value.pid)
