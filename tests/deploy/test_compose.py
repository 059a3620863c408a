"""deploy/docker-compose.yml: ``docker compose config`` (or ``docker-compose config``)
accepts it, and the resolved file has the shape deploy/README.md promises."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.conftest import need_tool
from tests.deploy.promql import DEPLOY

COMPOSE_HINT = ("`make tools` installs Debian's docker-compose (root with apt-get); "
                "`docker compose` (the Docker CLI plugin) works as well")  # fmt: skip


def compose_cmd() -> list[str]:
    """The Docker CLI's compose plugin if it answers, else the standalone docker-compose."""
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return [docker, "compose"]
    return [need_tool("docker-compose", hint=COMPOSE_HINT)]


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """The file as compose resolves it (anchors merged, ${VAR:-default} substituted), in an
    environment without any of the file's variables (a fresh checkout)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ORDERMON_", "SIM_", "GRAFANA_", "ORDERS_"))
           and not k.endswith("_FILE") and not k.startswith("COMPOSE_")}  # fmt: skip
    cmd = [*compose_cmd(), "-f", "docker-compose.yml", "config"]
    res = subprocess.run(cmd, cwd=DEPLOY, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"{' '.join(cmd)} rejected the file:\n{res.stderr}"
    doc: dict[str, Any] = yaml.safe_load(res.stdout)
    return doc


def test_compose_config_accepts_the_file(resolved):
    services = resolved["services"]
    want = {"kafka", "kafka-init", "ordermon-1", "ordermon-2", "simulator", "prometheus",
            "alertmanager", "grafana"}  # fmt: skip
    assert want <= set(services), sorted(services)


def test_images_are_pinned(resolved):
    for name, svc in resolved["services"].items():
        image = svc["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
        assert tag and tag != "latest", f"{name}: {image} is not pinned"


def test_two_workers_one_group_own_state_and_ports(resolved):
    s = resolved["services"]
    w1, w2 = s["ordermon-1"], s["ordermon-2"]
    for w in (w1, w2):
        assert w["build"]["dockerfile"] == "deploy/Dockerfile"
        assert w["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
        assert w["environment"]["ORDERMON_STREAM_BROKER"] == "kafka://kafka:9092"
    # same consumer group: app_id comes from the one config file both mount
    mounts = [{str(v["source"] if isinstance(v, dict) else v.split(":")[0]) for v in w["volumes"]}
              for w in (w1, w2)]  # fmt: skip
    configs = [{m for m in ms if m.endswith("ordermon.toml")} for ms in mounts]
    assert configs[0] == configs[1] and len(configs[0]) == 1
    state = [ms - configs[0] for ms in mounts]
    assert state[0] and state[1] and not (state[0] & state[1]), state  # own data volume
    ports = [{str(p["published"]) if isinstance(p, dict) else p.split(":")[0]
              for p in w["ports"]} for w in (w1, w2)]  # fmt: skip
    assert ports[0] and ports[1] and not (ports[0] & ports[1]), ports


def test_simulator_is_optional_and_uses_ordermon(resolved):
    sim = resolved["services"]["simulator"]
    assert sim["profiles"] == ["sim"]
    script = " ".join(sim["command"])
    assert "ordermon simulate" in script and "ordermon produce" in script
    assert "--broker kafka://kafka:9092" in script and "--topic orders" in script


def test_kafka_is_kraft_and_topics_are_created(resolved):
    s = resolved["services"]
    env = s["kafka"]["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"] and "KAFKA_ZOOKEEPER_CONNECT" not in env
    script = " ".join(s["kafka-init"]["command"])
    for topic in ("orders", "orders.dlq", "ordermon.facts", "ordermon.partials",
                  "ordermon.alerts"):  # fmt: skip
        assert f"create {topic} " in script, topic


def test_monitoring_mounts_exist(resolved):
    """Every file or directory the stack bind-mounts from deploy/ is in the repository."""
    checked = 0
    for name, svc in resolved["services"].items():
        for v in svc.get("volumes", []):
            src = v["source"] if isinstance(v, dict) else v.split(":")[0]
            if str(src).startswith(("/", ".")):
                assert os.path.exists(src if os.path.isabs(src) else DEPLOY / src), (name, src)
                checked += 1
    for name, sec in resolved.get("secrets", {}).items():
        assert os.path.exists(sec["file"]), (name, sec)  # the placeholder, by default
        checked += 1
    assert checked >= 7


def test_the_worker_config_binds_all_interfaces():
    """Prometheus and the probes reach the worker from outside its container."""
    from streams.settings import load_stream_settings

    s = load_stream_settings(str(DEPLOY / "ordermon.toml"), env={})
    assert s.web_host == "0.0.0.0" and s.web_port == 6066
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == "ordermon")
    targets = job["static_configs"][0]["targets"]
    assert targets == [f"ordermon-1:{s.web_port}", f"ordermon-2:{s.web_port}"]
