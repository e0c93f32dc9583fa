"""The outbox's SQLite layer: its schema, and the transaction helper that records each change.

Every write runs in one transaction through `_in_transaction`; while the state dir refuses
writes, the `_Recording` connection also writes down each statement (a `Step`) so the outbox
can replay them onto the file later. `is_storage_error` tells a refusing disk from a bug in our SQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS message (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL,
    deadline REAL NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    last_error TEXT,
    finished REAL,
    remote_id TEXT,
    thread_of INTEGER
);
CREATE INDEX IF NOT EXISTS message_queue ON message (channel, state, id);
CREATE TABLE IF NOT EXISTS message_episode (
    message_id INTEGER NOT NULL,
    episode TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS message_episode_by_episode ON message_episode (episode, message_id);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

Step = tuple[str, Any, bool]  # (sql, args or rows, executemany?)


class _Recording:
    """A connection that also writes down every statement, so it can be replayed on the file."""

    def __init__(self, db: sqlite3.Connection, steps: list[Step] | None) -> None:
        self.db = db
        self.steps = steps

    def execute(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        cur = self.db.execute(sql, args)
        if self.steps is not None:
            self.steps.append((sql, tuple(args), False))
        return cur

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = [tuple(r) for r in rows]
        self.db.executemany(sql, rows)
        if self.steps is not None:
            self.steps.append((sql, rows, True))


def is_storage_error(exc: sqlite3.DatabaseError) -> bool:
    """The disk or the file refused (full, read-only, I/O error), not a bug in our SQL."""
    return not isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError | sqlite3.InterfaceError)


def _in_transaction(db: sqlite3.Connection, change: Callable[[_Recording], T], steps: list[Step] | None) -> T:
    db.execute("BEGIN IMMEDIATE")
    try:
        result = change(_Recording(db, steps))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return result
