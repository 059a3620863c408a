"""The durable state of delivery, in one SQLite file (standard library ``sqlite3``).

- ``accepted``: every alert record the pipeline accepted, until its alert is done;
- ``closed``: alert ids whose resolved record was handled (a redelivered record is ignored);
- ``groups``: the flush timer of each aggregation group;
- ``nflog``: per (receiver, group), what was last notified (``decide.Entry``);
- ``notified``: every (receiver, alert_id, status, seq) ever queued: it is never queued twice;
- ``outbox``: deliveries queued and not yet acknowledged (``pending``), or given up on
  (``dead``: retries ran out; ``rejected``: the receiver refused it with a 4xx).

A notification's outbox rows, notified rows and nflog entry are written in one
transaction, before any request is made; a row leaves the outbox only when its receiver
acknowledged it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from alerts.decide import Entry
from alerts.notice import Delivery, ItemKey
from monitor.model import Alert

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accepted (
    alert_id TEXT NOT NULL, status TEXT NOT NULL, body BLOB NOT NULL, accepted_at REAL NOT NULL,
    PRIMARY KEY (alert_id, status));
CREATE TABLE IF NOT EXISTS closed (alert_id TEXT PRIMARY KEY, closed_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS groups (
    group_key TEXT PRIMARY KEY, created_at REAL NOT NULL, next_flush REAL NOT NULL);
CREATE TABLE IF NOT EXISTS nflog (
    receiver TEXT NOT NULL, group_key TEXT NOT NULL, firing TEXT NOT NULL,
    resolved TEXT NOT NULL, at REAL NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (receiver, group_key));
CREATE TABLE IF NOT EXISTS notified (
    receiver TEXT NOT NULL, alert_id TEXT NOT NULL, status TEXT NOT NULL, seq INTEGER NOT NULL,
    queued_at REAL NOT NULL, delivered_at REAL,
    PRIMARY KEY (receiver, alert_id, status, seq));
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, receiver TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE, items TEXT NOT NULL, body BLOB NOT NULL,
    created_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', last_error TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (state, receiver, id);
"""

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(Alert)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    receiver: str
    key: str
    items: tuple[ItemKey, ...]
    body: dict
    created_at: float
    attempts: int
    next_at: float
    state: str
    last_error: str


class OutboxError(Exception):
    """The outbox file cannot be used: unreadable, or held by another process."""


