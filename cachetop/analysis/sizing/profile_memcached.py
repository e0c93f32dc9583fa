"""A time-bounded profiling run over memcached `watch fetchers mutations` (hotkeys/memcached_watch.py).

Every get with its hit or miss arrives in order; a store's own lookup is not a read (watch_parser).
The server never slows down for a watcher: it drops lines instead (`skipped=N`, and worker-thread
drops counted in `stats` log_worker_dropped). A dropped read is a read the trace lacks: its key's
next read looks further away than it is, so a high drop rate makes the curve pessimistic, and the
report says so. `stats` before and after give the hit ratio measured over the same seconds, the
memory model (memory.py) and the cache size (limit_maxbytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cachetop.analysis.sizing.profile_redis import Progress
from cachetop.analysis.sizing.shards import SampledTrace, SpatialFilter
from cachetop.engine.config import InstanceConfig
from cachetop.hotkeys.conn import close_stream, open_stream
from cachetop.hotkeys.memcached_watch import WatchSampler
from cachetop.hotkeys.monitor_parser import READ
from cachetop.hotkeys.watch_parser import WatchResult
from cachetop.util.aio import cancel_and_wait

_STAT = re.compile(rb"STAT (\w+) (\d+)")


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
    return {m.group(1).decode(): int(m.group(2)) for m in _STAT.finditer(reply)}


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
    keep = SpatialFilter(rate, seed)
    profile = MemcachedProfile(trace)
    started = time.monotonic()

    def sink(out: WatchResult, covered: float, now: float) -> None:
        for key, _cfd, kind, _miss in out.accesses:
            if kind == READ:
                trace.reads_total += 1
                if keep.keep(key):
                    trace.add_read(key, now)
            else:
                trace.writes_total += 1
        if progress is not None:
            progress(
                Progress(
                    now - started,
                    duration,
                    sampler.stats.lines,
                    len(trace.ids),
                    trace.keys,
                    0,
                    sampler.stats.connected,
                )
            )

    sampler = WatchSampler(inst, sink, on_s=duration, off_s=3600.0, timeout=timeout)
    profile.stats_before = await memcached_stats(inst, timeout)
    task = asyncio.create_task(sampler.run())
    try:
        while not task.done():
            if cancel is not None and cancel.is_set():
                profile.stopped = "cancelled"
                break
            if sampler.phase == "waiting" or time.monotonic() - started > duration + timeout:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.25):
                    await asyncio.shield(task)
    finally:
        await cancel_and_wait([task])
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
    profile.stats_after = await memcached_stats(inst, timeout)
    profile.lines = sampler.stats.lines
    profile.dropped = sampler.stats.skipped + max(0, profile.delta("log_worker_dropped"))
    return profile
