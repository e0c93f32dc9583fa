"""One instance's open time bucket: top keys, top prefixes and headline metrics being counted.

Fed from what cachetop already collects (no command of its own): the hot-key collector's
finished one-second slots (Space-Saving summaries of keys and of prefixes), and each snapshot's
running totals (hits, misses, commands, ... with cachetop's own traffic already taken out).
A slot counts in the bucket that holds its middle, so a slot that straddles a boundary is off
by at most half a slot. Pure: times are passed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cachetop.metrics.topk import COUNT, SpaceSaving

# Running totals diffed per bucket (InstanceMetrics.counters), and gauges kept as last/max seen.
TOTALS = ("hits", "misses", "commands", "errors", "evictions", "expired")
GAUGES_LAST = ("memory_used_bytes", "connections")
GAUGES_MAX = ("latency_p99_ms",)
CAPACITY_FACTOR = 5  # Space-Saving counters per kept key: the top keys' counts stay near exact


def bucket_index(wall: float, bucket_s: float) -> int:
    return math.floor(wall / bucket_s)


@dataclass(frozen=True, slots=True)
class BucketRecord:
    """A closed bucket, as stored."""

    instance: str
    index: int
    bucket_s: float
    keys: tuple[tuple[bytes, int], ...] = ()  # most first
    prefixes: tuple[tuple[bytes, int], ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)
    events: int = 0  # hot-key events sampled in the bucket
    covered_s: float = 0.0  # seconds the hot-key source listened

    @property
    def start(self) -> float:
        return self.index * self.bucket_s

    @property
    def hit_ratio(self) -> float | None:
        hits, misses = self.metrics.get("hits", 0.0), self.metrics.get("misses", 0.0)
        return 100.0 * hits / (hits + misses) if hits + misses > 0 else None


class OpenBucket:
    def __init__(self, instance: str, index: int, bucket_s: float, top: int) -> None:
        self.instance = instance
        self.index = index
        self.bucket_s = bucket_s
        self.top = top
        self.keys = SpaceSaving(top * CAPACITY_FACTOR)
        self.prefixes = SpaceSaving(top * CAPACITY_FACTOR)
        self.totals: dict[str, float] = dict.fromkeys(TOTALS, 0.0)
        self.gauges: dict[str, float] = {}
        self.events = 0
        self.covered_s = 0.0
        self.observed_s = 0.0  # seconds of snapshots seen, for ops/s
        # Sources with no stream (server-side HOTKEYS, LFU counters) give a ranking, not events:
        # the last ranking seen in the bucket stands for it.
        self.ranking: tuple[tuple[tuple[bytes, int], ...], tuple[tuple[bytes, int], ...]] | None = None

    def add_slot(
        self, keys: Mapping[bytes, list[int]], prefixes: Mapping[bytes, list[int]], covered_s: float
    ) -> None:
        for key, entry in keys.items():
            self.keys.add(key, entry[COUNT])
        for pattern, entry in prefixes.items():
            self.prefixes.add(pattern, entry[COUNT])
        self.events += sum(e[COUNT] for e in keys.values())
        self.covered_s += covered_s

    def add_totals(
        self, delta: Mapping[str, float], seconds: float, gauges: Mapping[str, float | None]
    ) -> None:
        for name in TOTALS:
            self.totals[name] += max(0.0, float(delta.get(name, 0.0)))
        self.observed_s += max(0.0, seconds)
        for name in GAUGES_LAST:
            value = gauges.get(name)
            if value is not None:
                self.gauges[name] = float(value)
        for name in GAUGES_MAX:
            value = gauges.get(name)
            if value is not None:
                self.gauges[name] = max(self.gauges.get(name, 0.0), float(value))

    def peek(
        self, limit: int | None = None
    ) -> tuple[tuple[tuple[bytes, int], ...], tuple[tuple[bytes, int], ...]]:
        n = limit or self.top
        return _top(self.keys.entries.items(), n), _top(self.prefixes.entries.items(), n)

    def set_ranking(self, keys: Iterable[tuple[bytes, int]], prefixes: Iterable[tuple[bytes, int]]) -> None:
        self.ranking = (tuple(keys)[: self.top], tuple(prefixes)[: self.top])

    def close(self) -> BucketRecord:
        keys, prefixes = self.peek()
        if not keys and self.ranking is not None:
            keys, prefixes = self.ranking
        metrics = dict(self.totals)
        if self.observed_s > 0:
            metrics["ops_per_sec"] = self.totals["commands"] / self.observed_s
        metrics.update(self.gauges)
        return BucketRecord(
            self.instance, self.index, self.bucket_s, keys, prefixes, metrics, self.events, self.covered_s
        )


def _top(entries: Iterable[tuple[bytes, list[int]]], n: int) -> tuple[tuple[bytes, int], ...]:
    ranked = sorted(entries, key=lambda item: (-item[1][COUNT], item[0]))[:n]
    return tuple((key, e[COUNT]) for key, e in ranked)
