"""The ``[alerts]`` section: quick start, secrets, validation, redacted rendering."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from alerts.config import (
    Secret,
    alerts_config_from_doc,
    load_alerts_config,
    parse_duration,
    render,
)
from monitor.config import ConfigError, load_params

README = Path(__file__).resolve().parents[2] / "alerts" / "README.md"
SLACK = "https://hooks.slack.com/services/T000/B000/xoxSECRETTOKEN"


def cfg(toml: str, env: dict | None = None):
    return alerts_config_from_doc(tomllib.loads(toml).get("alerts", {}), env or {})


def test_environment_quick_start_adds_catch_all_receivers():
    c = cfg("", {"ORDERMON_SLACK_WEBHOOK_URL": SLACK,
                 "ORDERMON_WEBHOOK_URL": "https://risk.example.com/hook",
                 "ORDERMON_WEBHOOK_SECRET": "hmac-key",
                 "ORDERMON_ALERTMANAGER_URL": "http://127.0.0.1:9093"})  # fmt: skip
    assert [r.name for r in c.receivers] == ["slack", "webhook", "alertmanager"]
    assert c.receiver("webhook").secret == Secret("hmac-key")
    lbl = {"kind": "publisher_spike", "category": "publisher", "severity": "warning"}
    routes = c.route.match(lbl)
    assert [o.receiver for _, o in routes] == ["slack", "webhook", "alertmanager"]
    assert all(o.group_by == ("kind",) and o.group_wait == 30 for _, o in routes)


def test_file_variant_of_a_quick_start_variable(tmp_path):
    f = tmp_path / "url"
    f.write_text(SLACK + "\n")
    c = cfg("", {"ORDERMON_SLACK_WEBHOOK_URL_FILE": str(f)})
    assert c.receiver("slack").url.reveal() == SLACK
    assert c.receiver("slack").url_source == f"file {f}"


def test_secrets_come_from_env_or_file_and_are_never_shown(tmp_path):
    secret = tmp_path / "hmac"
    secret.write_text("file-secret\n")
    c = cfg(f"""
