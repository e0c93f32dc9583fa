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
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain, islice, repeat


@dataclass(frozen=True, slots=True)
class Stampede:
    key: bytes
    time: float  # when the last writer that completed the pattern was seen (caller's clock)
    writers: int  # distinct clients that read then wrote the key
    readers: int  # distinct clients that read (missed) it in the window


class StampedeDetector:
    """Reads and writes come one by one (read/write) or a chunk at a time (read_many/write_many:
    a saturated MONITOR stream gives 300k+ of them per second, so a chunk is handled with set and
    dict operations in C; order inside a chunk is not kept, which can only take a write for a
    write-after-read)."""

    def __init__(
        self,
        *,
        window_s: float = 2.0,
        min_writers: int = 3,
        max_entries: int = 20_000,
        max_events: int = 100,
        decode: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.window_s = window_s
        self.min_writers = min_writers
        self.max_entries = max_entries
        self.decode = decode  # turns a key as the source spelled it into its bytes, for events
        self._gen_start = 0.0
        # (key, client) -> when it was read
        self._reads: dict[tuple[bytes, bytes], float] = {}
        self._old_reads: dict[tuple[bytes, bytes], float] = {}
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
        self.read_many([(key, client)], now)

    def read_many(self, pairs: list[tuple[bytes, bytes]], now: float) -> None:
        self._rotate(now)
        fresh = set(pairs).difference(self._reads)
        room = self.max_entries - len(self._reads)
        if len(fresh) > room:  # full: pairs already known are refreshed, new ones are cut
            self.saturated = True
            keep = set(islice(fresh, max(room, 0)))
            pairs = [p for p in pairs if p in keep or p in self._reads]
        self._reads.update(zip(pairs, repeat(now)))

    def write(self, key: bytes, client: bytes, now: float) -> Stampede | None:
        events = self.write_many([(key, client)], now)
        return events[0] if events else None

    def write_many(self, pairs: list[tuple[bytes, bytes]], now: float) -> list[Stampede]:
        self._rotate(now)
        candidates = self._reads.keys() & pairs
        if self._old_reads:
            candidates |= self._old_reads.keys() & pairs
        events = []
        for key, client in candidates:  # writers that read the key before: few
            read_at = self._reads.get((key, client))
            if read_at is None:
                read_at = self._old_reads[(key, client)]
            if now - read_at > self.window_s:
                continue
            writers = self._writers.get(key)
            if writers is None:
                if len(self._writers) >= self.max_entries:
                    self.saturated = True
                    continue
                self._writers[key] = writers = {}
            writers[client] = now
            if len(writers) < self.min_writers:
                continue
            last = self._last_event.get(key)
            if last is not None and now - last < self.window_s:
                continue
            readers = self._distinct_readers(key)
            shown = self.decode(key) if self.decode else key
            event = Stampede(key=shown, time=now, writers=len(writers), readers=readers)
            self._last_event[key] = now
            self.events.append(event)
            self.total += 1
            events.append(event)
        return events

    def _distinct_readers(self, key: bytes) -> int:
        """Clients that read `key` in the two generations: a scan (at most 2 x max_entries
        pairs), paid only when an event fires, at most once per key per window."""
        return len({c for k, c in chain(self._reads, self._old_reads) if k == key})

    def count_since(self, since: float) -> int:
        return sum(1 for e in self.events if e.time >= since)
