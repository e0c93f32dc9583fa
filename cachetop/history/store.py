"""The history file: closed buckets and the predictions made for them, in SQLite in the state dir.

One row per instance and bucket: the headline metrics as JSON, and the top keys and prefixes
with their counts packed and zlib-compressed in one blob (a row of 200 keys and 200 prefixes is
a few KB; docs/trends.md has the measured size). Each closed bucket is committed in its own
transaction the moment it closes, so a restart loses at most the bucket that was still open.

The file never grows past `max_bytes`: after every write the oldest buckets (of any instance)
are deleted until it fits, and `auto_vacuum = FULL` gives the freed pages back to the file
system at once. Buckets older than `retention` go the same way.

One process writes (the one holding `history.lock`, see HistoryLock); any other reads the file,
so a dashboard next to a daemon shows the daemon's history instead of keeping a second one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import struct
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from cachetop.history.bucket import BucketRecord
from cachetop.history.config import HistorySettings

HISTORY_FILE = "history.sqlite3"
LOCK_FILE = "history.lock"
MAX_KEY_BYTES = 1024  # longer keys are not kept (a row of megabyte keys would blow the cap)
_ENTRY = struct.Struct("<HI")  # key length, count

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bucket (
    instance TEXT NOT NULL,
    bucket_s REAL NOT NULL,
    idx INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    events INTEGER NOT NULL,
    covered_s REAL NOT NULL,
    top BLOB NOT NULL,
    PRIMARY KEY (instance, bucket_s, idx)
);
CREATE INDEX IF NOT EXISTS bucket_age ON bucket (idx);
CREATE TABLE IF NOT EXISTS prediction (
    instance TEXT NOT NULL,
    bucket_s REAL NOT NULL,
    idx INTEGER NOT NULL,
    predictor TEXT NOT NULL,
    keys BLOB NOT NULL,
    k INTEGER,
    precision REAL,
    PRIMARY KEY (instance, bucket_s, idx, predictor)
);
"""


def pack(lists: Sequence[Sequence[tuple[bytes, int]]]) -> bytes:
    out = bytearray()
    for entries in lists:
        kept = [(k, c) for k, c in entries if len(k) <= MAX_KEY_BYTES]
        out += struct.pack("<I", len(kept))
        for key, count in kept:
            out += _ENTRY.pack(len(key), max(0, min(int(count), 0xFFFFFFFF)))
            out += key
    return zlib.compress(bytes(out), 6)


def unpack(blob: bytes) -> list[tuple[tuple[bytes, int], ...]]:
    data = zlib.decompress(blob)
    lists: list[tuple[tuple[bytes, int], ...]] = []
    pos = 0
    while pos < len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
        entries = []
        for _ in range(n):
            size, count = _ENTRY.unpack_from(data, pos)
            pos += _ENTRY.size
            entries.append((bytes(data[pos : pos + size]), count))
            pos += size
        lists.append(tuple(entries))
    return lists


class HistoryLock:
    """Who writes the history: an flock on `history.lock` in the state dir (its own file, so it
    never contends with the alerts' lock on the directory). `held` is False when another process
    (a daemon) writes: this one then only reads."""

    def __init__(self, state_dir: Path) -> None:
        self.held = False
        self.problem: str | None = None  # why this process cannot write (not set when another one does)
        self._fd: int | None = None
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.held = True
        except BlockingIOError:  # another process (a daemon) writes the history
            self.close()
        except OSError as exc:  # a read-only or full state dir: this process cannot write it
            self.problem = f"{state_dir / LOCK_FILE}: {exc.strerror or type(exc).__name__}"
            self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.held = False


