"""Whether a group's flush notifies a receiver: a pure function of what it was last told.

After Alertmanager's ``notify.DedupStage.needsUpdate``: the notification log keeps, per
(receiver, group), the alert ids last notified as firing and as resolved, when, and how many
repeat reminders were sent. ``needs_update`` compares that entry with the group now.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Decision(StrEnum):
    SKIP = "skip"  # nothing the receiver does not know yet
    NOTIFY = "notify"  # something new fired, or something it was told about resolved
    REPEAT = "repeat"  # nothing new, but alerts still fire and repeat_interval has passed


@dataclass(frozen=True, slots=True)
class Entry:
    """What one receiver was told about one group, and when (the notification log)."""

    firing: frozenset[str]
    resolved: frozenset[str]
    at: float
    seq: int = 0  # repeat reminders sent so far


def needs_update(
    entry: Entry | None,
    firing: frozenset[str],
    resolved: frozenset[str],
    *,
    send_resolved: bool,
    repeat_interval: float,
    now: float,
) -> Decision:
    """``firing``/``resolved``: ids of the group's alerts by latest status, after inhibition
    and silences. A resolved alert the receiver was never told about counts as news when it
    takes resolved notices (a backfill replays incidents that began and ended between two
    flushes); without ``send_resolved`` resolved alerts are not its business at all."""
    if not send_resolved:
        resolved = frozenset()
    told_firing = entry.firing if entry else frozenset()
    told_resolved = entry.resolved if entry else frozenset()
    if firing - told_firing:
        return Decision.NOTIFY
    if resolved - told_resolved:
        return Decision.NOTIFY
    if entry is None or not firing or repeat_interval <= 0:
        return Decision.SKIP
    if now - entry.at >= repeat_interval:
        return Decision.REPEAT
    return Decision.SKIP
