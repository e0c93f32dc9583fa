"""A time-bounded profiling run over memcached `watch fetchers mutations` (as hotkeys/memcached_watch.py
does, with the faster ordered parser of watch_trace.py; the connection is closed in `finally`).

Every get with its hit or miss arrives in order; a store's own lookup is not a read (watch_parser).
The server never slows down for a watcher: it drops lines instead (`skipped=N`, and worker-thread
drops counted in `stats` log_worker_dropped). A dropped read is a read the trace lacks: its key's
next read looks further away than it is, so a high drop rate makes the curve pessimistic, and the
report says so. `stats` before and after give the hit ratio measured over the same seconds, the
memory model (memory.py) and the cache size (limit_maxbytes).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cachetop.analysis.sizing.profile_redis import Progress
from cachetop.analysis.sizing.shards import SampledTrace, SpatialFilter
from cachetop.analysis.sizing.watch_trace import WatchTraceParser
from cachetop.backends.memcached import parse_stats, stat_number
from cachetop.engine.config import InstanceConfig
from cachetop.hotkeys.conn import HotKeysError, close_stream, open_stream
from cachetop.hotkeys.linecap import LineCap
from cachetop.hotkeys.memcached_watch import CHUNK, MAX_LINE, start_watch


@dataclass
class MemcachedProfile:
    trace: SampledTrace
    stats_before: dict[str, int] = field(default_factory=dict)
    stats_after: dict[str, int] = field(default_factory=dict)
    lines: int = 0
    dropped: int = 0
    stopped: str = ""

    def delta(self, name: str) -> int:
        return self.stats_after.get(name, 0) - self.stats_before.get(name, 0)

    @property
    def hit_ratio_now(self) -> float | None:
        hits, misses = self.delta("get_hits"), self.delta("get_misses")
        return 100.0 * hits / (hits + misses) if hits + misses else None

    @property
    def drop_rate(self) -> float:
        seen = self.lines + self.dropped
        return self.dropped / seen if seen else 0.0


async def memcached_stats(inst: InstanceConfig, timeout: float) -> dict[str, int]:
    reader, writer = await open_stream(inst, timeout)
    try:
        writer.write(b"stats\r\n")
        reply = await asyncio.wait_for(reader.readuntil(b"END\r\n"), timeout)
    finally:
        await close_stream(writer)
    stats = parse_stats(reply)
    return {name: stat_number(stats, name) for name in stats}


async def profile_memcached(
    inst: InstanceConfig,
    *,
    duration: float,
    rate: float,
    seed: int = 0,
    timeout: float = 5.0,
    progress: Callable[[Progress], None] | None = None,
    cancel: asyncio.Event | None = None,
) -> MemcachedProfile:
    trace = SampledTrace(rate)
    parser = WatchTraceParser(trace, SpatialFilter(rate, seed))
    profile = MemcachedProfile(trace)
    profile.stats_before = await memcached_stats(inst, timeout)
    started = time.monotonic()
    reader, writer = await open_stream(inst, timeout)
    try:
        await start_watch(reader, writer, timeout)
        pending = b""
        cap = LineCap(MAX_LINE)
        while (left := started + duration - time.monotonic()) > 0:
            if cancel is not None and cancel.is_set():
                profile.stopped = "cancelled"
                break
            try:
                async with asyncio.timeout(min(left, 0.25)):  # not wait_for: hotkeys/redis_monitor._read
                    data = await reader.read(CHUNK)
            except TimeoutError:
                data = b""
            if not data and reader.at_eof():
                raise HotKeysError("the server closed the watch connection")
            data = cap.skip(data)
            if data:
                pending = parser.feed(pending + data if pending else data)
                if cap.cut_if_long(pending) is not None:
                    pending = b""  # not a watch line: a watch line is under 400 bytes
            if progress is not None:
                progress(
                    Progress(
                        time.monotonic() - started,
                        duration,
                        parser.lines,
                        len(trace.ids),
                        trace.keys,
                        0,
                        True,
                    )
                )
    finally:
        await close_stream(writer)
    parser.flush()
    profile.stats_after = await memcached_stats(inst, timeout)
    profile.lines = parser.lines
    profile.dropped = parser.skipped + max(0, profile.delta("log_worker_dropped"))
    return profile
