"""Keyspace analysis: where the memory goes, what expires together, what sits idle, what would
compress; one bounded walk per instance (Redis/Valkey: SCAN and a stratified sample; memcached:
the LRU crawler's metadump), every total from a sample stated with its 95% interval."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cachetop.analysis.keyspace.redis_conn import KeyspaceError, OwnCounts
from cachetop.analysis.keyspace.report import InstanceReport, KeyspaceProgress
from cachetop.analysis.keyspace.store import load_report, save_report
from cachetop.engine.config import InstanceConfig
from cachetop.util.aio import OwnTrafficGate

DEFAULT_SAMPLE = 10_000
DEFAULT_RATE = 20_000  # operations per second, as the evict path (actions/evict.py)

__all__ = [
    "DEFAULT_RATE",
    "DEFAULT_SAMPLE",
    "InstanceReport",
    "KeyspaceError",
    "KeyspaceProgress",
    "OwnCounts",
    "analyse_instance",
    "load_report",
    "save_report",
]


async def analyse_instance(
    inst: InstanceConfig,
    *,
    sample: int = DEFAULT_SAMPLE,
    rate: float | None = None,
    values_per_prefix: int = 200,
    progress: Callable[[KeyspaceProgress], None] | None = None,
    max_scan: int | None = None,
    seed: int | None = None,
    timeout: float = 5.0,
    own: OwnCounts | None = None,
    gate: OwnTrafficGate | None = None,
    cancel: asyncio.Event | None = None,
) -> InstanceReport:
    """Walks one instance and returns its report (report.to_json() is one element of the JSON's
    "instances"). `rate`: operations per second (None: DEFAULT_RATE; 0: no limit). `cancel`: set
    it once to end the scan early (the sample of what was seen still runs), twice... cancel the
    task to stop at once; the connection is closed either way. In a process that polls the
    instance, pass the poller's own-traffic gate and register `own` with its backend (OwnCounts).
    `seed`: the same keys are sampled every time (a repeatable run); None: a fresh sample."""
    if inst.target.kind == "memcached":
        from cachetop.analysis.keyspace.memcached_walk import analyse_memcached

        return await analyse_memcached(inst, timeout=timeout, progress=progress, cancel=cancel)
    if inst.target.mode != "single":
        raise KeyspaceError(
            f"{inst.target.redacted_url}: keyspace analysis walks one server; name a cluster node or the "
            "master itself (redis://host:port)"
        )
    from cachetop.analysis.keyspace.redis_walk import KeyspaceWalk

    walk = KeyspaceWalk(
        inst,
        sample=sample,
        rate=DEFAULT_RATE if rate is None else rate,
        values_per_prefix=values_per_prefix,
        max_scan=max_scan,
        seed=seed,
        timeout=timeout,
        progress=progress,
        own=own,
        gate=gate,
        cancel=cancel,
    )
    return await walk.run()
