"""A platform incident with 200 affected publishers: one notification per receiver."""

from __future__ import annotations

import json
import random
import tomllib

from alerts.config import alerts_config_from_doc
from alerts.service import AlertService
from tests.alerts.conftest import T0, FakeClock, make_alert, resolve

N = 200


def incident() -> tuple:
    pubs = [f"pub-{i:04d}" for i in range(N)]
    platform = make_alert(
        "platform_spike", None, start=T0, severity="critical",
        summary="Platform-wide rise in invalidations: 2,140 in 5 min where 310 were expected "
        "(6.9x), spread over 200 publishers; the largest rise is in `data_anomaly`.",
        evidence={"observed": 2140, "expected": 310.2, "ratio": 6.9, "score": 412.0,
                  "thresholds": {"score": 6.0}, "publishers_with_excess": N,
                  "affected_publishers": pubs[:50], "affected_publisher_count": N,
                  "reason_mix": {"data_anomaly": 1900, "refund": 160, "cancel": 80}},
    )  # fmt: skip
    rng = random.Random(3)
    per_pub = [make_alert(publisher=p, start=T0 + 300 * rng.randrange(0, 4)) for p in pubs]
    return platform, per_pub


async def test_platform_incident_with_200_publishers_is_one_notification_per_receiver(
    endpoints, tmp_path
):
    slack = await endpoints("/services/T0/B0/x")
    hook = await endpoints()
    am = await endpoints("/api/v2/alerts")
    doc = tomllib.loads(f"""
[alerts]
outbox = "{tmp_path / "outbox.sqlite"}"
[[alerts.receivers]]
name = "slack"
type = "slack"
url = "{slack.url}"
[[alerts.receivers]]
name = "hook"
type = "webhook"
mode = "group"
url = "{hook.url}"
[[alerts.receivers]]
name = "am"
type = "alertmanager"
url = "{am.url.removesuffix("/api/v2/alerts")}"
""")
    clock = FakeClock()
    platform, per_pub = incident()
    async with AlertService(alerts_config_from_doc(doc["alerts"], {}), clock=clock) as svc:
        # publisher findings race the platform's: half arrive before it, half after
        for a in per_pub[:100]:
            svc.accept(a, T0 + 300)
        svc.accept(platform, T0 + 305)
        for a in per_pub[100:]:
            svc.accept(a, T0 + 310)
        svc.flush(T0 + 335)
        await svc.sender.deliver_due()
        firing = (len(slack.requests), len(hook.requests), len(am.requests))
        # the incident ends: the platform alert and all 200 publisher alerts resolve
        svc.accept(resolve(platform, T0 + 2400), T0 + 2400)
        for a in per_pub:
            svc.accept(resolve(a, T0 + 2400), T0 + 2400)
        for t in range(635, 4000, 300):
            svc.flush(T0 + t)
        await svc.sender.deliver_due()
    assert firing == (1, 1, 1)
    assert (len(slack.requests), len(hook.requests), len(am.requests)) == (2, 2, 2)

    message = slack.requests[0].json()
    text = json.dumps(message)
    assert "FIRING" in text and "Affected publishers (200)" in text and "and 170 more" in text
    envelope = hook.requests[0].json()
    assert [a["kind"] for a in envelope["alerts"]] == ["platform_spike"]
    assert envelope["suppressed"]["count"] == N
    assert "Holding back 200 alerts it explains" in text
    assert hook.requests[1].json()["status"] == "resolved"
    assert [a["labels"]["alertname"] for a in am.requests[0].json()] == ["platform_spike"]
    assert "RESOLVED" in json.dumps(slack.requests[1].json())
