"""The data that flows through the pipeline, and (re-exported) METRICS, the registry of metrics.

Everything here is immutable and free of I/O so that every subscriber (TUI, alerts, exporters)
can hold on to a Snapshot without copying it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

# The registry lives in cachetop.metrics.registry; re-exported here, where it always was.
from cachetop.metrics.info import UNIT_DECIMALS as UNIT_DECIMALS
from cachetop.metrics.info import MetricInfo as MetricInfo
from cachetop.metrics.registry import CORE_METRICS as CORE_METRICS
from cachetop.metrics.registry import METRICS as METRICS


class Status(StrEnum):
    UNKNOWN = "unknown"  # not polled yet: its first poll is still in flight
    UP = "up"
    DOWN = "down"
    AUTH_FAILED = "auth_failed"
    LOADING = "loading"


Kind = Literal["redis", "valkey", "memcached"]


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
