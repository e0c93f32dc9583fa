"""Hot keys over a sliding window with memory bounded by k, not by the key space.

SpaceSaving is the Metwally et al. summary with weighted updates: at most `capacity` counters;
a new key takes over the smallest counter and inherits its count as its possible error, so a
key's count is never under-estimated and any key with true count > N/capacity is present.

WindowedTopK keeps a ring of per-slot summaries (one per `slot_s` seconds of time) and merges
the slots that fall inside the window on read, so old traffic leaves the ranking without a
global decay. Each slot also remembers how many seconds the source actually observed in it
(a duty-cycled MONITOR covers 1 s of every 10 s) so rates are per observed second.

Time is always passed in; nothing here reads a clock.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Per-key fields in a counter list: [count, error, reads, writes, hits, misses].
COUNT, ERROR, READS, WRITES, HITS, MISSES = range(6)


class SpaceSaving:
    """A Space-Saving summary of at most `capacity` keys."""

    __slots__ = ("_heap", "capacity", "entries", "total")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.entries: dict[bytes, list[int]] = {}
        # One (count, key) per entry; counts here may be stale (lower than the entry's), and are
        # refreshed lazily when they reach the top, so increments of a present key are O(1).
        self._heap: list[tuple[int, bytes]] = []
        self.total = 0

    def __len__(self) -> int:
        return len(self.entries)

    def add(
        self, key: bytes, n: int = 1, reads: int = 0, writes: int = 0, hits: int = 0, misses: int = 0
    ) -> None:
        self.total += n
        entry = self.entries.get(key)
        if entry is not None:
            entry[COUNT] += n
            entry[READS] += reads
            entry[WRITES] += writes
            entry[HITS] += hits
            entry[MISSES] += misses
            return
        if len(self.entries) < self.capacity:
            self.entries[key] = [n, 0, reads, writes, hits, misses]
            heapq.heappush(self._heap, (n, key))
            return
        heap = self._heap
        while True:
            stale, victim = heap[0]
            current = self.entries[victim][COUNT]
            if current == stale:
                break
            heapq.heapreplace(heap, (current, victim))
        del self.entries[victim]
        count = stale + n
        self.entries[key] = [count, stale, reads, writes, hits, misses]
        heapq.heapreplace(heap, (count, key))

    def min_count(self) -> int:
        """The smallest count held when full (the most an absent key can have had), else 0."""
        if len(self.entries) < self.capacity:
            return 0
        return min(e[COUNT] for e in self.entries.values())


@dataclass(slots=True)
class Slot:
    start: float
    sketch: SpaceSaving
    covered_s: float = 0.0  # seconds the source was actually listening during this slot


@dataclass(frozen=True, slots=True)
class KeyCount:
    key: bytes
    count: int
    error: int  # the count is at most this much too high
    reads: int
    writes: int
    hits: int
    misses: int
    ops_per_sec: float | None
    share: float | None  # of all events the source saw in the window, 0..1
    history: tuple[float, ...] = ()  # ops/s in recent observed slots, oldest first


@dataclass(frozen=True, slots=True)
class TopKResult:
    keys: tuple[KeyCount, ...]
    total: int  # events seen in the window
    covered_s: float  # seconds observed in the window
    window_s: float

    @property
    def ops_per_sec(self) -> float | None:
        return self.total / self.covered_s if self.covered_s > 0 else None


class WindowedTopK:
    """Top keys over the last `window_s` seconds, as a ring of per-slot SpaceSaving summaries.

    Memory: at most ceil(window_s / slot_s) + 1 slots of `capacity` counters each, plus a
    sparkline history of `history_len` numbers for at most 2 * k keys.
    """

    def __init__(
        self,
        *,
        k: int = 20,
        capacity: int = 1000,
        window_s: float = 10.0,
        slot_s: float = 1.0,
        history_len: int = 30,
    ) -> None:
        if slot_s <= 0 or window_s < slot_s:
            raise ValueError("need 0 < slot_s <= window_s")
        self.k = k
        self.capacity = capacity
        self.window_s = window_s
        self.slot_s = slot_s
        self.history_len = history_len
        self._slots: deque[Slot] = deque(maxlen=math.ceil(window_s / slot_s) + 1)
        self._history: dict[bytes, deque[float]] = {}

    def _slot(self, now: float) -> Slot:
        start = math.floor(now / self.slot_s) * self.slot_s
        if self._slots and self._slots[-1].start == start:
            return self._slots[-1]
        if self._slots:
            self._close(self._slots[-1])
        slot = Slot(start, SpaceSaving(self.capacity))
        self._slots.append(slot)
        return slot

    def _close(self, slot: Slot) -> None:
        """Appends the closing slot's rates to the sparkline of the keys that are on top now."""
        if slot.covered_s <= 0:
            return
        top = {kc.key for kc in self._merge(slot.start + self.slot_s, history=False)[0][: self.k]}
        for key in top:
            self._history.setdefault(key, deque(maxlen=self.history_len))
        for key, points in list(self._history.items()):
            entry = slot.sketch.entries.get(key)
            points.append((entry[COUNT] if entry else 0) / slot.covered_s)
            if key not in top and len(self._history) > 2 * self.k:
                del self._history[key]

    def add(
        self,
        now: float,
        key: bytes,
        n: int = 1,
        reads: int = 0,
        writes: int = 0,
        hits: int = 0,
        misses: int = 0,
    ) -> None:
        self._slot(now).sketch.add(key, n, reads, writes, hits, misses)

    def add_batch(self, now: float, counts: Mapping[bytes, Iterable[int]]) -> None:
        """Adds pre-aggregated events: key -> (count, reads, writes, hits, misses)."""
        sketch = self._slot(now).sketch
        for key, (n, reads, writes, hits, misses) in counts.items():
            sketch.add(key, n, reads, writes, hits, misses)

    def cover(self, now: float, seconds: float) -> None:
        """Records that the source listened for `seconds` up to `now`. Sources call this often
        (every read or tick), so a span that crosses a slot boundary is rare and small."""
        slot = self._slot(now)
        slot.covered_s = min(self.slot_s, slot.covered_s + max(seconds, 0.0))

    def _live(self, now: float) -> list[Slot]:
        # The slot holding `now` and the ones before it, window_s worth of slots in all.
        current = math.floor(now / self.slot_s) * self.slot_s
        oldest = current - (math.ceil(self.window_s / self.slot_s) - 1) * self.slot_s - 1e-9
        return [s for s in self._slots if oldest <= s.start <= current]

    def _merge(self, now: float, history: bool = True) -> tuple[list[KeyCount], int, float]:
        slots = self._live(now)
        merged: dict[bytes, list[int]] = {}
        total = 0
        covered = 0.0
        for slot in slots:
            total += slot.sketch.total
            covered += slot.covered_s
            for key, entry in slot.sketch.entries.items():
                acc = merged.get(key)
                if acc is None:
                    merged[key] = entry.copy()
                else:
                    for i in range(6):
                        acc[i] += entry[i]
        ranked = sorted(merged.items(), key=lambda item: item[1][COUNT], reverse=True)[: self.capacity]
        out = []
        for key, e in ranked:
            out.append(
                KeyCount(
                    key=key,
                    count=e[COUNT],
                    error=e[ERROR],
                    reads=e[READS],
                    writes=e[WRITES],
                    hits=e[HITS],
                    misses=e[MISSES],
                    ops_per_sec=e[COUNT] / covered if covered > 0 else None,
                    share=e[COUNT] / total if total else None,
                    history=tuple(self._history.get(key, ())) if history else (),
                )
            )
        return out, total, covered

    def finished(self, after: float, now: float) -> list[Slot]:
        """Slots that started after `after` and ended by `now`, oldest first: a reader keeping a
        longer record (cachetop/history) takes each finished slot once, as long as it calls at
        least once per window."""
        current = math.floor(now / self.slot_s) * self.slot_s
        return [s for s in self._slots if after < s.start < current]

    def top(self, now: float, n: int | None = None) -> TopKResult:
        self._slot(now)  # rotates the ring, closing finished slots
        keys, total, covered = self._merge(now)
        return TopKResult(tuple(keys[: n or self.k]), total, covered, self.window_s)
