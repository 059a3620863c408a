"""What receivers get: Slack Block Kit messages, webhook bodies, Alertmanager alerts."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from alerts.notice import Delivery, Item, Notification, make_delivery
from alerts.receivers import slack
from alerts.receivers.alertmanager import api_url, payload
from alerts.receivers.base import dashboard_link, parse_retry_after
from alerts.receivers.console import ConsoleReceiver, block
from alerts.receivers.webhook import request
from tests.alerts.conftest import T0, make_alert, resolve

README = Path(__file__).resolve().parents[2] / "alerts" / "README.md"
DASH = "https://grafana.example.com/d/om?var-publisher={publisher_id}&from={window_start_ms}"


def delivery(*alerts, repeat: bool = False, labels=None) -> Delivery:
    n = Notification("r", "0:r:kind=x", labels or {"kind": alerts[0].kind}, alerts, {}, T0,
                     True, 3600.0)  # fmt: skip
    return make_delivery(n, tuple(Item(a, 1 if repeat else 0) for a in alerts))


def check_block_kit(msg: dict) -> None:
    """Slack's limits: <= 50 blocks, header <= 150, section text <= 3000, <= 10 fields."""
    assert msg["text"] and len(msg["blocks"]) <= 50
    for b in msg["blocks"]:
        if b["type"] == "header":
            assert len(b["text"]["text"]) <= 150
        if b["type"] == "section":
            assert len(b.get("text", {}).get("text", "")) <= 3000
            assert len(b.get("fields", [])) <= 10


def test_slack_single_alert_has_summary_evidence_window_and_dashboard_button():
    a = make_alert(publisher="pub-<7>&")
    msg = slack.render(delivery(a).body, DASH)
    check_block_kit(msg)
    text = json.dumps(msg, ensure_ascii=False)
    assert msg["blocks"][0]["text"]["text"] == "\U0001f7e0 FIRING · warning · publisher_spike"
    assert "*Observed*\\n43" in text and "*Score*\\n18.2 (threshold 6)" in text
    assert "pub-&lt;7&gt;&amp;" in text  # escaped for mrkdwn
    [button] = msg["blocks"][-1]["elements"]
    assert button["url"] == DASH.format(publisher_id="pub-%3C7%3E%26",
                                        window_start_ms=int(T0 * 1000))  # fmt: skip


def test_slack_resolved_and_repeat_messages_say_so():
    a = make_alert()
    assert slack.render(delivery(resolve(a)).body)["blocks"][0]["text"]["text"].startswith(
        "✅ RESOLVED"
    )
    assert "STILL FIRING" in slack.render(delivery(a, repeat=True).body)["text"]


def test_slack_grouped_message_lists_many_publishers_within_limits():
    alerts = [make_alert(publisher=f"pub-{i:04d}", severity="critical" if i == 77 else "warning")
              for i in range(120)]  # fmt: skip
    msg = slack.render(delivery(*alerts).body, DASH)
    check_block_kit(msg)
    lines = "\n".join(b["text"]["text"] for b in msg["blocks"] if b["type"] == "section")
    assert lines.splitlines()[0].startswith("\U0001f534 *pub-0077*")  # most severe first
    assert len(re.findall(r"\*pub-\d{4}\*", lines)) == slack.MAX_LINES
    assert lines.endswith("…and 80 more") and "|dashboard>" in lines
    assert msg["blocks"][0]["text"]["text"].startswith("\U0001f534 120 firing · publisher_spike")


def test_slack_message_for_a_fired_and_resolved_alert_shows_the_latest_state():
    a = make_alert()
    msg = slack.render(delivery(a, resolve(a)).body)
    assert msg["blocks"][0]["text"]["text"].startswith("✅ RESOLVED")


def test_webhook_group_envelope_and_headers():
    a, b = make_alert(publisher="p1"), make_alert(publisher="p2")
    d = delivery(a, b)
    body, headers = request(d, "group", b"k", T0)
    env = json.loads(body)
    assert env["version"] == 1 and env["status"] == "firing" and len(env["alerts"]) == 2
    assert env["alerts"][0] == json.loads(json.dumps(env["alerts"][0]))
    assert headers["Idempotency-Key"] == d.key and headers["X-Ordermon-Timestamp"] == str(int(T0))
    _, unsigned = request(d, "group", None, T0)
    assert "X-Ordermon-Signature" not in unsigned


def test_readme_verification_snippet_accepts_ordermon_requests_and_refuses_tampering():
    code = re.search(r"#### Verifying a request.*?```python\n(.*?)```", README.read_text(),
                     re.S)[1]  # fmt: skip
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    verify = ns["verify_ordermon"]
    import time

    body, headers = request(delivery(make_alert()), "alert", b"shared", time.time())
    assert verify(b"shared", headers, body)
    assert not verify(b"other", headers, body)
    assert not verify(b"shared", headers, body.replace(b"firing", b"resolved"))
    stale = {**headers, "X-Ordermon-Timestamp": str(int(time.time()) - 3600)}
    assert not verify(b"shared", stale, body)


def test_alertmanager_alerts_carry_labels_annotations_and_times():
    a = make_alert(publisher="pub-9")
    now = T0 + 7200
    [fired] = payload(delivery(a).body, now, ttl=3600, dashboard=DASH)
    assert fired["labels"] == {"alertname": "publisher_spike", "alert_id": a.alert_id,
                               "category": "publisher", "severity": "warning",
                               "publisher_id": "pub-9"}  # fmt: skip
    assert fired["annotations"]["summary"] == a.summary
    assert json.loads(fired["annotations"]["evidence"])["observed"] == 43
    assert fired["startsAt"] == a.window_start and fired["endsAt"] == "2026-11-02T16:40:00Z"
    assert fired["generatorURL"].startswith("https://grafana.example.com/")
    [done] = payload(delivery(a, resolve(a)).body, now, ttl=3600)
    assert done["endsAt"] == resolve(a).window_end and "generatorURL" not in done
    platform = make_alert("platform_spike", None)
    assert "publisher_id" not in payload(delivery(platform).body, now, 3600)[0]["labels"]
    assert api_url("http://am:9093/") == "http://am:9093/api/v2/alerts"


def test_console_block_is_readable():
    text = block(delivery(make_alert(), make_alert(publisher="pub-2")).body)
    assert text.startswith("== ordermon notification: 2 firing, 0 resolved (kind=")
    assert "publisher_spike" in text and "observed=43" in text


def test_retry_after_reads_seconds_and_http_dates():
    assert parse_retry_after("120", T0) == 120
    assert parse_retry_after("Mon, 02 Nov 2026 13:42:00 GMT", T0) == 120
    assert parse_retry_after("soon", T0) is None and parse_retry_after(None, T0) is None


def test_dashboard_link_without_a_template_is_empty():
    assert dashboard_link("", make_alert()) == ""


async def test_console_receiver_writes_one_block_per_notification():
    out = io.StringIO()
    rcv = ConsoleReceiver("c", out)
    d = delivery(make_alert())
    assert (await rcv.send(d, None, T0)).ok  # type: ignore[arg-type] - no HTTP needed
    assert out.getvalue() == block(d.body)
