"""deploy/ against a running worker: a real ``ordermon run`` on the embedded broker, fed a
small simulated stream (with a few malformed lines), then

- every ``ordermon_*`` name a rule or a dashboard uses is on its ``/metrics``;
- a real Prometheus (Debian's binary, on a free loopback port, storage in tmp) scrapes it
  with deploy/'s rules loaded: its query API returns ordermon's series with the worker's
  values, the recording rules produce series and every rule evaluates without error.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.simulate import simulate
from streams.broker import free_port, set_pdeathsig
from streams.procs import WorkerProc, write_config
from streams.produce import produce_file
from streams.topics import ensure_topics
from tests.conftest import need_tool
from tests.deploy.promql import RULES, exposed_names, missing_from, used_names
from tests.integration.conftest import broker as broker  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow
PROM_HINT = "`make tools` installs Debian's prometheus (root with apt-get)"
MALFORMED = [b"not json at all", b'{"schema_version": 1}', b"\xff\xfe binary"]


def http_get(url: str, timeout: float = 2.0) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read()  # type: ignore[no-any-return]
    except (urllib.error.URLError, OSError):
        return None


def poll(fn: Callable[[], Any], timeout: float, what: str, log: Callable[[], str]) -> Any:
    """``fn()`` until it returns something truthy, against a deadline (back-off 50 ms to
    0.5 s); fails with ``what`` and the last value and log."""
    deadline, delay, last = time.monotonic() + timeout, 0.05, None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout}s (last: {last!r})\n{log()}")
        time.sleep(delay)  # polling back-off against the deadline, not synchronisation
        delay = min(delay * 2, 0.5)


@pytest.fixture(scope="module")
def worker(broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:  # noqa: F811
    """One worker that has processed a small simulated stream; yields its port and the
    ``/metrics`` text taken once every produced message was processed."""
    tmp = tmp_path_factory.mktemp("deploy-live")
    info = simulate(5, tmp / "sim", publishers=30, days=0.25)
    events = tmp / "events.jsonl"
    events.write_bytes(Path(info["events_path"]).read_bytes() + b"\n".join(MALFORMED) + b"\n")
    n_lines = sum(1 for ln in events.read_bytes().splitlines() if ln.strip())
    tag = uuid.uuid4().hex[:8]
    topic = f"orders-{tag}"
    cfg = write_config(tmp / "ordermon.toml", partitions=2, store="memory://",
                       checkpoint_interval_s=1.0, idle_after_s=2.0, input_topic=topic,
                       dlq_topic=f"{topic}.dlq", alerts_topic=f"alerts-{tag}",
                       app_id=f"om-{tag}", console=False)  # fmt: skip
    # a receiver, so that the delivery metrics (alerts/metrics.py) are registered too
    cfg.write_text(cfg.read_text() + f'\n[alerts]\noutbox = "{tmp / "outbox.sqlite"}"\n'
                   '[[alerts.receivers]]\nname = "console"\ntype = "console"\n')  # fmt: skip

    async def load() -> int:
        await ensure_topics(broker.bootstrap, {topic: 2})
        res = await produce_file(str(events), broker.bootstrap, topic, partitions=2)
        assert res["failed"] == 0, res
        return int(res["produced"])

    produced = asyncio.run(load())
    assert produced == n_lines
    w = WorkerProc(broker.url, cfg, tmp, "deploy").start()
    try:
        w.wait_for(lambda st: st["stages"]["ingest"]["messages"] >= produced, 45,
                   f"all {produced} messages ingested")  # fmt: skip
        # detection closed windows: the platform and per-publisher gauges have values
        w.wait_for(lambda st: (st.get("detection") or {}).get("windows_closed", 0) >= 24, 30,
                   "24 windows closed by detection")  # fmt: skip
        text = poll(lambda: (http_get(f"http://127.0.0.1:{w.port}/metrics") or b"").decode(),
                    10, "/metrics", w.log_tail)  # fmt: skip
        yield {"port": w.port, "metrics": text, "proc": w, "tmp": tmp}
    finally:
        w.terminate()


def test_every_metric_name_in_rules_and_dashboards_is_on_a_live_worker(worker):
    used = used_names()
    exposed = exposed_names(worker["metrics"])
    missing = missing_from(used, exposed)
    assert not missing, "\n".join(
        f"{n} (used by {', '.join(used[n][:3])})" for n in sorted(missing)
    )
    assert len(used) >= 30  # the parse found the expressions (not an empty pass)
    with_samples = {ln.split("{")[0].split(" ")[0] for ln in worker["metrics"].splitlines()
                    if ln.startswith("ordermon_")}  # fmt: skip
    declared_only = sorted(missing_from(used, with_samples))
    print(f"\n{len(used)} names used; declared without samples on this worker: {declared_only}")


def _sample(text: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise AssertionError(f"no sample {name}{labels} in /metrics")


@pytest.fixture(scope="module")
def prometheus(worker) -> Iterator[str]:
    binary = need_tool("prometheus", hint=PROM_HINT)
    tmp: Path = worker["tmp"]
    port = free_port()
    (tmp / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: [{json.dumps(str(RULES))}]\n"
        "scrape_configs:\n"
        "  - job_name: ordermon\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{worker['port']}']}}]\n"
    )
    log_path = tmp / "prometheus.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={tmp / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp / 'prom-data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=set_pdeathsig,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def tail() -> str:
        return "prometheus log:\n" + log_path.read_text(errors="replace")[-3000:]

    try:
        poll(lambda: proc.poll() is None and http_get(url + "/-/ready") is not None, 20,
             "Prometheus ready", tail)  # fmt: skip
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _query(url: str, q: str) -> list[dict[str, Any]]:
    body = http_get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": q}))
    if body is None:
        return []
    doc = json.loads(body)
    assert doc["status"] == "success", doc
    return doc["data"]["result"]  # type: ignore[no-any-return]


def test_prometheus_scrapes_the_worker_and_evaluates_the_rules(worker, prometheus):
    url, text = prometheus, worker["metrics"]
    want = {s: _sample(text, "ordermon_events_total", status=s)
            for s in ("accepted", "rejected", "duplicate")}  # fmt: skip
    assert want["accepted"] > 0 and want["rejected"] >= len(MALFORMED), want

    def events() -> dict[str, float] | None:
        res = _query(url, 'ordermon_events_total{job="ordermon"}')
        got = {r["metric"]["status"]: float(r["value"][1]) for r in res}
        return got if got == want else None

    got = poll(events, 20, f"ordermon_events_total == {want} in Prometheus",
               lambda: str(_query(url, "ordermon_events_total")))  # fmt: skip
    assert got == want

    # recording rules over real data (rate() needs two scrapes)
    rates = poll(lambda: _query(url, "ordermon:events:rate5m"), 20, "ordermon:events:rate5m",
                 lambda: "")  # fmt: skip
    assert {r["metric"]["status"] for r in rates} == {"accepted", "rejected", "duplicate"}

    def evaluated() -> list[dict[str, Any]] | None:
        doc = json.loads(http_get(url + "/api/v1/rules") or b'{"data": {"groups": []}}')
        rules = [r for g in doc["data"]["groups"] for r in g["rules"]]
        return rules if rules and all(r["health"] != "unknown" for r in rules) else None

    rules = poll(evaluated, 20, "every rule evaluated once", lambda: "")
    bad = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
    assert not bad, bad
    n_alerts = sum(r["type"] == "alerting" for r in rules)
    assert n_alerts >= 9 and len(rules) >= 17, [r["name"] for r in rules]
