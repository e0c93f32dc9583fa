"""The SQLite outbox: every notification is written here before any attempt to send it.

One row per message per channel. A row moves pending -> sending -> delivered, or back to
pending with a later next_attempt, or ends as failed (a permanent 4xx), expired (the deadline
passed) or skipped (a resolved notice whose firing notice never reached that channel).
Delivered rows are never picked again, so nothing delivered is sent twice; the only window
is a crash between the server's "200 OK" and the commit that records it.

A state dir that refuses writes (a full disk, a read-only remount, an I/O error) loses nothing
while the process runs: the outbox copies itself into memory, goes on there (so notices are
still delivered), keeps a journal of every change, and `persist()` replays the journal onto the
file once the disk takes writes again. Only a crash in that time loses what it held.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cachetop.alerts.outbox_sqlite import _SCHEMA, Step, T, _in_transaction, _Recording, is_storage_error

log = logging.getLogger("cachetop.alerts")

PENDING, SENDING, DELIVERED, FAILED, EXPIRED, SKIPPED = (
    "pending",
    "sending",
    "delivered",
    "failed",
    "expired",
    "skipped",
)
FINAL_STATES = (DELIVERED, FAILED, EXPIRED, SKIPPED)


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
    def __init__(
        self,
        path: Path,
        clock: Callable[[], float] = time.time,
        report: Callable[[str, int], None] | None = None,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.clock = clock
        self.report = report  # (line, logging level): the service logs it and shows it
        self.write_errors = 0  # writes (and write-back attempts) the state dir refused
        self.storage_error: str | None = None  # the last one, while the state lives in memory
        self.unpersisted_since: float | None = None  # wall clock
        self._memory: sqlite3.Connection | None = None  # the working copy while the file refuses writes
        self._journal: list[list[Step]] = []  # one entry per change made in memory, in order
        self._last_report = 0.0
        # isolation_level=None: we commit each state change at once; a crash loses nothing written.
        self._disk = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._disk_ready = False
        try:
            self._prepare_disk()
        except sqlite3.DatabaseError as exc:  # e.g. a new outbox on a full disk
            if not is_storage_error(exc):
                raise
            self._spill(exc)

    def _prepare_disk(self) -> None:
        self._disk.execute("PRAGMA journal_mode=WAL")
        self._disk.execute("PRAGMA synchronous=FULL")
        self._disk.executescript(_SCHEMA)
        self._disk_ready = True

    @property
    def _db(self) -> sqlite3.Connection:
        return self._memory if self._memory is not None else self._disk

    @property
    def unpersisted(self) -> int:
        """Changes (new messages, state changes) held only in memory."""
        return len(self._journal)

    def close(self) -> None:
        if self._memory is not None:
            self.persist()  # a last try: the disk may have room again
        if self._memory is not None:
            self._say(
                f"{self.path}: exiting with {self.unpersisted} alert change(s) never written"
                f" ({self.storage_error})",
                logging.ERROR,
            )
            self._memory.close()
        self._disk.close()

    # --- a state dir that refuses writes ----------------------------------------------------------

    def _write(self, change: Callable[[_Recording], T]) -> T:
        """Runs `change` in one transaction: on the file, or in memory while the file refuses."""
        if self._memory is None:
            try:
                return _in_transaction(self._disk, change, None)
            except sqlite3.DatabaseError as exc:
                if not is_storage_error(exc):
                    raise
                self._spill(exc)
        assert self._memory is not None
        steps: list[Step] = []
        result = _in_transaction(self._memory, change, steps)
        self._journal.append(steps)
        return result

    def _spill(self, exc: sqlite3.DatabaseError) -> None:
        memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        with contextlib.suppress(sqlite3.DatabaseError):  # a new file may have no schema yet
            self._disk.backup(memory)  # reading needs no space
        memory.executescript(_SCHEMA)
        self._memory = memory
        self.write_errors += 1
        self.storage_error = str(exc)
        self.unpersisted_since = self.clock()
        self._last_report = self.clock()
        self._say(
            f"cannot write the alert outbox {self.path} ({exc}): alert state is kept in memory and"
            " notices are still delivered from there; it is written back once the disk takes writes"
            " again (a crash before that loses it)",
            logging.ERROR,
        )

    def persist(self) -> bool:
        """Replays what changed in memory onto the file; True once the outbox is on the file again."""
        if self._memory is None:
            return True
        try:
            if not self._disk_ready:
                self._prepare_disk()
            self._disk.execute("BEGIN IMMEDIATE")
            for steps in self._journal:
                for sql, args, many in steps:
                    (self._disk.executemany if many else self._disk.execute)(sql, args)
            self._disk.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if self._disk.in_transaction:
                self._disk.execute("ROLLBACK")
            if not is_storage_error(exc):
                raise
            self.write_errors += 1
            self.storage_error = str(exc)
            if self.clock() - self._last_report >= 60:
                self._last_report = self.clock()
                self._say(
                    f"still cannot write the alert outbox {self.path} ({exc}):"
                    f" {self.unpersisted} change(s) in memory only",
                    logging.WARNING,
                )
            return False
        held = self.clock() - (self.unpersisted_since or self.clock())
        self._say(
            f"alert outbox {self.path} written again: {self.unpersisted} change(s) kept in memory"
            f" for {held:.0f}s are saved",
            logging.WARNING,
        )
        # Not closed here: a scrape in another thread may still be reading it; it closes when dropped.
        self._memory = None
        self._journal.clear()
        self.storage_error = None
        self.unpersisted_since = None
        return True

    def _say(self, line: str, level: int) -> None:
        if self.report is not None:
            self.report(line, level)
        else:
            log.log(level, line)

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

        def insert(db: _Recording) -> int:
            cur = db.execute(
                "INSERT INTO message (channel, kind, payload, created, deadline, state,"
                " next_attempt, thread_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (channel, kind, json.dumps(payload), now, now + deadline_s, PENDING, now, thread_of),
            )
            message_id = int(cur.lastrowid or 0)
            db.executemany(
                "INSERT INTO message_episode (message_id, episode) VALUES (?, ?)",
                [(message_id, a["episode"]) for a in payload.get("alerts", ())],
            )
            return message_id

        return self._write(insert)

    def mark_sending(self, message_id: int) -> None:
        self._update(
            "UPDATE message SET state = ?, attempts = attempts + 1 WHERE id = ? AND state = ?",
            (SENDING, message_id, PENDING),
        )

    def mark_delivered(self, message_id: int, remote_id: str | None = None) -> None:
        self._update(
            "UPDATE message SET state = ?, finished = ?, remote_id = ?, last_error = NULL WHERE id = ?",
            (DELIVERED, self.clock(), remote_id, message_id),
        )

    def mark_retry(self, message_id: int, error: str, next_attempt: float) -> None:
        self._update(
            "UPDATE message SET state = ?, last_error = ?, next_attempt = ? WHERE id = ?",
            (PENDING, error, next_attempt, message_id),
        )

    def mark_final(self, message_id: int, state: str, error: str | None) -> None:
        assert state in (FAILED, EXPIRED, SKIPPED)
        self._update(
            "UPDATE message SET state = ?, last_error = ?, finished = ? WHERE id = ?",
            (state, error, self.clock(), message_id),
        )

    def narrow_payload(self, message_id: int, payload: dict[str, Any]) -> None:
        self._update("UPDATE message SET payload = ? WHERE id = ?", (json.dumps(payload), message_id))

    def recover(self) -> int:
        """At start-up: a row left 'sending' by a crash is sent again (its outcome is unknown)."""
        return self._update("UPDATE message SET state = ? WHERE state = ?", (PENDING, SENDING))

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
        self._update("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def get_value(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # --- helpers --------------------------------------------------------------------------------

    def _update(self, sql: str, args: Sequence[Any]) -> int:
        """One write statement; returns the number of rows it changed."""
        return self._write(lambda db: db.execute(sql, args).rowcount)

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
