"""Routing, grouping, inhibition, silences, repeat and dedup: the pipeline up to the
outbox, on a driven clock (no network: the outbox rows are what would be sent)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from alerts.config import alerts_config_from_doc
from alerts.service import AlertService
from alerts.store import OutboxError, Store
from tests.alerts.conftest import T0, FakeClock, make_alert, resolve

BASE = """
[alerts]
[[alerts.receivers]]
name = "ops"
type = "console"
"""


_open: list[AlertService] = []


def service(tmp_path: Path, toml: str = BASE, clock: FakeClock | None = None) -> AlertService:
    cfg = alerts_config_from_doc(tomllib.loads(toml)["alerts"], env={})
    cfg = type(cfg)(**{**cfg.__dict__, "outbox": str(tmp_path / "outbox.sqlite")})
    svc = AlertService(cfg, clock=clock or FakeClock())
    _open.append(svc)
    return svc


@pytest.fixture(autouse=True)
def _close_stores():
    yield
    while _open:
        _open.pop().store.close()


def queued(svc: AlertService, receiver: str | None = None) -> list[list[tuple[str, str, int]]]:
    """Items of every delivery ever queued (pending or delivered), in order."""
    rows = svc.store.db.execute(
        "SELECT receiver, alert_id, status, seq FROM notified ORDER BY queued_at, rowid"
    ).fetchall()
    return [(a, s, q) for r, a, s, q in rows if receiver in (None, r)]


def test_a_new_group_waits_group_wait_then_notifies_once(tmp_path):
    svc = service(tmp_path)
    a = make_alert(publisher="pub-1")
    svc.accept(a, T0)
    assert svc.flush(T0 + 29) == 0 and queued(svc) == []
    svc.flush(T0 + 30)
    assert queued(svc) == [(a.alert_id, "firing", 0)]
    svc.flush(T0 + 330)  # next group_interval: nothing new
    assert len(queued(svc)) == 1


def test_alerts_arriving_within_group_wait_share_one_notification(tmp_path):
    svc = service(tmp_path)
    for i in range(5):
        svc.accept(make_alert(publisher=f"pub-{i}"), T0 + i)
    svc.flush(T0 + 30)
    rows = svc.store.pending()
    assert len(rows) == 1 and len(rows[0].items) == 5


def test_an_alert_joining_a_notified_group_waits_for_group_interval(tmp_path):
    svc = service(tmp_path)
    svc.accept(make_alert(publisher="pub-1"), T0)
    svc.flush(T0 + 30)
    b = make_alert(publisher="pub-2", start=T0 + 300)
    svc.accept(b, T0 + 40)
    svc.flush(T0 + 300)
    assert len(queued(svc)) == 1
    svc.flush(T0 + 330)
    assert queued(svc)[-1] == (b.alert_id, "firing", 0)
    assert len(svc.store.pending()) == 2


def test_a_resolved_alert_is_notified_once_and_then_forgotten(tmp_path):
    svc = service(tmp_path)
    a = make_alert()
    svc.accept(a, T0)
    svc.flush(T0 + 30)
    svc.accept(resolve(a), T0 + 100)
    for t in (330, 630, 930):
        svc.flush(T0 + t)
    assert queued(svc) == [(a.alert_id, "firing", 0), (a.alert_id, "resolved", 0)]
    assert svc.dispatcher.groups == {} and svc.store.is_closed(a.alert_id)
    assert svc.accept(a, T0 + 1000) is False  # a redelivered record of a closed alert


def test_fired_and_resolved_between_flushes_is_told_once_with_both_records(tmp_path):
    svc = service(tmp_path)  # a backfill: the incident began and ended within group_wait
    a = make_alert()
    svc.accept(a, T0)
    svc.accept(resolve(a), T0 + 10)
    svc.flush(T0 + 30)
    [row] = svc.store.pending()
    assert [x["status"] for x in row.body["alerts"]] == ["firing", "resolved"]


def test_still_firing_alerts_are_repeated_every_repeat_interval_with_new_keys(tmp_path):
    svc = service(tmp_path, BASE + '[alerts.route]\nrepeat_interval = "1h"\n')
    a = make_alert()
    svc.accept(a, T0)
    t = T0 + 30
    while t < T0 + 2.5 * 3600:
        svc.flush(t)
        t += 300
    assert queued(svc) == [(a.alert_id, "firing", 0), (a.alert_id, "firing", 1),
                           (a.alert_id, "firing", 2)]  # fmt: skip
    keys = [r.key for r in svc.store.pending()]
    assert len(set(keys)) == 3 and all(r.body["repeat"] for r in svc.store.pending()[1:])


def test_platform_spike_inhibits_publisher_alerts_of_its_windows_only(tmp_path):
    svc = service(tmp_path)
    platform = make_alert("platform_spike", None, severity="critical", start=T0 + 300)
    same = make_alert(publisher="pub-same", start=T0 + 300)  # arrives first
    later = make_alert(publisher="pub-later", start=T0 + 1200)  # while it fires
    before = make_alert(publisher="pub-before", start=T0 - 900, end=T0 - 600)
    svc.accept(same, T0 + 600)
    svc.accept(platform, T0 + 610)
    svc.accept(later, T0 + 615)
    svc.accept(before, T0 + 620)
    svc.flush(T0 + 700)
    told = {a for a, _, _ in queued(svc)}
    assert told == {platform.alert_id, before.alert_id}


def test_a_resolved_platform_spike_still_inhibits_publisher_alerts_of_its_windows(tmp_path):
    svc = service(tmp_path)
    platform = make_alert("platform_spike", None, start=T0)
    svc.accept(platform, T0)
    svc.flush(T0 + 30)
    svc.accept(resolve(platform, T0 + 1800), T0 + 40)
    svc.flush(T0 + 330)  # the platform group is done; the alert is kept to inhibit
    late = make_alert(publisher="pub-late", start=T0 + 900)
    outside = make_alert(publisher="pub-after", start=T0 + 3600)
    svc.accept(late, T0 + 400)
    svc.accept(outside, T0 + 400)
    svc.flush(T0 + 430)
    assert {a for a, _, _ in queued(svc)} == {platform.alert_id, outside.alert_id}


def test_a_receiver_told_an_alert_fires_is_told_it_resolved_even_when_now_inhibited(tmp_path):
    svc = service(tmp_path)
    pub = make_alert(publisher="pub-1", start=T0)
    svc.accept(pub, T0)
    svc.flush(T0 + 30)
    svc.accept(make_alert("platform_spike", None, start=T0), T0 + 40)
    svc.accept(resolve(pub), T0 + 50)
    svc.flush(T0 + 330)
    assert (pub.alert_id, "resolved", 0) in queued(svc)


def test_inhibit_rules_are_configurable_and_can_be_turned_off(tmp_path):
    svc = service(tmp_path, BASE.replace("[alerts]", "[alerts]\ninhibit_rules = []"))
    svc.accept(make_alert("platform_spike", None), T0)
    svc.accept(make_alert(publisher="pub-1"), T0)
    svc.flush(T0 + 30)
    assert len(queued(svc)) == 2


def test_a_silence_mutes_matching_alerts_until_it_ends(tmp_path):
    toml = (
        BASE
        + """
