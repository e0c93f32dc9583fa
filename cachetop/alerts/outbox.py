"""The SQLite outbox: every notification is written here before any attempt to send it.

One row per message per channel. A row moves pending -> sending -> delivered, or back to
pending with a later next_attempt, or ends as failed (a permanent 4xx), expired (the deadline
passed) or skipped (a resolved notice whose firing notice never reached that channel).
Delivered rows are never picked again, so nothing delivered is sent twice; the only window
is a crash between the server's "200 OK" and the commit that records it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PENDING, SENDING, DELIVERED, FAILED, EXPIRED, SKIPPED = (
    "pending",
    "sending",
    "delivered",
    "failed",
    "expired",
    "skipped",
)
FINAL_STATES = (DELIVERED, FAILED, EXPIRED, SKIPPED)

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


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    channel: str
    kind: str  # firing (also carries repeats) | resolved | test
    payload: dict[str, Any]
    created: float
    deadline: float
    state: str
    attempts: int
    next_attempt: float
    last_error: str | None
    finished: float | None
    remote_id: str | None  # Slack's message ts, for threading the resolved notice
    thread_of: int | None  # the firing message a resolved notice answers

    @property
    def episodes(self) -> list[str]:
        return [a["episode"] for a in self.payload.get("alerts", ())]


class Outbox:
    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.clock = clock
        # isolation_level=None: we commit each state change at once; a crash loses nothing written.
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    # --- writing --------------------------------------------------------------------------------

    def enqueue(
        self,
        channel: str,
        kind: str,
        payload: dict[str, Any],
        *,
        deadline_s: float,
        thread_of: int | None = None,
    ) -> int:
        now = self.clock()
        with self._transaction():
            cur = self._db.execute(
                "INSERT INTO message (channel, kind, payload, created, deadline, state,"
                " next_attempt, thread_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (channel, kind, json.dumps(payload), now, now + deadline_s, PENDING, now, thread_of),
            )
            message_id = int(cur.lastrowid or 0)
            self._db.executemany(
                "INSERT INTO message_episode (message_id, episode) VALUES (?, ?)",
                [(message_id, a["episode"]) for a in payload.get("alerts", ())],
            )
        return message_id

    def mark_sending(self, message_id: int) -> None:
        self._db.execute(
            "UPDATE message SET state = ?, attempts = attempts + 1 WHERE id = ? AND state = ?",
            (SENDING, message_id, PENDING),
        )

    def mark_delivered(self, message_id: int, remote_id: str | None = None) -> None:
        self._db.execute(
            "UPDATE message SET state = ?, finished = ?, remote_id = ?, last_error = NULL WHERE id = ?",
            (DELIVERED, self.clock(), remote_id, message_id),
        )

    def mark_retry(self, message_id: int, error: str, next_attempt: float) -> None:
        self._db.execute(
            "UPDATE message SET state = ?, last_error = ?, next_attempt = ? WHERE id = ?",
            (PENDING, error, next_attempt, message_id),
        )

    def mark_final(self, message_id: int, state: str, error: str | None) -> None:
        assert state in (FAILED, EXPIRED, SKIPPED)
        self._db.execute(
            "UPDATE message SET state = ?, last_error = ?, finished = ? WHERE id = ?",
            (state, error, self.clock(), message_id),
        )

    def narrow_payload(self, message_id: int, payload: dict[str, Any]) -> None:
        self._db.execute("UPDATE message SET payload = ? WHERE id = ?", (json.dumps(payload), message_id))

    def recover(self) -> int:
        """At start-up: a row left 'sending' by a crash is sent again (its outcome is unknown)."""
        cur = self._db.execute("UPDATE message SET state = ? WHERE state = ?", (PENDING, SENDING))
        return cur.rowcount

    # --- reading --------------------------------------------------------------------------------

    def get(self, message_id: int) -> Message | None:
        rows = self._select("WHERE id = ?", (message_id,))
        return rows[0] if rows else None

    def head(self, channel: str) -> Message | None:
        """The oldest unfinished message of a channel: each channel delivers in order."""
        rows = self._select(
            "WHERE channel = ? AND state IN (?, ?) ORDER BY id LIMIT 1", (channel, PENDING, SENDING)
        )
        return rows[0] if rows else None

    def pending_channels(self) -> list[str]:
        cur = self._db.execute(
            "SELECT DISTINCT channel FROM message WHERE state IN (?, ?)", (PENDING, SENDING)
        )
        return sorted(r[0] for r in cur)

    def first_message_for(
        self, channel: str, episode: str, kinds: Sequence[str] = ("firing",)
    ) -> Message | None:
        marks = ",".join("?" * len(kinds))
        rows = self._select(
            f"WHERE channel = ? AND kind IN ({marks}) AND id IN"
            " (SELECT message_id FROM message_episode WHERE episode = ?) ORDER BY id LIMIT 1",
            (channel, *kinds, episode),
        )
        return rows[0] if rows else None

    def delivered_episodes(self, channel: str, episodes: Iterable[str]) -> set[str]:
        """Which of these episodes had a firing (or repeat) notice delivered to the channel."""
        found: set[str] = set()
        for episode in episodes:
            cur = self._db.execute(
                "SELECT 1 FROM message m JOIN message_episode e ON e.message_id = m.id"
                " WHERE e.episode = ? AND m.channel = ? AND m.kind = 'firing' AND m.state = ? LIMIT 1",
                (episode, channel, DELIVERED),
            )
            if cur.fetchone():
                found.add(episode)
        return found

    def last_delivery(self, channel: str) -> float | None:
        cur = self._db.execute(
            "SELECT MAX(finished) FROM message WHERE channel = ? AND state = ?", (channel, DELIVERED)
        )
        value = cur.fetchone()[0]
        return float(value) if value is not None else None

    def recent(self, limit: int = 50, states: Sequence[str] | None = None) -> list[Message]:
        if states:
            marks = ",".join("?" * len(states))
            return self._select(f"WHERE state IN ({marks}) ORDER BY id DESC LIMIT ?", (*states, limit))
        return self._select("ORDER BY id DESC LIMIT ?", (limit,))

    def counts(self) -> dict[str, int]:
        return {
            state: n for state, n in self._db.execute("SELECT state, COUNT(*) FROM message GROUP BY state")
        }

    # --- small persistent values (the engine's firing alerts) -----------------------------------

    def put_value(self, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def get_value(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # --- helpers --------------------------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def _select(self, where: str, args: tuple[Any, ...]) -> list[Message]:
        cur = self._db.execute(
            "SELECT id, channel, kind, payload, created, deadline, state, attempts, next_attempt, last_error,"
            f" finished, remote_id, thread_of FROM message {where}",
            args,
        )
        return [
            Message(
                r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12]
            )
            for r in cur
        ]


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
