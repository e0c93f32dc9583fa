"""Cache stampede detection: many clients miss one key, then several of them write it back.

The signature: within `window_s`, at least `min_writers` distinct clients write a key that each
of them had read shortly before (a miss, where the source knows it: memcached `watch`; any read,
where it does not: Redis MONITOR, which never shows replies). One event per key per window.

Memory is bounded: reads are remembered in two generations of `window_s` each, capped at
`max_entries` keys per generation; when full, new keys are not remembered (and `saturated` says so).
Time is passed in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Stampede:
    key: bytes
    time: float  # when the last writer that completed the pattern was seen (caller's clock)
    writers: int  # distinct clients that read then wrote the key
    readers: int  # distinct clients that read (missed) it in the window


class StampedeDetector:
    def __init__(
        self, *, window_s: float = 2.0, min_writers: int = 3, max_entries: int = 20_000, max_events: int = 100
    ) -> None:
        self.window_s = window_s
        self.min_writers = min_writers
        self.max_entries = max_entries
        self._gen_start = 0.0
        self._reads: dict[bytes, dict[bytes, float]] = {}
        self._old_reads: dict[bytes, dict[bytes, float]] = {}
        self._writers: dict[bytes, dict[bytes, float]] = {}
        self._last_event: dict[bytes, float] = {}
        self.events: deque[Stampede] = deque(maxlen=max_events)
        self.total = 0
        self.saturated = False

    def _rotate(self, now: float) -> None:
        if now - self._gen_start < self.window_s:
            return
        if now - self._gen_start >= 2 * self.window_s:
            self._old_reads = {}
        else:
            self._old_reads = self._reads
        self._reads = {}
        self._writers = {}
        self._last_event = {k: t for k, t in self._last_event.items() if now - t < self.window_s}
        self._gen_start = now
        self.saturated = False

    def read(self, key: bytes, client: bytes, now: float) -> None:
        """A read that missed (or might have: MONITOR cannot tell)."""
        self._rotate(now)
        readers = self._reads.get(key)
        if readers is None:
            if len(self._reads) >= self.max_entries:
                self.saturated = True
                return
            self._reads[key] = readers = {}
        readers[client] = now

    def _read_at(self, key: bytes, client: bytes) -> float | None:
        for gen in (self._reads, self._old_reads):
            readers = gen.get(key)
            if readers and client in readers:
                return readers[client]
        return None

    def write(self, key: bytes, client: bytes, now: float) -> Stampede | None:
        self._rotate(now)
        read_at = self._read_at(key, client)
        if read_at is None or now - read_at > self.window_s:
            return None
        writers = self._writers.get(key)
        if writers is None:
            if len(self._writers) >= self.max_entries:
                self.saturated = True
                return None
            self._writers[key] = writers = {}
        writers[client] = now
        if len(writers) < self.min_writers:
            return None
        last = self._last_event.get(key)
        if last is not None and now - last < self.window_s:
            return None
        readers = set(self._reads.get(key, ())) | set(self._old_reads.get(key, ()))
        event = Stampede(key=key, time=now, writers=len(writers), readers=len(readers))
        self._last_event[key] = now
        self.events.append(event)
        self.total += 1
        return event

    def count_since(self, since: float) -> int:
        return sum(1 for e in self.events if e.time >= since)