[[alerts.silences]]
match = { publisher_id = "pub-promo" }
ends_at = "2026-11-02T15:00:00Z"
comment = "planned promotion"
"""
    )
    svc = service(tmp_path, toml)
    muted = make_alert(publisher="pub-promo")
    other = make_alert(publisher="pub-other")
    svc.accept(muted, T0)
    svc.accept(other, T0)
    svc.flush(T0 + 30)
    assert {a for a, _, _ in queued(svc)} == {other.alert_id}
    svc.flush(T0 + 3 * 3600)  # the silence ended at 15:00
    assert (muted.alert_id, "firing", 0) in queued(svc)


def test_routes_match_in_order_with_continue_and_inherit_grouping(tmp_path):
    toml = """
[alerts]
[[alerts.receivers]]
name = "risk"
type = "console"
[[alerts.receivers]]
name = "data"
type = "console"
[[alerts.receivers]]
name = "pager"
type = "console"

[alerts.route]
receiver = "risk"
group_wait = "10s"
[[alerts.route.routes]]
match = { severity = "critical" }
receiver = "pager"
continue = true
[[alerts.route.routes]]
match = { category = "data_quality" }
receiver = "data"
group_by = ["alert_id"]
"""
    svc = service(tmp_path, toml)
    crit_dq = make_alert("malformed_events", None, severity="critical")
    dq = make_alert("clock_skew", None)
    pub = make_alert(publisher="pub-1")
    for a in (crit_dq, dq, pub):
        svc.accept(a, T0)
    svc.flush(T0 + 10)  # children inherit group_wait 10s
    assert {a for a, _, _ in queued(svc, "pager")} == {crit_dq.alert_id}
    assert {a for a, _, _ in queued(svc, "data")} == {crit_dq.alert_id, dq.alert_id}
    assert {a for a, _, _ in queued(svc, "risk")} == {pub.alert_id}
    data_rows = [r for r in svc.store.pending() if r.receiver == "data"]
    assert len(data_rows) == 2  # group_by alert_id: one notification each


def test_restart_restores_groups_and_never_queues_an_item_twice(tmp_path):
    clock = FakeClock()
    first = service(tmp_path, clock=clock)
    a, b = make_alert(publisher="pub-1"), make_alert(publisher="pub-2")
    first.accept(a, T0)
    first.flush(T0 + 30)
    first.accept(b, T0 + 60)  # accepted, not flushed yet when the process stops
    first.store.close()

    second = service(tmp_path, clock=clock)
    assert second.accept(a, T0 + 70) is False  # already known: a redelivery
    second.flush(T0 + 100)  # the restored group's timer (T0 + 330) is not due
    assert [x for x, _, _ in queued(second)] == [a.alert_id]
    second.flush(T0 + 330)
    assert [x for x, _, _ in queued(second)] == [a.alert_id, b.alert_id]
    second.accept(resolve(a), T0 + 400)
    second.accept(resolve(a), T0 + 401)
    second.flush(T0 + 630)
    second.flush(T0 + 930)
    assert queued(second).count((a.alert_id, "resolved", 0)) == 1


def test_an_alert_no_route_takes_is_logged_not_raised(tmp_path):
    toml = BASE + '[alerts.route]\nreceiver = "ops"\nmatch = { category = "data_quality" }\n'
    svc = service(tmp_path, toml)
    with capture_logs() as logs:
        assert svc.accept(make_alert(publisher="pub-1"), T0)
    svc.flush(T0 + 30)
    assert queued(svc) == []
    assert [e["event"] for e in logs] == ["alert_unrouted"]


def test_a_second_process_cannot_open_an_outbox_in_use(tmp_path):
    path = str(tmp_path / "outbox.sqlite")
    Store(path).close()  # an existing file: opening it writes nothing else
    first = Store(path)
    with pytest.raises(OutboxError, match="in use by another process"):
        Store(path)
    first.close()
    Store(path).close()  # free again once the first is gone
