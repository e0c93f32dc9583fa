"""The one Protocol every hot-key source implements, so the collector never asks which one it has.

Four sources, four classes: MONITOR (redis_monitor.MonitorSampler), memcached `watch`
(memcached_watch.WatchSampler), LFU counters over SCAN (scan.ThrottledScan) and server-side
HOTKEYS (server_hotkeys.RedisHotKeysPoller / ValkeyHotKeysPoller). Streams (MONITOR, watch) push
their counts into the collector's windows through a sink; the others hold their own table and
hand their rows over in `report()`. Either way the collector (collector.py) reads a source only
through HotKeySampler.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cachetop.hotkeys.config import HotKeySettings
from cachetop.hotkeys.view import HotKey


@dataclass(frozen=True, slots=True)
class SamplerReport:
    """What a source says about itself for the view."""

    status: str  # sampling | waiting | paused | starting
    detail: str  # the status line: what it does and what happened to it
    unit: str  # what its counts are in: ops | lfu_freq | cpu_us | net_bytes | qps
    keys: tuple[HotKey, ...] | None = None  # None: a stream, whose counts are in the collector's windows
    drop_rate: float | None = None  # share of events lost on the way (watch)
    max_omem: int | None = None  # the largest output buffer the server held for us (MONITOR)


@runtime_checkable
class HotKeySampler(Protocol):
    @property
    def source(self) -> str: ...  # monitor | watch | lfu | hotkeys

    @property
    def open_connections(self) -> int:
        """Connections of its own open now (the collector's clients are counted by the collector)."""
        ...

    @property
    def own_sent(self) -> Counter[str]:
        """Commands sent so far on connections of its own, per command name (the collector's
        clients count what goes through them)."""
        ...

    @property
    def own_reads(self) -> tuple[int, int]:
        """Keyspace (hits, misses) its reads caused so far (OBJECT FREQ reads a key)."""
        ...

    async def run(self) -> None:
        """Samples until cancelled; closes what it opened on the way out."""
        ...

    def report(self, settings: HotKeySettings) -> SamplerReport: ...


@runtime_checkable
class HasPhase(Protocol):
    """A source with a start-up to go through (MONITOR, watch, server-side HOTKEYS): its phase is
    starting, waiting or sampling. The LFU scan has none: it samples from the first tick."""

    phase: str


class NoOwnTraffic:
    """For the sources that send everything through the collector's clients and read no key."""

    open_connections = 0

    @property
    def own_sent(self) -> Counter[str]:
        return Counter()

    @property
    def own_reads(self) -> tuple[int, int]:
        return (0, 0)
