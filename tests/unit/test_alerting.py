from __future__ import annotations

from monitor.alerting import AlertBook, alert_id
from monitor.detectors.base import Finding
from monitor.model import Kind, Severity


def finding(scope="pub-1", firing=True, score=10.0):
    return Finding(
        Kind.PUBLISHER_SPIKE,
        scope,
        firing,
        True,
        score,
        Severity.WARNING,
        "Publisher pub-1: 30 invalidations",
        "fraud",
        {"observed": 30},
    )


def test_fires_once_then_resolves_after_quiet_windows():
    book = AlertBook(resolve_after_windows=2)
    out = book.update(0, 300, 420, [finding()])
    assert [a.status for a in out] == ["firing"]
    assert book.update(300, 600, 720, [finding(firing=False)]) == []  # sustained
    assert book.update(600, 900, 1020, []) == []  # quiet 1
    out2 = book.update(900, 1200, 1320, [])  # quiet 2: resolved
    assert [a.status for a in out2] == ["resolved"]
    assert out2[0].alert_id == out[0].alert_id
    assert out2[0].window_start == out[0].window_start
    assert out2[0].window_end == "1970-01-01T00:10:00Z"


def test_a_sustain_level_finding_does_not_open_an_alert():
    book = AlertBook()
    assert book.update(0, 300, 420, [finding(firing=False)]) == []
    assert not book.open


def test_alert_id_is_deterministic_and_depends_on_kind_scope_and_first_window():
    a = alert_id("publisher_spike", "pub-1", 600)
    assert a == alert_id("publisher_spike", "pub-1", 600)
    assert a != alert_id("publisher_spike", "pub-2", 600)
    assert a != alert_id("publisher_spike", "pub-1", 900)
    assert a != alert_id("platform_spike", "pub-1", 600)


def test_snapshot_restore_keeps_open_alerts():
    book = AlertBook(resolve_after_windows=1)
    book.update(0, 300, 420, [finding()])
    other = AlertBook(resolve_after_windows=1)
    other.restore(book.snapshot())
    out = other.update(300, 600, 720, [])
    assert [a.status for a in out] == ["resolved"]


def _quiet() -> Finding:
    """A sustain-only window of the alert ``finding()`` opened: no reason, 3 observed."""
    summary = "Publisher pub-1: invalidations still elevated."
    return Finding(Kind.PUBLISHER_SPIKE, "pub-1", False, True, 3.0, Severity.WARNING, summary,
                   None, {"observed": 3})  # fmt: skip


def test_resolved_summary_names_what_fired_not_the_last_sustaining_window():
    book = AlertBook(resolve_after_windows=1)
    book.update(0, 300, 420, [finding()])
    quiet = _quiet()
    book.update(300, 600, 720, [quiet])
    out = book.update(600, 900, 1020, [])
    assert out[0].status == "resolved"
    assert out[0].summary == (
        "Resolved after 10 min, normal since 00:10 UTC. Last firing window: "
        "Publisher pub-1: 30 invalidations"
    )
    # the reason and evidence of the resolve are those of the firing window its summary
    # names (the quiet window had no reason and 3 observed)
    assert out[0].reason == "fraud"
    assert out[0].evidence["observed"] == 30
    restored = AlertBook()
    book2 = AlertBook(resolve_after_windows=1)
    book2.update(0, 300, 420, [finding()])
    restored.restore(book2.snapshot())
    assert next(iter(restored.open.values())).headline == "Publisher pub-1: 30 invalidations"


def test_resolved_reason_and_evidence_survive_a_snapshot():
    book = AlertBook(resolve_after_windows=1)
    book.update(0, 300, 420, [finding()])
    quiet = _quiet()
    book.update(300, 600, 720, [quiet])
    restored = AlertBook(resolve_after_windows=1)
    restored.restore(book.snapshot())
    (out,) = restored.update(600, 900, 1020, [])
    assert (out.status, out.reason, out.evidence["observed"]) == ("resolved", "fraud", 30)


def test_an_older_snapshot_without_the_firing_finding_resolves_with_its_headline():
    book = AlertBook(resolve_after_windows=1)
    book.update(0, 300, 420, [finding()])
    snap = book.snapshot()
    old = snap["open"][0]
    del old["fired"]  # the form before the firing finding was kept
    old["headline"] = "Publisher pub-1: 31 invalidations"
    restored = AlertBook(resolve_after_windows=1)
    restored.restore(snap)
    (out,) = restored.update(300, 600, 720, [])
    assert out.summary == (
        "Resolved after 5 min, normal since 00:05 UTC. Last firing window: "
        "Publisher pub-1: 31 invalidations"
    )
    assert out.reason == "fraud"