class Store:
    """One process at a time: a file store is opened in SQLite's exclusive locking mode,
    so a second sender over the same file fails at once instead of sending twice."""

    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        try:
            if path != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self.db = sqlite3.connect(path, isolation_level=None, timeout=0.5)
            if path != ":memory:":
                self.db.execute("PRAGMA locking_mode=EXCLUSIVE")
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(_SCHEMA)
            # a write now takes the exclusive lock for the connection's life
            self.db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?), ('opened_by_pid', ?)",
                (str(SCHEMA_VERSION), str(os.getpid())),
            )
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                raise OutboxError(f"outbox {path} is in use by another process") from None
            raise OutboxError(f"cannot open outbox {path}: {exc}") from None
        except OSError as exc:
            raise OutboxError(f"cannot open outbox {path}: {exc.strerror or exc}") from None
        self._depth: dict[tuple[str, str], int] = {}
        self._recount()

    def close(self) -> None:
        self.db.close()

    def _tx(self) -> sqlite3.Connection:
        """``with store._tx() as db:`` is one transaction (committed, or rolled back)."""
        return _Tx(self.db)  # type: ignore[return-value]

    # -- accepted alerts ---------------------------------------------------------------
    def save_alert(self, alert: Alert, now: float) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO accepted VALUES (?, ?, ?, ?)",
                (alert.alert_id, alert.status, _enc.encode(alert), now),
            )

    def load_alerts(self) -> list[tuple[Alert, float]]:
        rows = self.db.execute(
            "SELECT body, accepted_at FROM accepted ORDER BY accepted_at, status"
        ).fetchall()
        return [(_dec.decode(b), t) for b, t in rows]

    def close_alert(self, alert_id: str, now: float) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM accepted WHERE alert_id = ?", (alert_id,))
            db.execute("INSERT OR IGNORE INTO closed VALUES (?, ?)", (alert_id, now))

    def is_closed(self, alert_id: str) -> bool:
        q = "SELECT 1 FROM closed WHERE alert_id = ?"
        return self.db.execute(q, (alert_id,)).fetchone() is not None

    # -- group timers -------------------------------------------------------------------
    def save_group(self, key: str, created_at: float, next_flush: float) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO groups VALUES (?, ?, ?)", (key, created_at, next_flush)
        )

    def delete_group(self, key: str) -> None:
        self.db.execute("DELETE FROM groups WHERE group_key = ?", (key,))

    def load_groups(self) -> dict[str, tuple[float, float]]:
        rows = self.db.execute("SELECT group_key, created_at, next_flush FROM groups")
        return {k: (c, n) for k, c, n in rows}

    # -- notification log ---------------------------------------------------------------
    def entry(self, receiver: str, group_key: str) -> Entry | None:
        row = self.db.execute(
            "SELECT firing, resolved, at, seq FROM nflog WHERE receiver = ? AND group_key = ?",
            (receiver, group_key),
        ).fetchone()
        if row is None:
            return None
        return Entry(frozenset(json.loads(row[0])), frozenset(json.loads(row[1])), row[2], row[3])

    def already_notified(self, receiver: str, keys: Iterable[ItemKey]) -> set[ItemKey]:
        out = set()
        for aid, status, seq in keys:
            if self.db.execute(
                "SELECT 1 FROM notified WHERE receiver = ? AND alert_id = ? AND status = ?"
                " AND seq = ?",
                (receiver, aid, status, seq),
            ).fetchone():
                out.add((aid, status, seq))
        return out

    def record(
        self,
        receiver: str,
        group_key: str,
        entry: Entry,
        deliveries: list[Delivery],
        now: float,
        queued_at: float,
    ) -> None:
        """One notification: its deliveries into the outbox, its items into ``notified``,
        the new nflog entry: all or nothing."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO nflog VALUES (?, ?, ?, ?, ?, ?)",
                (receiver, group_key, json.dumps(sorted(entry.firing)),
                 json.dumps(sorted(entry.resolved)), entry.at, entry.seq),
            )  # fmt: skip
            for d in deliveries:
                db.executemany(
                    "INSERT INTO notified VALUES (?, ?, ?, ?, ?, NULL)",
                    [(receiver, a, s, q, now) for a, s, q in d.items],
                )
                db.execute(
                    "INSERT INTO outbox (receiver, idempotency_key, items, body, created_at,"
                    " next_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (receiver, d.key, json.dumps(d.items), _enc.encode(d.body), queued_at,
                     queued_at),
                )  # fmt: skip
        for _ in deliveries:
            self._bump(receiver, "pending", 1)

    # -- outbox -------------------------------------------------------------------------
    def pending(self) -> list[OutboxRow]:
        rows = self.db.execute(
            "SELECT id, receiver, idempotency_key, items, body, created_at, attempts, next_at,"
            " state, last_error FROM outbox WHERE state = 'pending' ORDER BY id"
        ).fetchall()
        return [_row(r) for r in rows]

    def rows(self, state: str | None = None) -> list[OutboxRow]:
        q = (
            "SELECT id, receiver, idempotency_key, items, body, created_at, attempts, next_at,"
            " state, last_error FROM outbox"
        )
        rows = (
            self.db.execute(q + " WHERE state = ? ORDER BY id", (state,))
            if state
            else (self.db.execute(q + " ORDER BY id"))
        )
        return [_row(r) for r in rows]

    def ack(self, row: OutboxRow, now: float) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM outbox WHERE id = ?", (row.id,))
            db.executemany(
                "UPDATE notified SET delivered_at = ? WHERE receiver = ? AND alert_id = ?"
                " AND status = ? AND seq = ?",
                [(now, row.receiver, a, s, q) for a, s, q in row.items],
            )
        self._bump(row.receiver, "pending", -1)

    def retry_later(self, row: OutboxRow, next_at: float, error: str) -> None:
        self.db.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ?",
            (next_at, error, row.id),
        )

    def give_up(self, row: OutboxRow, state: str, error: str) -> None:
        self.db.execute(
            "UPDATE outbox SET attempts = attempts + 1, state = ?, last_error = ? WHERE id = ?",
            (state, error, row.id),
        )
        self._bump(row.receiver, "pending", -1)
        self._bump(row.receiver, state, 1)

    def depth(self) -> dict[tuple[str, str], int]:
        """(receiver, state) -> outbox rows; kept in memory, safe to read from a scrape."""
        return dict(self._depth)

    def delivered(self, receiver: str) -> list[ItemKey]:
        rows = self.db.execute(
            "SELECT alert_id, status, seq FROM notified WHERE receiver = ?"
            " AND delivered_at IS NOT NULL ORDER BY delivered_at, alert_id",
            (receiver,),
        )
        return [(a, s, q) for a, s, q in rows]

    def _recount(self) -> None:
        c: Counter[tuple[str, str]] = Counter()
        for rcv, state, n in self.db.execute(
            "SELECT receiver, state, count(*) FROM outbox GROUP BY receiver, state"
        ):
            c[(rcv, state)] = n
        self._depth = dict(c)

    def _bump(self, receiver: str, state: str, n: int) -> None:
        key = (receiver, state)
        self._depth = {**self._depth, key: self._depth.get(key, 0) + n}


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def _row(r: tuple) -> OutboxRow:
    items = tuple((a, s, int(q)) for a, s, q in json.loads(r[3]))
    return OutboxRow(r[0], r[1], r[2], items, json.loads(r[4]), r[5], r[6], r[7], r[8], r[9])
