"""``needs_update``: one commented row per case (after Alertmanager's dedup stage tests)."""

from __future__ import annotations

import pytest

from alerts.decide import Decision, Entry, needs_update

H = 3600.0
NOTIFY, REPEAT, SKIP = Decision.NOTIFY, Decision.REPEAT, Decision.SKIP


def E(firing=(), resolved=(), at=0.0, seq=0):  # noqa: N802 - a table reads better short
    return Entry(frozenset(firing), frozenset(resolved), at, seq)


ROWS = [
    # (entry, firing, resolved, send_resolved, repeat, now, expected), why
    (None, {"a"}, set(), True, 4 * H, 10.0, NOTIFY),  # never told anything, a fires
    (None, set(), set(), True, 4 * H, 10.0, SKIP),  # never told anything, nothing there
    (None, set(), {"a"}, True, 4 * H, 10.0, NOTIFY),  # fired and resolved before a flush
    (None, set(), {"a"}, False, 4 * H, 10.0, SKIP),  # ...but resolved notices are off
    (E({"a"}), {"a"}, set(), True, 4 * H, 60.0, SKIP),  # told, nothing new, too soon
    (E({"a"}), {"a", "b"}, set(), True, 4 * H, 60.0, NOTIFY),  # b is new
    (E({"a", "b"}), {"a"}, set(), True, 4 * H, 60.0, SKIP),  # b left (inhibited): no news
    (E({"a"}), set(), {"a"}, True, 4 * H, 60.0, NOTIFY),  # told a fires; a resolved
    (E({"a"}), set(), {"a"}, False, 4 * H, 60.0, SKIP),  # ...resolved notices off
    (E({"a"}, {"b"}), {"a"}, {"b"}, True, 4 * H, 60.0, SKIP),  # b's resolution was told
    (E({"a"}, at=0.0), {"a"}, set(), True, 4 * H, 4 * H, REPEAT),  # exactly repeat_interval
    (E({"a"}, at=0.0), {"a"}, set(), True, 4 * H, 4 * H - 1, SKIP),  # one second early
    (E({"a"}, at=0.0, seq=3), {"a"}, set(), True, 4 * H, 9 * H, REPEAT),  # later reminders
    (E({"a"}, at=0.0), {"a"}, set(), True, 0.0, 99 * H, SKIP),  # repeat_interval 0: never
    (E({"a"}, {"b"}, at=0.0), set(), {"b"}, True, 4 * H, 9 * H, SKIP),  # nothing fires: no repeat
    (E({"a"}, at=0.0), {"a", "c"}, set(), True, 4 * H, 9 * H, NOTIFY),  # news beats a reminder
]


@pytest.mark.parametrize("entry,firing,resolved,send_resolved,repeat,now,expected", ROWS)
def test_needs_update_table(entry, firing, resolved, send_resolved, repeat, now, expected):
    got = needs_update(entry, frozenset(firing), frozenset(resolved),
                       send_resolved=send_resolved, repeat_interval=repeat, now=now)  # fmt: skip
    assert got is expected
