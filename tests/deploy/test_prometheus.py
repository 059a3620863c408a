"""deploy/prometheus and deploy/alertmanager checked by their own tools (Debian's promtool and
amtool), plus what the tools do not check: every alert has ``for:``, a severity and both
annotations, every alert is unit-tested firing and not firing, and every metric a rule or a
dashboard names is one ordermon exposes (``streams.metrics.METRIC_NAMES``)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import need_tool
from tests.deploy.promql import (
    DEPLOY,
    RULE_TESTS,
    RULES,
    alerting_rules,
    missing_from,
    names_in,
    rule_exprs,
    rules,
    used_names,
)

PROM_HINT = "`make tools` installs Debian's prometheus (promtool) (root with apt-get)"
AM_HINT = "`make tools` installs Debian's prometheus-alertmanager (amtool) (root with apt-get)"
AM_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"


def run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout}\n{res.stderr}"
    return res


def test_promtool_check_config():
    promtool = need_tool("promtool", hint=PROM_HINT)
    out = run([promtool, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")])
    # the config's rule_files glob found the rules file (and promtool checked it)
    assert "ordermon.rules.yml" in out.stdout and "SUCCESS" in out.stdout, out.stdout


def test_promtool_check_rules():
    promtool = need_tool("promtool", hint=PROM_HINT)
    out = run([promtool, "check", "rules", str(RULES)])
    assert f"SUCCESS: {len(rules())} rules found" in out.stdout, out.stdout


def test_promtool_test_rules():
    promtool = need_tool("promtool", hint=PROM_HINT)
    assert RULE_TESTS, "no deploy/prometheus/tests/*.yml"
    out = run([promtool, "test", "rules", *map(str, RULE_TESTS)])
    assert "SUCCESS" in out.stdout and "FAILED" not in out.stdout, out.stdout


def test_every_alert_is_tested_firing_and_not_firing():
    firing: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS:
        doc = yaml.safe_load(path.read_text())
        assert [str(RULES)] == [str((path.parent / f).resolve()) for f in doc["rule_files"]]
        for case in doc["tests"]:
            for t in case.get("alert_rule_test", []):
                (firing if t.get("exp_alerts") else silent).add(t["alertname"])
    names = {r["alert"] for r in alerting_rules()}
    assert names - firing == set(), "never shown firing"
    assert names - silent == set(), "never shown not firing"
    assert (firing | silent) - names == set(), "tests of alerts that do not exist"


def test_alerts_have_for_severity_and_annotations():
    alerts = alerting_rules()
    assert len(alerts) >= 9
    for r in alerts:
        where = r["alert"]
        assert r.get("for"), f"{where}: no for:"
        assert r["labels"]["severity"] in ("critical", "warning", "info"), where
        assert r["labels"].get("service") == "ordermon", where  # the Alertmanager routes
        ann = r.get("annotations", {})
        assert ann.get("summary") and ann.get("description"), f"{where}: annotations"


def test_rule_selectors_are_scoped_to_the_ordermon_job():
    """Every series selector in a rule carries job="ordermon" (the workers' scrape job), so
    another job exposing ordermon_* names (a second deployment) is not mixed in."""
    selector = re.compile(r"\b(ordermon_[a-z0-9_]+|up)(\{[^}]*\})?")
    checked = 0
    for name, expr in rule_exprs():  # alerts on recording rules have no selector of their own
        for metric, labels in selector.findall(expr):
            assert 'job="ordermon"' in labels, f"{name}: {metric}{labels}"
            checked += 1
    assert checked >= 15


def test_rules_and_dashboards_use_only_exposed_metric_names():
    from streams.metrics import METRIC_NAMES

    used = used_names()
    missing = missing_from(used, METRIC_NAMES)
    assert not missing, {n: used[n] for n in missing}
    # and the dashboards and rules together show every metric ordermon exposes
    unused = missing_from(METRIC_NAMES, {n.removesuffix("_bucket") for n in used} | set(used))
    assert not unused, f"exposed but on no dashboard or rule: {sorted(unused)}"


def test_recording_rule_names_are_not_metric_names():
    """Recording rules are ``level:metric:operations``; the names check relies on them never
    matching ``ordermon_*``."""
    for r in rules():
        if "record" in r:
            assert r["record"].startswith("ordermon:") and not names_in(r["record"]), r


def test_amtool_check_config():
    amtool = need_tool("amtool", hint=AM_HINT)
    out = run([amtool, "check-config", str(AM_CONFIG)])
    assert "SUCCESS" in out.stdout and "3 receivers" in out.stdout, out.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["service=ordermon", "severity=critical", "alertname=OrdermonWorkerDown"],
         "ops-webhook,slack-ops"),
        (["service=ordermon", "severity=warning", "alertname=OrdermonConsumerLagHigh"],
         "slack-ops"),
        (["alertname=publisher_spike", "category=publisher", "severity=warning"], "risk"),
        (["alertname=volume_drop", "category=platform", "severity=critical"], "risk"),
    ],
)  # fmt: skip
def test_alertmanager_routes(labels: list[str], receivers: str):
    amtool = need_tool("amtool", hint=AM_HINT)
    out = run([amtool, "config", "routes", "test", f"--config.file={AM_CONFIG}", *labels])
    assert out.stdout.strip() == receivers


def test_alertmanager_secrets_are_files_not_inline():
    doc = yaml.safe_load(AM_CONFIG.read_text())
    assert doc["global"]["slack_api_url_file"].startswith("/run/secrets/")
    text = AM_CONFIG.read_text()
    assert "hooks.slack.com" not in text and "credentials:" not in text
    for rcv in doc["receivers"]:
        for wh in rcv.get("webhook_configs", []):
            auth = wh["http_config"]["authorization"]
            assert auth["credentials_file"].startswith("/run/secrets/"), rcv["name"]
