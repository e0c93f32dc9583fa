"""The data that flows through the pipeline, and METRICS: the one registry of metric names.

Everything here is immutable and free of I/O so that every subscriber (TUI, alerts, exporters)
can hold on to a Snapshot without copying it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal


class Status(StrEnum):
    UNKNOWN = "unknown"  # not polled yet; never printed by `snapshot`, which waits for a poll
    UP = "up"
    DOWN = "down"
    AUTH_FAILED = "auth_failed"
    LOADING = "loading"


Kind = Literal["redis", "valkey", "memcached"]


@dataclass(frozen=True, slots=True)
class MetricInfo:
    name: str
    unit: str
    help: str
    # Which direction is healthy; the TUI colours and the alert presets read it.
    better: Literal["higher", "lower", "neither"] = "neither"
    # Prometheus exposition: the name without prefix, and the factor from our unit to the base unit.
    prom_name: str = ""
    prom_scale: float = 1.0

    @property
    def decimals(self) -> int:
        """Digits after the point when a person reads a value (alert messages, the alerts view)."""
        return UNIT_DECIMALS.get(self.unit, 0)


# Precision of each unit for people: 90.0%, 0.04 ms, 1234.5 ops/s; counts and bytes are whole.
UNIT_DECIMALS = {"%": 1, "ms": 2, "ops/s": 1, "keys/s": 1}


def _m(*args: Any, **kwargs: Any) -> tuple[str, MetricInfo]:
    info = MetricInfo(*args, **kwargs)
    return info.name, info


METRICS: Mapping[str, MetricInfo] = MappingProxyType(
    dict(
        [
            _m(
                "hit_ratio",
                "%",
                "Share of reads that found their key, over the window: Δhits / (Δhits + Δmisses). "
                "null when there were no reads.",
                "higher",
                "hit_ratio",
                0.01,
            ),
            _m(
                "ops_per_sec",
                "ops/s",
                "Commands per second over the window, not counting cachetop's own polls and probes.",
                "neither",
                "ops_per_second",
            ),
            _m(
                "latency_p50_ms",
                "ms",
                "Median round trip of cachetop's probe (CLIENT SETNAME / mn), over the window.",
                "lower",
                "probe_latency_p50_seconds",
                0.001,
            ),
            _m(
                "latency_p95_ms",
                "ms",
                "95th percentile probe round trip over the window.",
                "lower",
                "probe_latency_p95_seconds",
                0.001,
            ),
            _m(
                "latency_p99_ms",
                "ms",
                "99th percentile probe round trip over the window.",
                "lower",
                "probe_latency_p99_seconds",
                0.001,
            ),
            _m(
                "latency_probes",
                "probes",
                "Probes the probe percentiles rest on: the window's, or the last 100 when the window "
                "holds fewer (a p99 needs 100: rules act on a p99 only then, on a p95 from 20).",
                "neither",
                "probe_latency_samples",
            ),
            _m(
                "server_latency_p50_ms",
                "ms",
                "Median command execution time inside the server (LATENCY HISTOGRAM deltas), "
                "over all commands but cachetop's own; Redis 7+ and Valkey only.",
                "lower",
                "server_latency_p50_seconds",
                0.001,
            ),
            _m(
                "server_latency_p99_ms",
                "ms",
                "99th percentile command execution time inside the server; Redis 7+ and Valkey only.",
                "lower",
                "server_latency_p99_seconds",
                0.001,
            ),
            _m(
                "memory_used_bytes",
                "bytes",
                "Memory used for data (Redis used_memory, Memcached bytes).",
                "lower",
                "memory_used_bytes",
            ),
            _m(
                "memory_max_bytes",
                "bytes",
                "Memory limit: maxmemory / limit_maxbytes, or the host's memory when Redis has no "
                "maxmemory (see memory_max_from).",
                "neither",
                "memory_max_bytes",
            ),
            _m(
                "memory_used_pct",
                "%",
                "memory_used_bytes / memory_max_bytes.",
                "lower",
                "memory_used_ratio",
                0.01,
            ),
            _m(
                "error_rate",
                "%",
                "Error replies and rejected connections per command over the window, plus failed polls.",
                "lower",
                "error_ratio",
                0.01,
            ),
            _m(
                "evictions_per_sec",
                "keys/s",
                "Keys evicted to free memory, per second over the window.",
                "lower",
                "evictions_per_second",
            ),
            _m(
                "expired_per_sec",
                "keys/s",
                "Keys removed because their TTL passed, per second over the window.",
                "neither",
                "expired_per_second",
            ),
            _m(
                "connections",
                "clients",
                "Connected clients (Redis connected_clients, Memcached curr_connections).",
                "neither",
                "connections",
            ),
            _m(
                "blocked_clients",
                "clients",
                "Clients blocked in BLPOP and friends (Redis and Valkey only).",
                "lower",
                "blocked_clients",
            ),
            _m(
                "foreign_monitor_omem_bytes",
                "bytes",
                "Output buffers of MONITOR clients that are not cachetop's (CLIENT LIST flags O), summed:"
                " a forgotten MONITOR grows this until the server runs out of memory. Read with CLIENT"
                " LIST every 5 s (Redis and Valkey only).",
                "lower",
                "foreign_monitor_output_buffer_bytes",
            ),
            _m(
                "stampede_events",
                "events",
                "Cache stampedes in the window: one key missed, then written by at least 3 different "
                "clients within 2 s (seen in MONITOR samples or memcached watch).",
                "lower",
                "stampede_events",
            ),
            _m(
                "cpu_pct",
                "%",
                "Server process CPU as a share of one core, when the server runs on this host.",
                "lower",
                "process_cpu_ratio",
                0.01,
            ),
            _m(
                "rss_bytes",
                "bytes",
                "Server process resident memory, when the server runs on this host.",
                "lower",
                "process_resident_memory_bytes",
            ),
        ]
    )
)

# The keys every `snapshot --json` instance carries, in this order, even when null.
CORE_METRICS: tuple[str, ...] = (
    "hit_ratio",
    "ops_per_sec",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "memory_used_bytes",
    "memory_max_bytes",
    "memory_used_pct",
    "error_rate",
    "evictions_per_sec",
    "expired_per_sec",
    "connections",
)


@dataclass(frozen=True, slots=True)
class Sample:
    """One poll's raw, cumulative readings, normalised across backends.

    counters: monotonically increasing since server start (hits, misses, commands, errors,
    evictions, expired). gauges: point-in-time values. Backends fill these; metrics/ turns
    them into windowed numbers.
    """

    time: float  # monotonic seconds, from the Monitor's clock
    counters: Mapping[str, int]
    gauges: Mapping[str, float]
    facts: Mapping[str, str] = field(default_factory=dict)
    # Identifies one server lifetime (run_id, or pid+start time): a change means a restart.
    epoch: str = ""
    # Per command: (calls, usec, failed_calls), cumulative (INFO commandstats).
    commandstats: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)
    # Per command: {upper_bound_usec: cumulative_count} (LATENCY HISTOGRAM), cumulative.
    latency_histograms: Mapping[str, Mapping[int, int]] = field(default_factory=dict)
    # Per command: how many of the calls in commandstats were cachetop's own, cumulative.
    own_commandstats: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CommandStat:
    calls_per_sec: float
    usec_per_call: float | None
    failed_per_sec: float
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


@dataclass(frozen=True, slots=True)
class InstanceMetrics:
    name: str
    kind: str
    address: str
    status: Status
    error: str | None
    metrics: Mapping[str, float | int | None]
    tags: tuple[str, ...] = ()
    facts: Mapping[str, str] = field(default_factory=dict)
    memory_max_from: Literal["maxmemory", "system"] | None = None
    commands: Mapping[str, CommandStat] = field(default_factory=dict)
    last_poll: float | None = None  # wall-clock time of the last successful poll
    # Cluster nodes: "master" or "replica", and the shard (the slots its master serves).
    role: str | None = None
    shard: str | None = None
    # Extra sections other parts of the pipeline attach (hot keys, alerts, ...), keyed by owner.
    extras: Mapping[str, Any] = field(default_factory=dict)
    # Running totals since cachetop started watching, own traffic removed (metrics/totals.py):
    # hits, misses, commands, errors, evictions, expired. Prometheus exposes them as counters.
    counters: Mapping[str, int] = field(default_factory=dict)
    # Up, but its poll is still in flight past its interval: the values are its last ones, older
    # than one interval, until the poll answers or its timeout declares it down.
    stale: bool = False

    def metric(self, name: str) -> float | int | None:
        return self.metrics.get(name)


@dataclass(frozen=True, slots=True)
class Snapshot:
    time: float  # wall-clock unix seconds
    window_s: float
    instances: tuple[InstanceMetrics, ...]

    def by_name(self, name: str) -> InstanceMetrics | None:
        for inst in self.instances:
            if inst.name == name:
                return inst
        return None

    def to_json(self) -> dict[str, Any]:
        """The documented, stable JSON shape of `cachetop snapshot --json`."""
        return {
            "time": round(self.time, 3),
            "window_s": round(self.window_s, 3),
            "instances": [instance_to_json(i) for i in self.instances],
        }


def _json_number(value: float | int | None) -> float | int | None:
    if value is None or isinstance(value, int):
        return value
    if not math.isfinite(value):
        return None  # JSON has no NaN or infinity; an undefined value is null
    return round(value, 4)


def instance_to_json(inst: InstanceMetrics) -> dict[str, Any]:
    # Every registered metric, always (null when undefined), core ones first: a stable shape.
    metrics: dict[str, Any] = {name: _json_number(inst.metrics.get(name)) for name in CORE_METRICS}
    for name in METRICS:
        if name not in metrics:
            metrics[name] = _json_number(inst.metrics.get(name))
    out: dict[str, Any] = {
        "name": inst.name,
        "kind": inst.kind,
        "address": inst.address,
        "status": str(inst.status),
        "error": inst.error,
        "metrics": metrics,
    }
    if inst.stale:
        out["stale"] = True  # up, but the values are older than one interval (a poll in flight)
    if inst.role is not None:
        out["role"] = inst.role
    if inst.shard is not None:
        out["shard"] = inst.shard
    if inst.tags:
        out["tags"] = list(inst.tags)
    if inst.memory_max_from:
        out["memory_max_from"] = inst.memory_max_from
    return out
