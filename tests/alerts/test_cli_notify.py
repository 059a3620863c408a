"""``ordermon replay EVENTS --notify --config F``: the replay's alerts through the receivers
(the installed command in a subprocess, the endpoints local)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ORDERMON = [sys.executable, "-m", "monitor.cli"]


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    res = subprocess.run([*ORDERMON, "simulate", "--seed", "5", "--out", str(out),
                          "--publishers", "300", "--days", "1"],
                         capture_output=True, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr.decode()
    return out / "events.jsonl"


async def ordermon(*args: str, env: dict[str, str], home: Path) -> tuple[int, str]:
    """Run the command without blocking the loop the local endpoints are served from."""
    proc = await asyncio.create_subprocess_exec(
        *ORDERMON, *args,
        env={**os.environ, "HOME": str(home), "XDG_STATE_HOME": str(home / "state"), **env},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, err.decode()


async def test_replay_notify_sends_every_alert_once_and_a_rerun_sends_nothing(
    endpoints, events, tmp_path
):
    hook = await endpoints()
    slack = await endpoints("/services/T0/B0/x")
    config = tmp_path / "ordermon.toml"
    config.write_text(f"""
[publisher]
min_excess = 5.0

[alerts]
outbox = "{tmp_path / "outbox.sqlite"}"
[[alerts.receivers]]
name = "risk"
type = "webhook"
url = "{hook.url}"
secret_env = "HOOK_SECRET"
[[alerts.receivers]]
name = "slack"
type = "slack"
url_env = "SLACK_URL"
""")
    env = {"HOOK_SECRET": "hook-secret-xyz", "SLACK_URL": slack.url}
    alerts_file = tmp_path / "alerts.jsonl"
    args = ("replay", str(events), "--notify", "--config", str(config), "--out", str(alerts_file))
    code, err = await ordermon(*args, env=env, home=tmp_path)
    assert code == 0, err
    records = [json.loads(line) for line in alerts_file.read_text().splitlines()]
    sent = [r.json() for r in hook.requests]
    pairs = [(a["alert_id"], a["status"]) for a in sent]
    assert len(pairs) == len(set(pairs)) > 0  # nothing twice
    assert all(a in records for a in sent)  # the contract records, unchanged
    not_publisher = {(a["alert_id"], a["status"]) for a in records if a["category"] != "publisher"}
    assert not_publisher <= set(pairs)
    assert 0 < len(slack.requests) <= len(pairs)  # grouped
    assert f"notify: {len(records)} new alert records" in err
    assert "hook-secret-xyz" not in err and slack.url not in err

    code, err = await ordermon(*args, env=env, home=tmp_path)
    assert code == 0, err
    assert len(hook.requests) == len(pairs)  # the outbox remembers: nothing sent again
    assert "notify: 0 new alert records; 0 notifications delivered" in err


async def test_replay_does_not_notify_without_the_flag(endpoints, events, tmp_path):
    hook = await endpoints()
    code, err = await ordermon("replay", str(events), "--quiet",
                               env={"ORDERMON_WEBHOOK_URL": hook.url}, home=tmp_path)  # fmt: skip
    assert code == 0, err
    assert hook.requests == [] and not (tmp_path / "state").exists()


async def test_notify_without_receivers_is_a_configuration_error_before_the_replay(
    events, tmp_path
):
    code, err = await ordermon("replay", str(events), "--notify", env={}, home=tmp_path)
    assert code == 2
    assert "--notify: no receivers" in err and "replayed" not in err


async def test_a_receiver_that_refuses_makes_the_exit_code_1(endpoints, events, tmp_path):
    hook = await endpoints()
    hook.default = 403
    code, err = await ordermon("replay", str(events), "--notify", "--quiet",
                               env={"ORDERMON_WEBHOOK_URL": hook.url}, home=tmp_path)  # fmt: skip
    assert code == 1
    assert "notification_rejected" in err and "rejected" in err.splitlines()[-1]
