"""From a source (a live Redis, a live memcached, a trace file) to a SizingReport."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cachetop.analysis.sizing.curve import MIN_WARM_READS_PER_OBJECT, CurveRequest, build_curves
from cachetop.analysis.sizing.memory import MemoryModel, redis_model
from cachetop.analysis.sizing.profile_redis import Progress, profile_redis
from cachetop.analysis.sizing.report import REDIS_POLICY, SizingReport, compared_policies
from cachetop.analysis.sizing.trace_file import read_trace
from cachetop.engine.config import InstanceConfig

# Below this many sampled reads a curve is mostly noise: the report says so.
FEW_READS = 2_000


def _notes_for(report: SizingReport) -> None:
    if report.ended_early:
        report.notes.append(f"the profile ended early: {report.ended_early}")
    if report.sampled_reads < FEW_READS:
        report.notes.append(
            f"only {report.sampled_reads} sampled reads: run longer (--duration) or sample more "
            "(--sample-rate) for a steadier curve"
        )
    unfilled = report.unfilled_from()
    if unfilled is not None:
        # A trace short for the cache: its simulated cache is not warm, and the curve reads low.
        # Say how short, so that a cut profile (the guard ended MONITOR, a slow client) is visible.
        remedy = "a longer trace" if report.policy == "trace" else "run longer: --duration"
        report.notes.append(
            f"the profile saw {report.reads_total:,} reads ({report.sampled_reads:,} sampled, "
            f"{report.sampled_keys:,} keys) in {report.duration_s:.1f} s: too few to warm a cache "
            f"of {report.memory.amount(unfilled)} or more (half the trace warms it and must pass at least "
            f"{MIN_WARM_READS_PER_OBJECT:g} reads per object it holds), so hit ratios from there up are "
            f"lower bounds, marked ≥ ({remedy})"
        )
    if unfilled is not None and unfilled <= report.memory_max_bytes:
        report.notes.append(
            "the curve is unreliable even at the current size: do not size the cache from this profile"
        )
    report.calibrate()


async def analyse_redis(
    inst: InstanceConfig,
    *,
    duration: float,
    rate: float,
    seed: int = 0,
    progress: Callable[[Progress], None] | None = None,
    cancel: asyncio.Event | None = None,
    policies: list[str] | None = None,
    **profile_options: Any,
) -> SizingReport:
    """profile_options go to profile_redis (side, count, gate, timeout, baseline_s)."""
    profile = await profile_redis(
        inst, duration=duration, rate=rate, seed=seed, progress=progress, cancel=cancel, **profile_options
    )
    cfg = profile.config
    server_policy = cfg.get("maxmemory-policy", "noeviction")
    simulated = REDIS_POLICY.get(server_policy, "redis-lru")
    memory = redis_model(profile.info_memory, profile.keys, profile.usage_sample)
    maxmemory = int(cfg.get("maxmemory", "0") or 0)
    notes = []
    if maxmemory <= 0:
        maxmemory = profile.info_memory.get("used_memory", 0)
        notes.append("maxmemory is 0 (no limit): the current size is taken as used_memory")
    if server_policy not in REDIS_POLICY:
        notes.append(f"maxmemory-policy {server_policy}: simulated as allkeys-lru")
    req = CurveRequest(
        maxmemory,
        memory,
        policies or compared_policies(simulated),
        samples=int(cfg.get("maxmemory-samples", "5") or 5),
        log_factor=int(cfg.get("lfu-log-factor", "10") or 10),
        decay_minutes=int(cfg.get("lfu-decay-time", "1") or 1),
        seed=seed,
    )
    watched_s = profile.trace.duration_s  # before the clock is scaled
    scale = profile.time_scale
    if scale < 0.95:
        profile.trace.rescale_times(scale)
        notes.append(
            f"the server served {100 * (1 - scale):.0f}% fewer reads while MONITOR was on: the trace's "
            "clock is scaled back to the undisturbed rate (Redis's LRU clock ticks in seconds)"
        )
    curves = await asyncio.to_thread(build_curves, profile.trace, req)
    t = profile.trace
    report = SizingReport(
        inst.name,
        server_policy,
        simulated,
        maxmemory,
        profile.hit_ratio_now,
        curves,
        memory,
        rate,
        len(t.ids),
        t.keys,
        t.reads_total,
        watched_s,
        notes,
        {
            "monitor_on_s": round(profile.stats.on_seconds, 2),
            "monitor_lines": profile.stats.lines,
            "max_omem_bytes": profile.stats.max_omem,
            "omem_limit_bytes": profile.omem_limit,
            "own_commands": profile.own_commands,
            "reads_per_s_before": round(profile.reads_per_s_before),
            "reads_per_s_during": round(profile.reads_per_s_during),
        },
        profile.stopped,
    )
    _notes_for(report)
    return report


def analyse_trace(
    path: Path,
    *,
    rate: float,
    memory_bytes: int | None = None,
    seed: int = 0,
    policies: list[str] | None = None,
) -> SizingReport:
    trace, sized = read_trace(path, rate, seed)
    footprint = sum({k: s for k, s in zip(trace.ids, trace.sizes, strict=True)}.values()) / rate
    notes = []
    if memory_bytes is None:
        memory_bytes = max(1, int(footprint / 10))
        notes.append("no --memory given: the current size is a tenth of the trace's footprint")
    unit = "bytes (the trace's sizes)" if sized else "keys (the trace has no sizes: each key counts 1)"
    memory = MemoryModel(
        1.0, 0.0, f"memory is counted in {unit}", by_size=True, unit="bytes" if sized else "keys"
    )
    chosen = policies or compared_policies("lru")
    curves = build_curves(trace, CurveRequest(memory_bytes, memory, chosen, seed=seed))
    report = SizingReport(
        path.name,
        "trace",
        chosen[0],
        memory_bytes,
        None,
        curves,
        memory,
        rate,
        len(trace.ids),
        trace.keys,
        trace.reads_total,
        trace.duration_s,
        notes,
    )
    _notes_for(report)
    return report


# The drop rate of `watch` above which the report warns that the curve reads low.
DROP_WARN = 0.02


async def analyse_memcached(
    inst: InstanceConfig,
    *,
    duration: float,
    rate: float,
    seed: int = 0,
    progress: Callable[[Progress], None] | None = None,
    cancel: asyncio.Event | None = None,
    policies: list[str] | None = None,
    timeout: float = 5.0,
) -> SizingReport:
    from cachetop.analysis.sizing.memory import memcached_model
    from cachetop.analysis.sizing.profile_memcached import profile_memcached

    profile = await profile_memcached(
        inst, duration=duration, rate=rate, seed=seed, timeout=timeout, progress=progress, cancel=cancel
    )
    memory = memcached_model(profile.stats_after)
    limit = profile.stats_after.get("limit_maxbytes", 0)
    notes = []
    if profile.drop_rate > DROP_WARN:
        notes.append(
            f"watch dropped {100 * profile.drop_rate:.1f}% of the lines ({profile.dropped} of "
            f"{profile.lines + profile.dropped}; the server never waits for a watcher): the trace lacks "
            "those reads; lost at random they barely move the curve, lost in long bursts they make it "
            "read low (raise memcached's -o watcher_logbuf_size)"
        )
    chosen = policies or compared_policies("memcached")
    curves = await asyncio.to_thread(
        build_curves, profile.trace, CurveRequest(limit, memory, chosen, seed=seed)
    )
    t = profile.trace
    report = SizingReport(
        inst.name,
        "memcached (segmented LRU)",
        chosen[0],
        limit,
        profile.hit_ratio_now,
        curves,
        memory,
        rate,
        len(t.ids),
        t.keys,
        t.reads_total,
        t.duration_s,
        notes,
        {"watch_lines": profile.lines, "watch_dropped": profile.dropped},
        profile.stopped,
    )
    _notes_for(report)
    return report
