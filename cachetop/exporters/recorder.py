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

Reading is bounded (a recording is a file someone may hand you): a keyframe and the deltas after
it may hold at most STATE_MAX of data, as `frame_cost` counts it (the JSON's bytes plus what its
values cost once parsed), and each frame is decompressed only that far. The recorder starts a new
keyframe before a span would pass it, so a recording it wrote always reads back.
"""

from __future__ import annotations

import bisect
import json
import logging
import sqlite3
import zlib
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cachetop.model import CommandStat, InstanceMetrics, Snapshot, Status

log = logging.getLogger(__name__)

FORMAT = "cachetop-recording/1"
KEYFRAME_EVERY = 60
MIB = 1 << 20
# The most data from one keyframe to the next (and so in one frame), as frame_cost counts it:
# about what replaying it holds in memory. A fleet of 10,000 instances with 20 commands each
# makes keyframes of about 115 MiB (measured: 11.7 KiB an instance).
STATE_MAX = 256 * MIB
# Each `,` `:` `{` `[` starts a value that costs up to ~80 bytes once parsed (a dict entry, a
# float, an empty dict): counted at VALUE_COST on top of the text's own bytes.
VALUE_COST = 40
MAX_FRAMES = 10_000_000  # 116 days at one frame a second: the frame index takes 80 MB
_CHUNK = 4 * MIB  # frames are decompressed this much at a time
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
        "counters": dict(inst.counters),
        "stale": inst.stale,
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
                counters=dict(i.get("counters", {})),  # recordings made before counters have none
                stale=bool(i.get("stale", False)),  # nor recordings made before stale
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


def frame_cost(text: bytes | bytearray) -> int:
    """What a frame's JSON costs to hold once parsed, about: its bytes plus VALUE_COST a value."""
    separators = sum(text.count(c) for c in (b",", b":", b"{", b"["))
    return len(text) + VALUE_COST * separators


def _size(limit: int) -> str:
    return f"{limit / MIB:g} MiB"


def _inflate(blob: bytes, budget: int) -> bytearray | None:
    """The decompressed frame, or None as soon as it is longer than `budget` bytes. Streams, so a
    small blob that expands to gigabytes (a decompression bomb) costs at most budget + _CHUNK."""
    inflater = zlib.decompressobj()
    out = bytearray()
    data = blob
    while data:
        out += inflater.decompress(data, _CHUNK)
        if len(out) > budget:
            return None
        data = inflater.unconsumed_tail
    out += inflater.flush()
    return None if len(out) > budget else out


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# --- writing ------------------------------------------------------------------------------------


class Recorder:
    """A Monitor subscriber that appends every Snapshot to a recording file."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db = db
        self.path = path
        self.frames = 0
        self.bytes = 0
        self.skipped = 0  # frames too large to record (see STATE_MAX)
        self._last: dict[str, Any] | None = None
        self._span = 0  # frame_cost since the last keyframe

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
        text = _dumps(state if key else diff(self._last or {}, state))
        if not key and self._span + frame_cost(text) > STATE_MAX:
            key, text = True, _dumps(state)  # a new span, so replaying never holds more
        cost = frame_cost(text)
        if key and cost > STATE_MAX:
            self.skipped += 1
            if self.skipped == 1:
                log.warning(
                    "%s: a frame of %s is larger than a recording holds (%s): frames this large are left out",
                    self.path,
                    _size(cost),
                    _size(STATE_MAX),
                )
            return
        self._span = cost if key else self._span + cost
        data = zlib.compress(text, 6)
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
        # Compact (8 bytes a frame): a long recording's index must not cost more than its frames.
        self.times = array("d")
        self._keyframes = array("q")
        for index, (time, key) in enumerate(db.execute("SELECT time, keyframe FROM frames ORDER BY seq")):
            self.times.append(time)
            if key:
                self._keyframes.append(index)
        if len(self.times) and (not self._keyframes or self._keyframes[0] != 0):
            raise RecordingError(f"{path}: frame 0 is not a keyframe (not a recording cachetop wrote)")
        # (index, its state, the frame_cost of its span so far)
        self._cached: tuple[int, dict[str, Any], int] | None = None

    @classmethod
    def open(cls, path: str | Path) -> Recording:
        path = Path(path)
        if not path.is_file():
            raise RecordingError(f"{path}: no such recording")
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            if row is None or row[0] != FORMAT:
                raise RecordingError(f"{path}: not a cachetop recording of format {FORMAT}")
            (frames,) = db.execute("SELECT count(*) FROM frames").fetchone()
            if frames > MAX_FRAMES:
                raise RecordingError(
                    f"{path}: holds {frames:,} frames (a recording holds at most {MAX_FRAMES:,})"
                )
            return cls(db, path)
        except (sqlite3.Error, TypeError, ValueError, OverflowError):  # not a table, not times
            raise RecordingError(f"{path}: not a cachetop recording (made by --record)") from None

    def __len__(self) -> int:
        return len(self.times)

    def __iter__(self) -> Iterator[Snapshot]:
        for index in range(len(self)):
            yield self[index]

    def __getitem__(self, index: int) -> Snapshot:
        state = self.state(index)
        try:
            return state_snapshot(state)
        except (ValueError, TypeError, KeyError, AttributeError):
            raise self._damaged(index) from None

    def state(self, index: int) -> dict[str, Any]:
        """The index-th frame's state. RecordingError when the file holds more than a recording
        can (a frame or a span past STATE_MAX) or a frame that does not decode."""
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} is outside 0..{len(self) - 1}")
        start = self._keyframes[bisect.bisect_right(self._keyframes, index) - 1]
        state: dict[str, Any] | None = None
        span = 0
        if self._cached is not None and start <= self._cached[0] <= index:
            start, state, span = self._cached[0] + 1, self._cached[1], self._cached[2]
        # A blob longer than the budget is never even read: zlib does not make data smaller.
        rows = self.db.execute(
            "SELECT seq, keyframe, CASE WHEN length(data) <= ? THEN data END FROM frames "
            "WHERE seq BETWEEN ? AND ? ORDER BY seq",
            (STATE_MAX, start, index),
        )
        for seq, key, blob in rows:
            if key:
                span = 0
            try:
                text = _inflate(blob, STATE_MAX - span) if blob is not None else None
                cost = frame_cost(text) if text is not None else STATE_MAX + 1
                if span + cost > STATE_MAX:
                    raise self._too_large(seq, first=not span)
                span += cost
                frame = json.loads(text)  # type: ignore[arg-type]
                state = frame if key or state is None else patch(state, frame)
            except (zlib.error, ValueError, RecursionError, TypeError, KeyError, AttributeError):
                raise self._damaged(seq) from None
        assert state is not None
        self._cached = (index, state, span)
        return state

    def _damaged(self, seq: int) -> RecordingError:
        return RecordingError(f"{self.path}: frame {seq} does not decode (a damaged recording?)")

    def _too_large(self, seq: int, *, first: bool) -> RecordingError:
        if first:
            return RecordingError(
                f"{self.path}: frame {seq} exceeds {_size(STATE_MAX)} "
                f"(a recording holds frames of at most {_size(STATE_MAX)})"
            )
        return RecordingError(
            f"{self.path}: frame {seq} and the frames since the keyframe before it exceed "
            f"{_size(STATE_MAX)} (a recording holds at most {_size(STATE_MAX)} from one keyframe to the next)"
        )

    def index_at(self, wall_time: float) -> int:
        """The last frame at or before `wall_time` (the first frame if it is earlier)."""
        return max(0, bisect.bisect_right(self.times, wall_time) - 1)

    def close(self) -> None:
        self.db.close()
