"""Recordings: every Snapshot, as a delta from the one before, zlib-compressed JSON in SQLite.

    recorder = Recorder.create("incident.ctrec")
    monitor.subscribe(recorder.on_snapshot)      # ... recorder.close()
    recording = Recording.open("incident.ctrec")
    recording[i]                                 # the i-th Snapshot, equal to the one recorded

A frame holds what changed since the previous frame, key by key, one level of dicts at a time
(an instance's metrics, facts, commands). Every KEYFRAME_EVERY-th frame is complete, so seeking
decodes at most that many frames. Floats survive JSON unchanged (repr round-trips), so a replay
shows the very values that were recorded. Per-owner `extras` (hot keys, ...) are not recorded:
they can be large and hold raw key names.
"""

from __future__ import annotations

import bisect
import json
import sqlite3
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cachetop.model import CommandStat, InstanceMetrics, Snapshot, Status

FORMAT = "cachetop-recording/1"
KEYFRAME_EVERY = 60
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS frames (
    seq INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    keyframe INTEGER NOT NULL,
    data BLOB NOT NULL
);
"""


class RecordingError(Exception):
    """A recording that cannot be written or read; the message says which file and why."""


# --- snapshot <-> plain dict --------------------------------------------------------------------


def snapshot_state(snap: Snapshot) -> dict[str, Any]:
    return {
        "time": snap.time,
        "window_s": snap.window_s,
        "order": [i.name for i in snap.instances],
        "instances": {i.name: _instance_state(i) for i in snap.instances},
    }


def _instance_state(inst: InstanceMetrics) -> dict[str, Any]:
    return {
        "kind": inst.kind,
        "address": inst.address,
        "status": str(inst.status),
        "error": inst.error,
        "metrics": dict(inst.metrics),
        "tags": list(inst.tags),
        "facts": dict(inst.facts),
        "memory_max_from": inst.memory_max_from,
        "commands": {
            name: [c.calls_per_sec, c.usec_per_call, c.failed_per_sec, c.p50_ms, c.p95_ms, c.p99_ms]
            for name, c in inst.commands.items()
        },
        "last_poll": inst.last_poll,
        "role": inst.role,
        "shard": inst.shard,
    }


def state_snapshot(state: dict[str, Any]) -> Snapshot:
    instances = []
    for name in state["order"]:
        i = state["instances"][name]
        instances.append(
            InstanceMetrics(
                name=name,
                kind=i["kind"],
                address=i["address"],
                status=Status(i["status"]),
                error=i["error"],
                metrics=dict(i["metrics"]),
                tags=tuple(i["tags"]),
                facts=dict(i["facts"]),
                memory_max_from=i["memory_max_from"],
                commands={k: CommandStat(*v) for k, v in i["commands"].items()},
                last_poll=i["last_poll"],
                role=i["role"],
                shard=i["shard"],
            )
        )
    return Snapshot(time=state["time"], window_s=state["window_s"], instances=tuple(instances))


# --- deltas -------------------------------------------------------------------------------------


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """{"s": {key: new value}, "n": {key: nested diff}, "d": [removed keys]}, empty parts left out."""
    changed: dict[str, Any] = {}
    nested: dict[str, Any] = {}
    for key, value in new.items():
        if key not in old:
            changed[key] = value
        elif old[key] != value or type(old[key]) is not type(value):
            if isinstance(value, dict) and isinstance(old[key], dict):
                nested[key] = diff(old[key], value)
            else:
                changed[key] = value
    out: dict[str, Any] = {}
    if changed:
        out["s"] = changed
    if nested:
        out["n"] = nested
    removed = [k for k in old if k not in new]
    if removed:
        out["d"] = removed
    return out


def patch(old: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    new = dict(old)
    for key in delta.get("d", ()):
        new.pop(key, None)
    new.update(delta.get("s", {}))
    for key, sub in delta.get("n", {}).items():
        new[key] = patch(old[key], sub)
    return new


def _pack(obj: Any) -> bytes:
    return zlib.compress(json.dumps(obj, separators=(",", ":")).encode(), 6)


def _unpack(blob: bytes) -> Any:
    return json.loads(zlib.decompress(blob))


# --- writing ------------------------------------------------------------------------------------


class Recorder:
    """A Monitor subscriber that appends every Snapshot to a recording file."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db = db
        self.path = path
        self.frames = 0
        self.bytes = 0
        self._last: dict[str, Any] | None = None

    @classmethod
    def create(cls, path: str | Path) -> Recorder:
        path = Path(path)
        if path.exists() and path.stat().st_size > 0:
            raise RecordingError(
                f"{path}: already exists (recordings are never overwritten; pick a new name)"
            )
        try:
            db = sqlite3.connect(path, isolation_level=None)
            db.executescript(SCHEMA)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("INSERT INTO meta VALUES ('format', ?)", (FORMAT,))
        except sqlite3.Error as exc:
            raise RecordingError(f"{path}: cannot write a recording here ({exc})") from None
        return cls(db, path)

    def on_snapshot(self, snap: Snapshot) -> None:
        state = snapshot_state(snap)
        key = self._last is None or self.frames % KEYFRAME_EVERY == 0
        data = _pack(state if key else diff(self._last or {}, state))
        self.db.execute(
            "INSERT INTO frames (seq, time, keyframe, data) VALUES (?, ?, ?, ?)",
            (self.frames, snap.time, int(key), data),
        )
        self._last = state
        self.frames += 1
        self.bytes += len(data)

    def close(self) -> None:
        self.db.close()


# --- reading ------------------------------------------------------------------------------------


class Recording:
    """Random access to a recording's Snapshots; stepping forward decodes one delta."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db = db
        self.path = path
        rows = db.execute("SELECT time, keyframe FROM frames ORDER BY seq").fetchall()
        self.times: list[float] = [t for t, _ in rows]
        self._keyframes = [i for i, (_, key) in enumerate(rows) if key]
        self._cached: tuple[int, dict[str, Any]] | None = None

    @classmethod
    def open(cls, path: str | Path) -> Recording:
        path = Path(path)
        if not path.is_file():
            raise RecordingError(f"{path}: no such recording")
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        except sqlite3.Error:
            raise RecordingError(f"{path}: not a cachetop recording (made by --record)") from None
        if row is None or row[0] != FORMAT:
            raise RecordingError(f"{path}: not a cachetop recording of format {FORMAT}")
        return cls(db, path)

    def __len__(self) -> int:
        return len(self.times)

    def __iter__(self) -> Iterator[Snapshot]:
        for index in range(len(self)):
            yield self[index]

    def __getitem__(self, index: int) -> Snapshot:
        return state_snapshot(self.state(index))

    def state(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} is outside 0..{len(self) - 1}")
        start = self._keyframes[bisect.bisect_right(self._keyframes, index) - 1]
        state: dict[str, Any] | None = None
        if self._cached is not None and start <= self._cached[0] <= index:
            start, state = self._cached[0] + 1, self._cached[1]
        rows = self.db.execute(
            "SELECT keyframe, data FROM frames WHERE seq BETWEEN ? AND ? ORDER BY seq", (start, index)
        )
        for key, blob in rows:
            frame = _unpack(blob)
            state = frame if key or state is None else patch(state, frame)
        assert state is not None
        self._cached = (index, state)
        return state

    def index_at(self, wall_time: float) -> int:
        """The last frame at or before `wall_time` (the first frame if it is earlier)."""
        return max(0, bisect.bisect_right(self.times, wall_time) - 1)

    def close(self) -> None:
        self.db.close()
