"""Redis and Valkey: one poll's Sample, built from the INFO reply (and LATENCY HISTOGRAM's).

cachetop's own commands and connections (its own, the probe's, other cachetop processes' from
CLIENT LIST) are set beside the server's counters here, so ops/s and connections are the
application's; viewer_facts words the other viewers and foreign MONITORs for the instance view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cachetop.backends.base import BackendError
from cachetop.backends.own_traffic import OwnTraffic
from cachetop.backends.redis_info import (
    field_float,
    field_int,
    field_text,
    parse_latency_histogram,
    persistence_summary,
)
from cachetop.backends.viewers import ViewerTally
from cachetop.model import Sample, Status

if TYPE_CHECKING:
    from cachetop.backends.redis import RedisBackend


def sample_from_info(
    backend: RedisBackend,
    now: float,
    fields: dict[bytes, bytes],
    commandstats: dict[str, tuple[int, int, int]],
    raw_hist: Any,
    own: OwnTraffic,
) -> Sample:
    if fields.get(b"loading") == b"1":
        pct = field_text(fields, b"loading_loaded_perc") or "?"
        raise BackendError(Status.LOADING, f"loading the dataset ({pct}% done)")
    if field_text(fields, b"server_name") == "valkey":
        backend.kind = "valkey"
    cpu = (field_float(fields, b"used_cpu_sys") or 0.0) + (field_float(fields, b"used_cpu_user") or 0.0)
    counters = {
        "hits": field_int(fields, b"keyspace_hits") or 0,
        "misses": field_int(fields, b"keyspace_misses") or 0,
        # Raw server counters and ours beside them: metrics/window.py subtracts the deltas,
        # so a reset shows on the server's own counter and never as a false one of ours.
        "commands": field_int(fields, b"total_commands_processed") or 0,
        # Ours, and what other cachetop processes sent (their client names count it).
        "own_commands": sum(own.commands.values()) + backend.viewers.commands,
        "own_errors": own.errors,
        # Keyspace hits/misses our reads caused, and those other processes' names claim.
        "own_hits": own.hits + backend.viewers.hits,
        "own_misses": own.misses + backend.viewers.misses,
        "errors": (field_int(fields, b"total_error_replies") or 0)
        + (field_int(fields, b"rejected_connections") or 0),
        "evictions": field_int(fields, b"evicted_keys") or 0,
        "expired": field_int(fields, b"expired_keys") or 0,
        "cpu_ms": int(cpu * 1000),
    }
    maxmemory = field_int(fields, b"maxmemory") or 0
    memory_max = maxmemory or field_int(fields, b"total_system_memory") or 0
    if backend._listed_last:  # every cachetop* client of that very moment, ours and others'
        own_connections = backend.viewers.own_connections + backend.viewers.connections
    else:
        own_connections = 1 + (1 if backend._probe.connected else 0) + own.connections
        own_connections += backend.viewers.connections
    gauges: dict[str, float] = {
        "memory_used": field_int(fields, b"used_memory") or 0,
        "memory_max": memory_max,
        "memory_max_is_system": 0.0 if maxmemory else 1.0,
        "connections": max(0, (field_int(fields, b"connected_clients") or 0) - own_connections),
        "blocked_clients": field_int(fields, b"blocked_clients") or 0,
    }
    rss = field_int(fields, b"used_memory_rss")
    if rss is not None:
        gauges["rss"] = rss
    pid = field_int(fields, b"process_id")
    version = field_text(fields, b"valkey_version") or field_text(fields, b"redis_version") or "?"
    facts = {
        "version": version,
        "server": backend.kind,
        "role": field_text(fields, b"role") or "?",
        "uptime_s": field_text(fields, b"uptime_in_seconds") or "?",
        "maxmemory_policy": field_text(fields, b"maxmemory_policy") or "?",
        "persistence": persistence_summary(fields),
        "mem_fragmentation_ratio": field_text(fields, b"mem_fragmentation_ratio") or "?",
        "connected_slaves": field_text(fields, b"connected_slaves") or "0",
    }
    if pid is not None:
        facts["pid"] = str(pid)
    if backend._foreign_omem is not None:
        gauges["foreign_monitor_omem"] = backend._foreign_omem
    facts.update(viewer_facts(backend.viewers))
    return Sample(
        time=now,
        counters=counters,
        gauges=gauges,
        facts=facts,
        epoch=field_text(fields, b"run_id") or "",
        commandstats=commandstats,
        own_commandstats=own.commands,
        latency_histograms=parse_latency_histogram(raw_hist) if raw_hist is not None else {},
    )


def viewer_facts(tally: ViewerTally) -> dict[str, str]:
    """Other cachetop processes and foreign MONITORs, as lines for the instance view."""
    facts: dict[str, str] = {}
    if tally.viewers:
        plural = "s" if tally.viewers > 1 else ""
        facts["other_viewers"] = (
            f"{tally.viewers} other cachetop viewer{plural}, {tally.connections} connections"
            " (their commands and connections are left out)"
        )
        if tally.uncounted:
            facts["other_viewers"] += (
                f"; {tally.uncounted} of the connections report no command count (an older"
                " cachetop?): what they send shows as traffic"
            )
    if tally.foreign_monitors:
        facts["foreign_monitors"] = "; ".join(
            f"{m.addr} age {m.age_s}s omem {m.omem} bytes" for m in tally.foreign_monitors[:5]
        )
    return facts