[alerts]
[[alerts.receivers]]
name = "slack"
type = "slack"
url_env = "SLACK_URL"
[[alerts.receivers]]
name = "hook"
type = "webhook"
url = "https://risk.example.com/hook"
secret_file = "{secret}"
""", {"SLACK_URL": SLACK})  # fmt: skip
    assert c.receiver("hook").secret.reveal() == "file-secret"
    shown = render(c) + repr(c) + str(c)
    assert "xoxSECRETTOKEN" not in shown and "file-secret" not in shown
    assert "risk.example.com" not in render(c)  # any receiver URL is redacted
    assert "# url: <redacted> (from env SLACK_URL)" in render(c)


def test_config_show_never_prints_the_alerts_section_secrets(tmp_path):
    from monitor.config import render as render_monitor

    f = tmp_path / "c.toml"
    f.write_text(f'[alerts]\n[[alerts.receivers]]\nname = "s"\ntype = "slack"\nurl = "{SLACK}"\n')
    assert "xoxSECRETTOKEN" not in render_monitor(load_params(str(f), env={}))


@pytest.mark.parametrize(
    "toml,env,message",
    [
        ('[[alerts.receivers]]\nname="s"\ntype="slack"\nurl="ftp://x/y"',
         {}, "only http(s) URLs are accepted (got scheme 'ftp')"),
        ('[[alerts.receivers]]\nname="s"\ntype="slack"\nurl="file:///etc/passwd"',
         {}, "only http(s) URLs"),
        ('[[alerts.receivers]]\nname="s"\ntype="slack"\nurl_env="NOPE"',
         {}, "environment variable NOPE is not set"),
        ('[[alerts.receivers]]\nname="s"\ntype="slack"', {}, "needs url, url_env or url_file"),
        ('[[alerts.receivers]]\nname="h"\ntype="webhook"\nurl="http://x/"\nsecret="inline"',
         {}, "put the secret in secret_env or secret_file"),
        ('[[alerts.receivers]]\nname="s"\ntype="pager"', {}, "type: one of"),
        ('[[alerts.receivers]]\nname="c"\ntype="console"\ncolour=true', {},
         "unknown setting(s) alerts.receivers[0].colour"),
        ('[alerts.route]\nreceiver="missing"', {}, "no receiver named 'missing'"),
        ('[alerts.route]\ngroup_by=["shop"]', {}, "group_by: unknown label(s)"),
        ('[alerts.route]\ngroup_wait="soon"', {}, "cannot read 'soon' as a duration"),
        ('[alerts.route]\nmatch={colour="red"}', {},
         "unknown setting(s) alerts.route.match.colour"),
        ('[[alerts.silences]]\nmatch={kind="clock_skew"}', {}, "ends_at: required"),
        ('dashboard_url="https://g/{shop}"', {}, "unknown placeholder(s) ['shop']"),
        ("[alerts.delivery]\njitter=2", {}, "jitter: a number in [0, 1]"),
    ],
)  # fmt: skip
def test_configuration_errors_name_the_setting_and_never_the_secret(toml, env, message):
    with pytest.raises(ConfigError) as err:
        cfg(toml if toml.startswith("[") else "[alerts]\n" + toml, env)
    assert message in str(err.value)


def test_bad_url_error_does_not_repeat_the_url():
    with pytest.raises(ConfigError) as err:
        cfg("", {"ORDERMON_SLACK_WEBHOOK_URL": "gopher://hooks/xoxSECRETTOKEN"})
    assert "xoxSECRETTOKEN" not in str(err.value)


def test_durations():
    assert [parse_duration(v, "x") for v in (30, "30s", "5m", "4h", "1.5d", "250ms")] == [
        30, 30, 300, 14400, 129600, 0.25]  # fmt: skip


def test_the_readme_example_configuration_loads(tmp_path):
    toml = re.search(r"## Configuration.*?```toml\n(.*?)```", README.read_text(), re.S)[1]
    secret = tmp_path / "hmac"
    secret.write_text("k")
    toml = toml.replace("/run/secrets/ordermon_hmac", str(secret))
    c = cfg(toml, {"SLACK_RISK_URL": SLACK})
    assert [r.name for r in c.receivers] == ["risk-slack", "risk-api", "am", "terminal"]
    lbl = {"kind": "publisher_spike", "category": "publisher", "severity": "critical",
           "publisher_id": "vip-7"}  # fmt: skip
    got = [(o.receiver, o.group_by) for _, o in c.route.match(lbl)]
    assert got == [("terminal", ("kind",)), ("am", ("kind",)), ("risk-api", ("publisher_id",))]


def test_load_reads_the_same_file_as_the_monitor(tmp_path):
    f = tmp_path / "ordermon.toml"
    f.write_text('[publisher]\nmin_excess = 8.0\n[alerts]\n[[alerts.receivers]]\n'
                 'name = "c"\ntype = "console"\n')  # fmt: skip
    assert load_params(str(f), env={}).publisher.min_excess == 8.0
    assert [r.name for r in load_alerts_config(str(f), env={}).receivers] == ["c"]
    with pytest.raises(ConfigError, match="cannot read config"):
        load_alerts_config(str(tmp_path / "missing.toml"), env={})


def test_rendered_inhibit_rules_load_back_as_the_same_rules(tmp_path):
    """`config show` wrote inhibit rules as a comment under an empty table, which loaded
    back as an empty rule: every alert inhibiting every other."""
    from alerts.config import DEFAULT_INHIBIT, load_alerts_config, render

    custom = tmp_path / "custom.toml"
    custom.write_text(
        "[[alerts.inhibit_rules]]\n"
        'source = { kind = "stream_stall" }\n'
        'target = { category = ["publisher", "platform"] }\n'
        'equal = ["kind"]\n'
        "same_window = false\n"
    )
    for path in (None, str(custom)):
        cfg = load_alerts_config(path, env={})
        again = tmp_path / "again.toml"
        again.write_text(render(cfg))
        assert load_alerts_config(str(again), env={}).inhibit_rules == cfg.inhibit_rules
    assert load_alerts_config(None, env={}).inhibit_rules == DEFAULT_INHIBIT
