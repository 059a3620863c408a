from __future__ import annotations

import itertools

from monitor.windows import ORDERS, RAW, TOTAL, Windows

W = 300
_buyers = itertools.count()


def contrib(pub="p", reason=-1, new_order=False, buyer=None):
    return (buyer if buyer is not None else next(_buyers), pub, new_order, reason, False)


def test_window_closes_only_when_watermark_passes_its_end():
    win = Windows(width_s=W, lateness_s=60)
    win.add(0, 10.0, contrib(reason=0))
    assert win.advance() == []
    win.add(0, W + 30.0, contrib())  # watermark = W - 30: window 0 still open
    assert win.advance() == []
    win.add(0, W + 61.0, contrib())  # watermark = W + 1: window 0 closes
    closed = win.advance()
    assert [a.index for a in closed] == [0]
    assert closed[0].pubs["p"][TOTAL] == 1


def test_event_for_a_closed_window_is_late_and_counted():
    win = Windows(width_s=W, lateness_s=60)
    win.add(0, 10.0, contrib())
    win.add(0, 2 * W + 100.0, contrib())
    win.advance()
    assert win.add(0, 20.0, contrib(new_order=True)) == "late"
    assert win.late_total == 1


def test_a_handful_of_future_events_does_not_move_the_watermark():
    win = Windows(width_s=W, lateness_s=60, future_tolerance_s=900, jump_confirm=20)
    win.add(0, 100.0, contrib())
    for _ in range(5):  # a producer writing local time as UTC: +8 h
        assert win.add(0, 100.0 + 8 * 3600, contrib()) == "held"
    win.add(0, 120.0, contrib())  # on-time traffic continues
    assert win.advance() == []  # nothing closed: the clock is still at 120 s
    assert win.future_total == 5
    assert win.sources[0].clock == 120.0


def test_a_real_jump_in_traffic_is_accepted_after_a_run_of_events():
    win = Windows(width_s=W, lateness_s=60, future_tolerance_s=900, jump_confirm=20)
    win.add(0, 100.0, contrib())
    for i in range(20):
        win.add(0, 7200.0 + i, contrib(reason=1))
    closed = win.advance()
    assert closed and closed[0].index == 0
    assert win.future_total == 0
    assert win.open[24].pubs["p"][TOTAL] == 20  # the held events were placed, not lost


def test_watermark_is_the_minimum_over_active_sources_and_ignores_idle_ones():
    win = Windows(width_s=W, lateness_s=0, idle_after_s=900)
    win.add(0, 10.0, contrib())
    win.add(1, 10.0, contrib())
    win.add(0, 2 * W + 1.0, contrib())
    assert win.advance() == []  # source 1 still at 10 s holds time back
    win.add(0, 1400.0, contrib())  # source 1 now trails by > idle_after: idle
    assert [a.index for a in win.advance()] == [0, 1, 2, 3]


def test_orders_and_invalidations_land_in_their_event_time_window():
    win = Windows(width_s=W, lateness_s=0)
    win.add(0, 10.0, contrib(new_order=True))
    win.add(0, W + 10.0, contrib(reason=2))
    win.add(0, 3 * W, contrib())
    closed = win.advance()
    assert closed[0].pubs["p"][ORDERS] == 1 and closed[1].pubs["p"][2] == 1


def test_sub_orders_of_one_buyer_order_count_once_per_reason():
    win = Windows(width_s=W, lateness_s=0)
    for _ in range(4):  # a four-item cart cancelled at once
        win.add(0, 10.0, contrib(reason=1, buyer="parent-1"))
    win.add(0, 11.0, contrib(reason=1, buyer="parent-2"))
    win.add(0, 3 * W, contrib())
    vec = win.advance()[0].pubs["p"]
    assert vec[1] == 2 and vec[TOTAL] == 2 and vec[RAW] == 5
