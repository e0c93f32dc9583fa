"""A time-bounded profiling run over Redis MONITOR, feeding a sampled key stream (SHARDS).

The MONITOR machinery is the hot-key sampler's (hotkeys/redis_monitor.py): one phase of
`duration` seconds with its guardian (no MONITOR client survives a SIGKILL or a stall), its omem
watchdog (the phase ends at half the limit), the cut of over-long lines, and own-traffic
accounting (our side connection's commands are counted; our lines are left out). What the run
costs the server is said before it starts (COST_NOTE) and it ends early on `cancel`.

Besides the stream it reads, on its side connection: INFO stats over a short baseline window just
before MONITOR goes on (the hit ratio and the read rate measured undisturbed, for calibration and to
put the trace back on the server's own clock: see `time_scale`), INFO memory and DBSIZE
(memory.py), CONFIG GET of the eviction settings, and MEMORY USAGE ... SAMPLES 0 of a few kept
keys (none of these move the keyspace counters).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cachetop.analysis.sizing.monitor_trace import SizingParser
from cachetop.analysis.sizing.shards import SampledTrace, SpatialFilter
from cachetop.engine.config import InstanceConfig
from cachetop.hotkeys.conn import SideCommands, SideConnection
from cachetop.hotkeys.monitor_parser import ParseResult
from cachetop.hotkeys.redis_monitor import MonitorSampler, MonitorStats
from cachetop.util.aio import OwnTrafficGate, cancel_and_wait

COST_NOTE = (
    "MONITOR makes the server format a line for every command while it is on: a saturated Redis 7.0 "
    "serves 55-63% fewer commands during that time (measured by bench/hotkeys.py); an idle one loses "
    "nothing. Its output buffer counts against maxmemory (the guard ends the run at half of {omem}, or of "
    "an eighth of maxmemory when that is less)."
)


@dataclass
class Progress:
    elapsed_s: float
    duration_s: float
    lines: int
    sampled_reads: int
    sampled_keys: int
    max_omem: int
    monitor_on: bool = False  # the MONITOR connection is open right now


@dataclass
class RedisProfile:
    trace: SampledTrace
    stats: MonitorStats
    config: dict[str, str] = field(default_factory=dict)
    info_memory: dict[str, int] = field(default_factory=dict)
    keys: int = 0
    usage_sample: list[int] = field(default_factory=list)
    hits: int = 0  # keyspace_hits over the baseline window (MONITOR off)
    misses: int = 0
    baseline_s: float = 0.0
    reads_per_s_before: float = 0.0  # keyspace reads per second with MONITOR off
    reads_per_s_during: float = 0.0  # the same while MONITOR was on
    own_commands: int = 0
    stopped: str = ""  # why the run ended before `duration`, if it did
    omem_limit: int = 0  # the output-buffer limit the guard used

    @property
    def time_scale(self) -> float:
        """How much slower the server ran while MONITOR was on (1 when it kept up). A closed-loop
        client slows down with the server, and Redis's LRU clock ticks in seconds: the trace's
        times are multiplied by this so the simulated cache turns over as fast as the real one
        does without MONITOR."""
        if self.reads_per_s_before <= 0 or self.reads_per_s_during <= 0:
            return 1.0
        return min(1.0, self.reads_per_s_during / self.reads_per_s_before)

    @property
    def hit_ratio_now(self) -> float | None:
        total = self.hits + self.misses
        return 100.0 * self.hits / total if total else None


def _as_text(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _info_numbers(reply: object) -> dict[str, int]:
    if isinstance(reply, bytes | str):
        pairs = (line.split(":", 1) for line in _as_text(reply).splitlines() if ":" in line)
        reply = dict(pairs)
    out: dict[str, int] = {}
    for k, v in dict(reply).items():  # type: ignore[call-overload]
        with contextlib.suppress(TypeError, ValueError):
            out[_as_text(k)] = int(float(_as_text(v)))
    return out


def _config_pairs(reply: object) -> dict[str, str]:
    if isinstance(reply, dict):
        return {_as_text(k): _as_text(v) for k, v in reply.items()}
    items = list(reply) if isinstance(reply, list | tuple) else []
    return {_as_text(items[i]): _as_text(items[i + 1]) for i in range(0, len(items) - 1, 2)}


MIN_OMEM = 256 << 10
CONFIG_NAMES = ("maxmemory", "maxmemory-policy", "maxmemory-samples", "lfu-log-factor", "lfu-decay-time")


async def profile_redis(
    inst: InstanceConfig,
    *,
    duration: float,
    rate: float,
    seed: int = 0,
    omem_limit: int = 8 << 20,
    timeout: float = 5.0,
    progress: Callable[[Progress], None] | None = None,
    cancel: asyncio.Event | None = None,
    usage_keys: int = 20,
    baseline_s: float = 1.0,
    side: SideCommands | None = None,
    count: Callable[[str, int], None] | None = None,
    gate: OwnTrafficGate | None = None,
) -> RedisProfile:
    """`side`: a poll connection lent by the dashboard (it counts what it sends itself), else a
    side connection of our own whose commands go to `count` (own-traffic accounting) too."""
    trace = SampledTrace(rate)
    keep = SpatialFilter(rate, seed)
    profile = RedisProfile(trace, MonitorStats())

    def counted(command: str, n: int = 1) -> None:
        profile.own_commands += n
        if count is not None:
            count(command, n)

    own_side = side is None
    if side is None:
        side = SideConnection(inst, timeout, count=counted, gate=gate)
    started = time.monotonic()

    def sink(out: ParseResult, covered: float, now: float) -> None:
        if progress is not None:
            progress(_progress(profile, sampler, started, duration))

    sampler = MonitorSampler(
        inst, sink, on_s=duration, off_s=3600.0, omem_limit=omem_limit, timeout=timeout, side=side, gate=gate
    )
    sampler._parser = SizingParser(trace, keep)  # same command table and own-client rules
    profile.stats = sampler.stats
    try:
        for name in CONFIG_NAMES:
            profile.config.update(_config_pairs(await side.call("CONFIG", "GET", name)))
        # MONITOR's output buffer counts against maxmemory and cannot be evicted: on a small
        # cache, half of 8 MiB would crowd out keys (and refuse writes with OOM). So the limit
        # is also at most an eighth of maxmemory (the guard acts at half of it).
        maxmemory = int(profile.config.get("maxmemory", "0") or 0)
        if maxmemory > 0:
            sampler.omem_limit = min(omem_limit, max(MIN_OMEM, maxmemory // 8))
            sampler.stop_at = sampler.omem_limit // 2
        profile.omem_limit = sampler.omem_limit
        t0 = time.monotonic()
        first = _info_numbers(await side.call("INFO", "stats"))
        await asyncio.sleep(baseline_s)  # the window over which the undisturbed hit ratio is read
        before = _info_numbers(await side.call("INFO", "stats"))
        profile.baseline_s = time.monotonic() - t0
        profile.hits = before.get("keyspace_hits", 0) - first.get("keyspace_hits", 0)
        profile.misses = before.get("keyspace_misses", 0) - first.get("keyspace_misses", 0)
        profile.reads_per_s_before = (profile.hits + profile.misses) / profile.baseline_s
        on_at = time.monotonic()
        task = asyncio.create_task(sampler.run())
        try:
            await _wait_phase(task, sampler, cancel, progress, profile, started, duration)
        finally:
            await cancel_and_wait([task])
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
        after = _info_numbers(await side.call("INFO", "stats"))
        reads = sum(after.get(k, 0) - before.get(k, 0) for k in ("keyspace_hits", "keyspace_misses"))
        profile.reads_per_s_during = reads / max(time.monotonic() - on_at, 1e-3)
        if trace.duration_s > 1.0:  # the stream's own rate: MONITOR may have ended before `duration`
            profile.reads_per_s_during = trace.reads_total / trace.duration_s
        profile.info_memory = _info_numbers(await side.call("INFO", "memory"))
        profile.keys = int(await side.call("DBSIZE"))
        for key in trace.some_keys(usage_keys):
            with contextlib.suppress(Exception):
                usage = await side.call("MEMORY", "USAGE", key, "SAMPLES", "0")
                if usage is not None:
                    profile.usage_sample.append(int(usage))
        profile.stopped = profile.stopped or sampler.stats.last_stop
    finally:
        if own_side:
            await side.close()
    return profile


def _progress(profile: RedisProfile, sampler: MonitorSampler, started: float, duration: float) -> Progress:
    t = profile.trace
    stats = sampler.stats
    return Progress(
        time.monotonic() - started, duration, stats.lines, len(t.ids), t.keys, stats.max_omem, stats.connected
    )


async def _wait_phase(
    task: asyncio.Task,
    sampler: MonitorSampler,
    cancel: asyncio.Event | None,
    progress: Callable[[Progress], None] | None,
    profile: RedisProfile,
    started: float,
    duration: float,
) -> None:
    """Until the one MONITOR phase is over (it ran `duration`, or the guard ended it), the sampler
    failed, or `cancel` is set."""
    while not task.done():
        if cancel is not None and cancel.is_set():
            profile.stopped = "cancelled"
            return
        if sampler.stats.phases >= 1 and sampler.phase == "waiting":
            return
        if progress is not None:
            progress(_progress(profile, sampler, started, duration))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.25):
                await asyncio.shield(task)
