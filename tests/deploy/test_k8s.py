"""deploy/k8s and the shipped ordermon configs: the manifests parse and hold what a worker
needs (probes on the real endpoints, resources, config from the ConfigMap, secrets only by
reference); both ordermon.toml files load with ordermon's own config loaders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.promql import DEPLOY

K8S = DEPLOY / "k8s"


def docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def kind(k: str) -> dict[str, Any]:
    found = [d for p in sorted(K8S.glob("*.yaml")) for d in docs(p.name) if d["kind"] == k]
    assert len(found) == 1, f"{k}: {len(found)} manifests"
    return found[0]


def container() -> dict[str, Any]:
    (c,) = kind("Deployment")["spec"]["template"]["spec"]["containers"]
    return c


def test_kustomization_lists_existing_manifests():
    k = docs("kustomization.yaml")[0]
    for res in k["resources"]:
        assert (K8S / res).is_file(), res
    assert "secret.example.yaml" not in k["resources"]  # never applied with placeholders


def test_probes_hit_the_worker_endpoints(tmp_path):
    c = container()
    port = {p["name"]: p["containerPort"] for p in c["ports"]}["http"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    from streams.settings import load_stream_settings

    s = load_stream_settings(str(_configmap_toml(tmp_path)), env={})
    assert (s.web_host, s.web_port) == ("0.0.0.0", port)
    ann = kind("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/port"] == str(port) and ann["prometheus.io/path"] == "/metrics"
    svc = kind("Service")
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    pm = kind("PodMonitor")
    assert pm["spec"]["podMetricsEndpoints"][0]["path"] == "/metrics"


def test_resources_and_security():
    c = container()
    for k in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][k]), k
    pod = kind("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert {"/etc/ordermon", "/var/lib/ordermon", "/tmp"} <= mounts


def test_secrets_only_by_reference():
    env = container()["env"]
    assert env and all("value" not in e for e in env), "inline env values"
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env}
    assert {"ORDERMON_SLACK_WEBHOOK_URL", "ORDERMON_WEBHOOK_URL",
            "ORDERMON_WEBHOOK_SECRET"} <= set(refs)  # fmt: skip
    example = docs("secret.example.yaml")[0]
    for r in refs.values():
        assert r["name"] == example["metadata"]["name"] and r["key"] in example["stringData"]


def _configmap_toml(tmp: Path) -> Path:
    path = tmp / "ordermon.toml"
    path.write_text(kind("ConfigMap")["data"]["ordermon.toml"])
    return path


@pytest.mark.parametrize("which", ["compose", "k8s"])
def test_ordermon_configs_load(which, tmp_path):
    """Every section of the shipped configs is accepted by ordermon (unknown keys are an
    error), with no secret in them and the quick-start receivers from the environment."""
    from alerts.config import load_alerts_config
    from monitor.config import load_params
    from streams.settings import load_stream_settings

    path = DEPLOY / "ordermon.toml" if which == "compose" else _configmap_toml(tmp_path)
    s = load_stream_settings(str(path), env={})
    assert s.store == "rocksdb://" and s.datadir.startswith("/var/lib/ordermon")
    assert s.app_id == "ordermon" and not s.embedded
    load_params(str(path))
    env = {"ORDERMON_WEBHOOK_URL": "https://risk.example.com/x",
           "ORDERMON_WEBHOOK_SECRET": "s3cret"}  # fmt: skip
    cfg = load_alerts_config(str(path), env=env)
    assert [r.name for r in cfg.receivers] == ["webhook"]
    assert cfg.outbox.startswith("/var/lib/ordermon/")
    import tomllib

    for r in tomllib.loads(path.read_text())["alerts"].get("receivers", []):
        assert not {"url", "secret"} & set(r), f"inline secret in receiver {r.get('name')}"
