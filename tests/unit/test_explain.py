"""Which publisher findings an open stream-wide alert explains (``Detection._explain``)."""

from __future__ import annotations

from monitor.alerting import AlertBook
from monitor.detectors.base import Finding, WindowContext
from monitor.model import Kind, Severity
from monitor.pipeline import Detection
from monitor.windows import SLOTS, WindowAcc


def _shift(reason: str) -> Finding:
    return Finding(Kind.REASON_SHIFT, None, True, True, 30.0, Severity.WARNING,
                   f"`{reason}` rose", reason, {}, (reason,))  # fmt: skip


def _pub(pub: str, reason: str) -> Finding:
    return Finding(Kind.PUBLISHER_SPIKE, pub, True, True, 12.0, Severity.WARNING,
                   f"{pub}: {reason}", reason, {}, (reason,))  # fmt: skip


def _ctx(index: int) -> WindowContext:
    return WindowContext(WindowAcc(index, 300), [0] * SLOTS, (index + 1) * 300.0, True)


def test_a_reason_shift_explains_every_reason_it_fired_on_not_only_this_windows():
    """A relabelling into `other` fires as a shift of `other`; a window later the rising
    reason can read `cancel` (the reason it was taken from, by noise). The largest
    publisher's `other` excess is still the shift's, not a publisher incident (on the
    independent generator's seed 1 it was raised as one, open 1.6 h)."""
    det = Detection()
    det.book.update(0, 300, 300, [_shift("other")])
    det.book.update(300, 600, 600, [_shift("cancel")])
    ctx = _ctx(2)
    kept = det._explain(ctx, [_shift("cancel"), _pub("big", "other"), _pub("small", "fraud")])
    assert [(f.kind, f.scope) for f in kept] == [
        (Kind.REASON_SHIFT, None),
        (Kind.PUBLISHER_SPIKE, "small"),
    ]
    assert ctx.explained == {"big"}


def test_what_an_open_alert_carried_survives_a_snapshot():
    book = AlertBook()
    book.update(0, 300, 300, [_shift("other")])
    book.update(300, 600, 600, [_shift("cancel")])
    again = AlertBook()
    again.restore(book.snapshot())
    [cur] = again.open.values()
    assert cur.carried == {"other", "cancel"}