class HistoryStore:
    def __init__(
        self,
        state_dir: Path,
        settings: HistorySettings,
        *,
        writable: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(state_dir) / HISTORY_FILE
        self.settings = settings
        self.writable = writable
        self.clock = clock
        self._db: sqlite3.Connection | None = None

    # --- the connection -----------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection | None:
        if self._db is not None:
            return self._db
        if self.writable:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Used from the history worker thread (and read from others, one at a time).
            db = sqlite3.connect(str(self.path), isolation_level=None, timeout=5.0, check_same_thread=False)
            db.execute("PRAGMA auto_vacuum = FULL")  # only takes on a new file: before any table
            db.execute(
                "PRAGMA synchronous = NORMAL"
            )  # survives a crash of cachetop; one fsync less per bucket
            db.executescript(_SCHEMA)
        elif self.path.exists():
            db = sqlite3.connect(
                f"file:{self.path}?mode=ro",
                uri=True,
                isolation_level=None,
                timeout=5.0,
                check_same_thread=False,
            )
        else:
            return None
        self._db = db
        return db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def size_bytes(self) -> int:
        db = self._conn()
        if db is None:
            return 0
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        return int(pages) * int(db.execute("PRAGMA page_size").fetchone()[0])

    # --- writing -------------------------------------------------------------------------------

    def add(self, record: BucketRecord) -> None:
        self.add_many([record])

    def add_many(self, records: Sequence[BucketRecord]) -> None:
        """Stores closed buckets (one transaction), then keeps the file within retention and cap."""
        db = self._conn()
        assert db is not None and self.writable
        rows = [
            (
                r.instance,
                r.bucket_s,
                r.index,
                json.dumps({k: round(v, 6) for k, v in r.metrics.items()}),
                r.events,
                r.covered_s,
                pack([r.keys, r.prefixes]),
            )
            for r in records
        ]
        with _transaction(db):
            db.executemany("INSERT OR REPLACE INTO bucket VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        self.prune()

    def prune(self) -> int:
        """Drops buckets and predictions past retention, then the oldest of either until the file
        fits max_bytes (predictions count: a prediction for a bucket that never closed, or for
        one ahead, is a row like any other). Returns the buckets dropped."""
        db = self._conn()
        assert db is not None
        dropped = 0
        cutoff = self.clock() - self.settings.retention
        with _transaction(db):
            dropped += db.execute("DELETE FROM bucket WHERE (idx + 1) * bucket_s <= ?", (cutoff,)).rowcount
            db.execute("DELETE FROM prediction WHERE (idx + 1) * bucket_s <= ?", (cutoff,))
        while self.size_bytes() > self.settings.max_bytes:
            rows = db.execute(
                "SELECT (SELECT COUNT(*) FROM bucket) + (SELECT COUNT(*) FROM prediction)"
            ).fetchone()[0]
            if rows == 0:
                break
            oldest = db.execute(  # the oldest twentieth of the rows, buckets and predictions alike
                "SELECT start FROM (SELECT idx * bucket_s AS start FROM bucket"
                " UNION ALL SELECT idx * bucket_s AS start FROM prediction)"
                " ORDER BY start LIMIT 1 OFFSET ?",
                (max(0, rows // 20 - 1),),
            ).fetchone()[0]
            with _transaction(db):
                dropped += db.execute("DELETE FROM bucket WHERE idx * bucket_s <= ?", (oldest,)).rowcount
                db.execute("DELETE FROM prediction WHERE idx * bucket_s <= ?", (oldest,))
        return dropped

    def put_predictions(self, made: Sequence[tuple[str, float, int, dict[str, list[bytes]]]]) -> None:
        """(instance, bucket_s, bucket index, predictor -> keys) for each prediction, in one transaction."""
        db = self._conn()
        assert db is not None
        rows = [
            (instance, bucket_s, index, predictor, pack([[(k, 0) for k in keys]]))
            for instance, bucket_s, index, tops in made
            for predictor, keys in tops.items()
        ]
        with _transaction(db):
            db.executemany(
                "INSERT OR REPLACE INTO prediction (instance, bucket_s, idx, predictor, keys)"
                " VALUES (?, ?, ?, ?, ?)",
                rows,
            )
        self.prune()

    def score_predictions(self, records: Sequence[BucketRecord], k: int) -> list[dict[str, float]]:
        """Scores the predictions made for these buckets against their real top keys (one
        transaction); per record, predictor -> precision@k."""
        from cachetop.analysis.predict import precision_at_k

        db = self._conn()
        assert db is not None
        out: list[dict[str, float]] = []
        with _transaction(db):
            for record in records:
                actual = [key for key, _ in record.keys]
                found: dict[str, float] = {}
                rows = db.execute(
                    "SELECT predictor, keys FROM prediction WHERE instance = ? AND bucket_s = ? AND idx = ?",
                    (record.instance, record.bucket_s, record.index),
                ).fetchall()
                for predictor, blob in rows:
                    value = precision_at_k([key for key, _ in unpack(blob)[0]], actual, k)
                    if value is not None:
                        found[predictor] = value
                    db.execute(
                        "UPDATE prediction SET k = ?, precision = ? WHERE instance = ? AND bucket_s = ?"
                        " AND idx = ? AND predictor = ?",
                        (k, value, record.instance, record.bucket_s, record.index, predictor),
                    )
                out.append(found)
        return out

    # --- reading -------------------------------------------------------------------------------

    def instances(self) -> list[str]:
        db = self._conn()
        if db is None:
            return []
        return [r[0] for r in db.execute("SELECT DISTINCT instance FROM bucket ORDER BY instance")]

    def buckets(self, instance: str, bucket_s: float, *, since: int | None = None) -> dict[int, BucketRecord]:
        db = self._conn()
        if db is None:
            return {}
        rows = db.execute(
            "SELECT idx, metrics, events, covered_s, top FROM bucket WHERE instance = ? AND bucket_s = ?"
            " AND idx >= ? ORDER BY idx",
            (instance, bucket_s, since if since is not None else -(2**62)),
        ).fetchall()
        out: dict[int, BucketRecord] = {}
        for idx, metrics, events, covered, blob in rows:
            keys, prefixes = unpack(blob)
            out[idx] = BucketRecord(
                instance, idx, bucket_s, keys, prefixes, json.loads(metrics), events, covered
            )
        return out

    def precision(
        self, instance: str, bucket_s: float, *, last: int | None = None
    ) -> dict[str, list[tuple[int, float]]]:
        """Per predictor, (bucket index, precision@k) of scored predictions, oldest first."""
        db = self._conn()
        if db is None:
            return {}
        rows = db.execute(
            "SELECT predictor, idx, precision FROM prediction WHERE instance = ? AND bucket_s = ?"
            " AND precision IS NOT NULL ORDER BY idx",
            (instance, bucket_s),
        ).fetchall()
        out: dict[str, list[tuple[int, float]]] = {}
        for predictor, idx, value in rows:
            out.setdefault(predictor, []).append((idx, value))
        if last is not None:
            out = {p: v[-last:] for p, v in out.items()}
        return out

    def predicted_keys(
        self, instance: str, bucket_s: float, index: int, predictor: str
    ) -> list[bytes] | None:
        db = self._conn()
        if db is None:
            return None
        row = db.execute(
            "SELECT keys FROM prediction WHERE instance = ? AND bucket_s = ? AND idx = ? AND predictor = ?",
            (instance, bucket_s, index, predictor),
        ).fetchone()
        return [k for k, _ in unpack(row[0])[0]] if row else None


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
