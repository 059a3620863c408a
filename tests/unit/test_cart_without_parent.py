"""A feed without ``parent_order_id`` still shows its carts: one instant, one decision.

Some networks (CJ-style feeds) send each item of a cart as its own order and no parent
id. A buyer who cancels a seven-item cart then arrives as seven cancels stamped with the
same ``occurred_at``; counted as seven, a small publisher's single cancelled cart read as
"7 cancel invalidations in 5 min where almost none are normal". Cancels and refunds of
one publisher at one instant now count once; the same number at different instants, and
a network's fraud decisions (often taken in batches), still count one by one.
"""

from __future__ import annotations

from tests.synth import START, Stream

PUB = "cj-small"
AT = START + 5 * 3600


def _stream(reason: str, same_instant: bool) -> Stream:
    s = Stream(seed=5, publishers=80, hours=8, orders_per_hour=3000)
    s.baseline()
    for h in range(8):  # the small publisher: an order an hour, none invalidated
        s.order(START + h * 3600 + 600, PUB)
    for i in range(7):  # seven items, no parent id, paid a few minutes before
        t = AT + (0 if same_instant else 20 * i)
        oid = s._id("o")
        s.event(t - 300, PUB, oid, "created")
        s.event(t - 290, PUB, oid, "paid")
        s.event(t, PUB, oid, "invalidated", reason)
    return s


def _alerts(s: Stream) -> list[str]:
    mon = s.replay()
    return [
        a.summary
        for a in mon.take_alerts()
        if a.kind == "publisher_spike" and a.status == "firing" and a.publisher_id == PUB
    ]


def test_a_cart_cancelled_at_one_instant_is_one_decision():
    assert _alerts(_stream("cancel", same_instant=True)) == []


def test_the_same_cancels_at_separate_instants_are_still_a_burst():
    assert _alerts(_stream("cancel", same_instant=False)), "seven separate cancels"


def test_fraud_decided_at_one_instant_still_counts_by_order():
    assert _alerts(_stream("fraud", same_instant=True)), "a batch of fraud decisions"
