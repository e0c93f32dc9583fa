"""One evict on one instance, whatever its kind, as the dashboard and the daemon's action API run
it: keys, a pattern or a prefix, with or without an idle threshold, on Redis, Valkey or
memcached. (`cachetop evict` has its own, with its rate, batch and mode options.)"""

from __future__ import annotations

import threading

from cachetop.actions.evict import DEFAULT_RATE, EvictRequest, EvictResult, ProgressFn, RedisEvictor
from cachetop.actions.memcached_evict import MemcachedEvictor
from cachetop.actions.memcached_idle import MemcachedIdleEvictor
from cachetop.actions.own_report import NOT_REPORTED, ActionOwnReport
from cachetop.engine.config import InstanceConfig


def run_evict(
    inst: InstanceConfig,
    request: EvictRequest,
    *,
    dry_run: bool,
    timeout: float,
    cancel: threading.Event,
    progress: ProgressFn | None = None,
    own: ActionOwnReport = NOT_REPORTED,
) -> EvictResult:
    """`own`: where a Redis evict reports what it sends (memcached's are not reported: `watch`
    and metadump move no counter cachetop shows)."""
    if inst.target.kind == "memcached" and request.idle_over_s is not None:
        idle = MemcachedIdleEvictor(
            [inst.target],
            idle_over_s=request.idle_over_s,
            pattern=request.pattern or b"*",
            timeout=timeout,
            cancel=cancel,
            progress=progress,
        )
        return idle.run_idle(dry_run=dry_run)
    if inst.target.kind == "memcached":
        evictor = MemcachedEvictor([inst.target], timeout=timeout, cancel=cancel, progress=progress)
        return evictor.run(request.keys, dry_run=dry_run)
    runner = RedisEvictor(inst, timeout=timeout, rate=DEFAULT_RATE, cancel=cancel, progress=progress, own=own)
    return runner.run(request, dry_run=dry_run)
