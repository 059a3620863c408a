"""Delivery over real HTTP to local endpoints that answer 200, 500, 429, hang or are
down: retries, back-off, dead letters, no duplicates, and resuming after a restart."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import tomllib
from pathlib import Path

from structlog.testing import capture_logs

from alerts.config import alerts_config_from_doc
from alerts.service import AlertService
from tests.alerts.conftest import HANG, T0, FakeClock, make_alert, resolve

SECRET = "s3cret-hmac-key"


def config(tmp_path: Path, receivers: dict[str, tuple[str, str]], **delivery: str):
    lines = ["[alerts]", f'outbox = "{tmp_path / "outbox.sqlite"}"', "[alerts.delivery]"]
    d = {"timeout": "0.25s", "max_age": "60s", "backoff_initial": "1s", **delivery}
    lines += [f'{k} = "{v}"' for k, v in d.items()]
    for name, (kind, url) in receivers.items():
        lines += ["[[alerts.receivers]]", f'name = "{name}"', f'type = "{kind}"', f'url = "{url}"']
        if kind == "webhook":
            lines.append('secret_env = "HOOK_SECRET"')
    return alerts_config_from_doc(tomllib.loads("\n".join(lines))["alerts"],
                                  env={"HOOK_SECRET": SECRET})  # fmt: skip


def service(cfg, clock: FakeClock) -> AlertService:
    return AlertService(cfg, clock=clock, rng=random.Random(7))


async def deliver_until_idle(svc: AlertService, clock: FakeClock, rounds: int = 50) -> None:
    """Deliver, then move the clock to the next retry, until nothing is pending."""
    for _ in range(rounds):
        await svc.sender.deliver_due()
        nxt = svc.sender.next_due()
        if nxt is None:
            return
        clock.now = max(clock.now, nxt)
    raise AssertionError("outbox did not drain")


def sample(svc: AlertService, name: str, **labels: str) -> float:
    return svc.registry.get_sample_value(name, labels) or 0.0


async def test_webhook_gets_the_contract_alert_signed_with_an_idempotency_key(
    endpoints, tmp_path, alert_validator
):
    hook = await endpoints()
    clock = FakeClock()
    async with service(config(tmp_path, {"hook": ("webhook", hook.url)}), clock) as svc:
        a = make_alert()
        svc.accept(a, T0)
        svc.flush(T0 + 30)
        assert await svc.sender.deliver_due() == 1
    [req] = hook.requests
    assert req.headers["Content-Type"] == "application/json"
    body = req.json()
    alert_validator.validate(body)
    assert body["alert_id"] == a.alert_id and body["status"] == "firing"
    ts = req.headers["X-Ordermon-Timestamp"]
    assert ts == str(int(clock.now))
    mac = hmac.new(SECRET.encode(), ts.encode() + b"." + req.body, hashlib.sha256).hexdigest()
    assert req.headers["X-Ordermon-Signature"] == f"v1={mac}"
    assert req.headers["Idempotency-Key"].startswith("om-n-")
    assert sample(svc, "ordermon_notifications_total", receiver="hook", outcome="delivered") == 1
    assert sample(svc, "ordermon_notification_latency_seconds_count", receiver="hook") == 1


async def test_server_errors_are_retried_with_backoff_then_delivered_once(endpoints, tmp_path):
    hook = await endpoints()
    hook.answer(500, 503)
    clock = FakeClock()
    async with service(config(tmp_path, {"hook": ("webhook", hook.url)}), clock) as svc:
        svc.accept(make_alert(), T0)
        svc.flush(T0 + 30)
        assert await svc.sender.deliver_due() == 1
        assert await svc.sender.deliver_due() == 0  # backing off: not due yet
        first_wait = svc.sender.next_due() - clock.now
        assert 0.5 <= first_wait <= 1.0  # 1 s, jittered down by at most half
        clock.now = svc.sender.next_due()
        await svc.sender.deliver_due()
        second_wait = svc.sender.next_due() - clock.now
        assert 1.0 <= second_wait <= 2.0  # doubled
        await deliver_until_idle(svc, clock)
        assert svc.store.delivered("hook") == [(make_alert().alert_id, "firing", 0)]
    assert len(hook.requests) == 3
    assert len({r.headers["Idempotency-Key"] for r in hook.requests}) == 1
    assert sample(svc, "ordermon_notifications_failed_total", receiver="hook",
                  reason="server_error") == 2  # fmt: skip
    assert sample(svc, "ordermon_notifications_total", receiver="hook", outcome="delivered") == 1


async def test_a_429_is_retried_no_sooner_than_retry_after(endpoints, tmp_path):
    slack = await endpoints("/services/T0/B0/x")
    slack.answer((429, {"Retry-After": "120"}))
    clock = FakeClock()
    cfg = config(tmp_path, {"slack": ("slack", slack.url)}, max_age="1h")
    async with service(cfg, clock) as svc:
        svc.accept(make_alert(), T0)
        svc.flush(T0 + 30)
        await svc.sender.deliver_due()
        assert svc.sender.next_due() == clock.now + 120
        clock.advance(119)
        assert await svc.sender.deliver_due() == 0
        clock.advance(1)
        assert await svc.sender.deliver_due() == 1
    assert [r.json()["blocks"][0]["type"] for r in slack.requests] == ["header", "header"]
    assert sample(svc, "ordermon_notifications_failed_total", receiver="slack",
                  reason="rate_limited") == 1  # fmt: skip


async def test_a_retry_after_beyond_max_age_dead_letters_at_once(endpoints, tmp_path):
    hook = await endpoints()
    hook.answer((503, {"Retry-After": "7200"}))
    async with service(config(tmp_path, {"hook": ("webhook", hook.url)}), FakeClock()) as svc:
        svc.accept(make_alert(), T0)
        svc.flush(T0 + 30)
        await svc.sender.deliver_due()
        assert len(svc.store.rows("dead")) == 1 and svc.sender.next_due() is None


async def test_a_hanging_endpoint_times_out_and_is_retried(endpoints, tmp_path):
    hook = await endpoints()
    hook.answer(HANG)
    clock = FakeClock()
    async with service(config(tmp_path, {"hook": ("webhook", hook.url)}), clock) as svc:
        svc.accept(make_alert(), T0)
        svc.flush(T0 + 30)
        with capture_logs() as logs:
            await deliver_until_idle(svc, clock)
    assert len(hook.requests) == 2
    assert sample(svc, "ordermon_notifications_failed_total", receiver="hook",
                  reason="timeout") == 1  # fmt: skip
    retry = next(e for e in logs if e["event"] == "notification_retry_scheduled")
    assert retry["reason"] == "timeout" and retry["receiver"] == "hook"


async def test_an_endpoint_that_stays_down_is_dead_lettered_at_max_age_and_counted(
    down_url, tmp_path
):
    clock = FakeClock()
    cfg = config(tmp_path, {"hook": ("webhook", down_url)}, max_age="60s")
    async with service(cfg, clock) as svc:
        svc.accept(make_alert(), T0)
        svc.flush(T0 + 30)
        queued_at = clock.now
        assert sample(svc, "ordermon_notification_queue_depth", receiver="hook") == 1
        with capture_logs() as logs:
            await deliver_until_idle(svc, clock)
        [dead] = svc.store.rows("dead")
    attempts = sample(svc, "ordermon_notifications_failed_total", receiver="hook",
                      reason="connection")  # fmt: skip
    assert attempts == dead.attempts >= 5  # 1, 2, 4, 8, 16 s... within a minute
    assert clock.now - queued_at <= 60
    assert dead.last_error.startswith("connection")
    assert sample(svc, "ordermon_notifications_total", receiver="hook",
                  outcome="dead_lettered") == 1  # fmt: skip
    assert sample(svc, "ordermon_notification_queue_depth", receiver="hook") == 0
    assert sample(svc, "ordermon_notification_dead_letters", receiver="hook") == 1
    assert [e["event"] for e in logs][-1] == "notification_dead_lettered"


async def test_a_4xx_is_not_retried_and_is_logged_with_the_response(endpoints, tmp_path):
    hook = await endpoints()
    hook.answer(400)
    clock = FakeClock()
    async with service(config(tmp_path, {"hook": ("webhook", hook.url)}), clock) as svc:
        a, b = make_alert(publisher="pub-1"), make_alert(publisher="pub-2")
        svc.accept(a, T0)
        svc.accept(b, T0)
        svc.flush(T0 + 30)
        with capture_logs() as logs:
            await deliver_until_idle(svc, clock)
        [rejected] = svc.store.rows("rejected")
        delivered = svc.store.delivered("hook")
    assert len(hook.requests) == 2  # the refused one once, then the next one
    assert len(rejected.items) == 1 and len(delivered) == 1
    [event] = [e for e in logs if e["event"] == "notification_rejected"]
    assert event["status"] == 400 and event["response"] == "answer 400"
    assert event["log_level"] == "error"


async def test_a_failing_receiver_does_not_hold_up_another(endpoints, down_url, tmp_path):
    hook = await endpoints()
    clock = FakeClock()
    cfg = config(tmp_path, {"slack": ("slack", down_url), "hook": ("webhook", hook.url)})
    async with service(cfg, clock) as svc:
        svc.accept(make_alert(), T0)
        svc.flush(T0 + 30)
        await svc.sender.deliver_due()
        assert len(hook.requests) == 1
        assert svc.store.depth() == {("slack", "pending"): 1, ("hook", "pending"): 0}


async def test_a_receiver_gets_its_deliveries_in_order_behind_a_retry(endpoints, tmp_path):
    hook = await endpoints()
    hook.answer(500)
    clock = FakeClock()
    async with service(config(tmp_path, {"hook": ("webhook", hook.url)}), clock) as svc:
        a = make_alert()
        svc.accept(a, T0)
        svc.flush(T0 + 30)
        svc.accept(resolve(a), T0 + 40)
        svc.flush(T0 + 330)
        await deliver_until_idle(svc, clock)
    assert [r.json()["status"] for r in hook.requests] == ["firing", "firing", "resolved"]


async def test_a_restarted_sender_resumes_pending_deliveries_and_sends_nothing_twice(
    endpoints, tmp_path
):
    hook = await endpoints()
    slack = await endpoints("/services/T0/B0/x")
    hook.answer(500)
    slack.answer(503)
    clock = FakeClock()
    cfg = config(tmp_path, {"hook": ("webhook", hook.url), "slack": ("slack", slack.url)})
    alerts = [make_alert(publisher=f"pub-{i}") for i in range(3)]
    async with service(cfg, clock) as first:
        for a in alerts:
            first.accept(a, T0)
        first.flush(T0 + 30)
        await first.sender.deliver_due()  # both fail: pending, retry scheduled
        assert first.store.depth()[("hook", "pending")] == 3
    # the process stops; a new one opens the same outbox
    clock.advance(30)
    async with service(cfg, clock) as second:
        for a in alerts:  # the input is redelivered after the restart, too
            assert second.accept(a, T0 + 50) is False
        second.flush(T0 + 330)
        await deliver_until_idle(second, clock)
        for a in alerts:
            second.accept(resolve(a), T0 + 400)
        second.flush(T0 + 630)
        await deliver_until_idle(second, clock)
    # and once more: everything again, nothing new
    async with service(cfg, clock) as third:
        for a in alerts + [resolve(a) for a in alerts]:
            third.accept(a, T0 + 700)
        third.flush(T0 + 2000, force=True)
        assert third.store.pending() == []
    ok = [r for r in hook.requests[1:]]  # after the first answer (500)
    assert [(r.json()["alert_id"], r.json()["status"]) for r in ok] == (
        [(a.alert_id, "firing") for a in alerts] + [(a.alert_id, "resolved") for a in alerts]
    )
    assert hook.requests[0].headers["Idempotency-Key"] == ok[0].headers["Idempotency-Key"]
    assert len(slack.requests) == 3  # 503, then the firing message, then the resolved one
    assert slack.requests[0].body == slack.requests[1].body


async def test_secrets_never_reach_logs_the_outbox_or_reprs(endpoints, down_url, tmp_path):
    slack = await endpoints("/services/T0/B0/xoxTOKEN123")
    slack.answer(500, 404)
    clock = FakeClock()
    cfg = config(tmp_path, {"slack": ("slack", slack.url), "hook": ("webhook", down_url)},
                 max_age="5s")  # fmt: skip
    async with service(cfg, clock) as svc:
        svc.accept(make_alert(), T0)
        svc.flush(T0 + 30)
        with capture_logs() as logs:
            await deliver_until_idle(svc, clock)
    text = json.dumps(logs, default=str) + repr(cfg)
    text += (tmp_path / "outbox.sqlite").read_bytes().decode("latin-1")
    assert "xoxTOKEN123" not in text and SECRET not in text
    assert {e["event"] for e in logs} >= {"notification_rejected", "notification_dead_lettered"}


async def test_the_service_loop_flushes_and_delivers_as_alerts_arrive_until_stopped(
    endpoints, tmp_path
):
    hook = await endpoints()
    doc = tomllib.loads(
        f"""
outbox = "{tmp_path / "outbox.sqlite"}"
[route]
group_wait = "0s"
[[receivers]]
name = "hook"
type = "webhook"
url = "{hook.url}"
"""
    )
    stop = asyncio.Event()
    async with AlertService(alerts_config_from_doc(doc, {})) as svc:  # the wall clock
        loop = asyncio.create_task(svc.run(stop, idle=30))
        svc.accept(make_alert(publisher="pub-1"))
        await asyncio.wait_for(hook.arrived(1), 10)
        svc.accept(make_alert(publisher="pub-2", start=T0 + 300))
        svc.flush(force=True)  # a new alert in a notified group waits group_interval
        await asyncio.wait_for(hook.arrived(2), 10)
        stop.set()
        await asyncio.wait_for(loop, 10)
    assert [r.json()["publisher_id"] for r in hook.requests] == ["pub-1", "pub-2"]
