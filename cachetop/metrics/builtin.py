"""The built-in metrics: one MetricInfo each, in the order every view lists them.

Order matters: the overview and `snapshot` columns, the detail view's summary line and charts,
the core keys of `snapshot --json` and the preset rules all follow it. A new metric is one entry
here (or a `registry.register(...)` call from its own module) plus its computation.
"""

from __future__ import annotations

from cachetop.metrics import formulas as f
from cachetop.metrics.info import (
    ChartInfo,
    ChartSpec,
    ColumnSpec,
    InstanceView,
    Levels,
    MetricInfo,
    PresetRule,
)
from cachetop.metrics.latency import samples_needed
from cachetop.util import format as fmt


def _host_memory_mark(inst: InstanceView) -> str:
    # No maxmemory: the share is of the host's memory, which is a different promise.
    return "*" if inst.memory_max_from == "system" else ""


def _pct0(value: float | None) -> str:
    return fmt.pct(value, 0)


def _pct2(value: float | None) -> str:
    return fmt.pct(value, 2)


# Charts several metrics share; a chart not named here is titled by its metric's label.
CHARTS: dict[str, ChartInfo] = {
    "hit": ChartInfo("hit ratio", fixed_max=100.0, zoom=True),
    "ops": ChartInfo("ops/s"),
    "latency": ChartInfo("latency"),
    "memory": ChartInfo("memory"),
    "evictions": ChartInfo("keys/s"),
}

BUILTIN: tuple[MetricInfo, ...] = (
    MetricInfo(
        "hit_ratio",
        "%",
        "Share of reads that found their key, over the window: Δhits / (Δhits + Δmisses). "
        "null when there were no reads.",
        "higher",
        "hit_ratio",
        0.01,
        label="hit ratio",
        short="hit",
        levels=Levels(90.0, 80.0),
        column=ColumnSpec("hit", 6, 1),
        chart=ChartSpec("hit", "hit", "success"),
        summary=True,
        preset=PresetRule("low-hit-ratio", "warning", lambda t: min(t + 2, (t + 100) / 2)),
        core=True,
        compute=f.hit_ratio,
    ),
    MetricInfo(
        "ops_per_sec",
        "ops/s",
        "Commands per second over the window, not counting cachetop's own polls and probes.",
        "neither",
        "ops_per_second",
        short="ops/s",
        column=ColumnSpec("ops", 7, 1),
        chart=ChartSpec("ops", "ops/s", "primary"),
        summary=True,
        core=True,
        compute=f.ops_per_sec,
    ),
    MetricInfo(
        "latency_p50_ms",
        "ms",
        "Median round trip of cachetop's probe (CLIENT SETNAME / mn), over the window.",
        "lower",
        "probe_latency_p50_seconds",
        0.001,
        label="probe p50",
        short="p50",
        levels=Levels(5.0, 25.0),
        column=ColumnSpec("p50", 6, 9),
        chart=ChartSpec("latency", "p50", "success", rank=2),
        core=True,
        compute=f.probe_ms(0.50),
        min_probes=samples_needed(0.50),
    ),
    MetricInfo(
        "latency_p95_ms",
        "ms",
        "95th percentile probe round trip over the window.",
        "lower",
        "probe_latency_p95_seconds",
        0.001,
        label="probe p95",
        short="p95",
        levels=Levels(10.0, 50.0),
        chart=ChartSpec("latency", "p95", "accent", rank=1),
        core=True,
        compute=f.probe_ms(0.95),
        min_probes=samples_needed(0.95),
    ),
    MetricInfo(
        "latency_p99_ms",
        "ms",
        "99th percentile probe round trip over the window.",
        "lower",
        "probe_latency_p99_seconds",
        0.001,
        label="probe p99",
        short="p99",
        levels=Levels(10.0, 50.0),
        column=ColumnSpec("p99", 6, 2),
        chart=ChartSpec("latency", "p99", "warning", rank=0),
        summary=True,
        preset=PresetRule("high-latency-p99", "warning", lambda t: t * 0.8),
        core=True,
        compute=f.probe_ms(0.99),
        min_probes=samples_needed(0.99),
    ),
    MetricInfo(
        "latency_probes",
        "probes",
        "Probes the probe percentiles rest on: the window's, or the last 100 when the window "
        "holds fewer (a p99 needs 100: rules act on a p99 only then, on a p95 from 20).",
        "neither",
        "probe_latency_samples",
        compute=f.probe_count,
    ),
    MetricInfo(
        "server_latency_p50_ms",
        "ms",
        "Median command execution time inside the server (LATENCY HISTOGRAM deltas), "
        "over all commands but cachetop's own; Redis 7+ and Valkey only.",
        "lower",
        "server_latency_p50_seconds",
        0.001,
        label="server p50",
        compute=f.server_ms(0.50),
    ),
    MetricInfo(
        "server_latency_p99_ms",
        "ms",
        "99th percentile command execution time inside the server; Redis 7+ and Valkey only.",
        "lower",
        "server_latency_p99_seconds",
        0.001,
        label="server p99",
        chart=ChartSpec("latency", "server p99", "error", rank=3, only_when_present=True),
        compute=f.server_ms(0.99),
    ),
    MetricInfo(
        "memory_used_bytes",
        "bytes",
        "Memory used for data (Redis used_memory, Memcached bytes).",
        "lower",
        "memory_used_bytes",
        label="memory used",
        chart=ChartSpec("memory", "used", "primary"),
        core=True,
        compute=f.memory_used_bytes,
    ),
    MetricInfo(
        "memory_max_bytes",
        "bytes",
        "Memory limit: maxmemory / limit_maxbytes, or the host's memory when Redis has no "
        "maxmemory (see memory_max_from).",
        "neither",
        "memory_max_bytes",
        label="memory limit",
        chart=ChartSpec("memory", "max", "error", rank=1),
        core=True,
        compute=f.memory_max_bytes,
    ),
    MetricInfo(
        "memory_used_pct",
        "%",
        "memory_used_bytes / memory_max_bytes.",
        "lower",
        "memory_used_ratio",
        0.01,
        label="memory used",
        short="mem",
        levels=Levels(80.0, 90.0),
        column=ColumnSpec("mem", 5, 3, narrow=_pct0, mark=_host_memory_mark),
        summary=True,
        preset=PresetRule("high-memory", "critical", lambda t: t - 5),
        core=True,
        compute=f.memory_used_pct,
    ),
    MetricInfo(
        "error_rate",
        "%",
        "Error replies and rejected connections per command over the window, plus failed polls.",
        "lower",
        "error_ratio",
        0.01,
        label="error rate",
        short="err",
        format=_pct2,
        levels=Levels(1.0, 5.0),
        column=ColumnSpec("err", 6, 4),
        summary=fmt.pct,
        core=True,
        compute=f.error_rate,
    ),
    MetricInfo(
        "evictions_per_sec",
        "keys/s",
        "Keys evicted to free memory, per second over the window.",
        "lower",
        "evictions_per_second",
        label="evictions/s",
        short="evict/s",
        column=ColumnSpec("evict", 7, 5),
        chart=ChartSpec("evictions", "evicted", "error"),
        core=True,
        compute=f.counter_rate("evictions"),
    ),
    MetricInfo(
        "expired_per_sec",
        "keys/s",
        "Keys removed because their TTL passed, per second over the window.",
        "neither",
        "expired_per_second",
        label="expired/s",
        chart=ChartSpec("evictions", "expired", "accent", rank=1),
        core=True,
        compute=f.counter_rate("expired"),
    ),
    MetricInfo(
        "connections",
        "clients",
        "Connected clients (Redis connected_clients, Memcached curr_connections).",
        "neither",
        "connections",
        short="conn",
        column=ColumnSpec("conn", 5, 10, narrow=fmt.short_count),
        core=True,
        compute=f.gauge_whole("connections"),
    ),
    MetricInfo(
        "blocked_clients",
        "clients",
        "Clients blocked in BLPOP and friends (Redis and Valkey only).",
        "lower",
        "blocked_clients",
        compute=f.gauge_whole("blocked_clients"),
    ),
    MetricInfo(
        "foreign_monitor_omem_bytes",
        "bytes",
        "Output buffers of MONITOR clients that are not cachetop's (CLIENT LIST flags O), summed:"
        " a forgotten MONITOR grows this until the server runs out of memory. Read with CLIENT"
        " LIST every 5 s (Redis and Valkey only).",
        "lower",
        "foreign_monitor_output_buffer_bytes",
        compute=f.gauge_whole("foreign_monitor_omem"),
    ),
    MetricInfo(
        "stampede_events",
        "events",
        "Cache stampedes in the window: one key missed, then written by at least 3 different "
        "clients within 2 s (seen in MONITOR samples or memcached watch).",
        "lower",
        "stampede_events",
        # Contributed by the hot-key collector (it sees the key events), not computed from counters.
    ),
    MetricInfo(
        "expiry_cliff_keys",
        "keys",
        "Keys due to expire in the same second: the largest expiry cliff within [keyspace]"
        " cliff_horizon (default 1 h), estimated by the last keyspace analysis (`cachetop keyspace`"
        " or the Keyspace tab), re-evaluated against the clock. Absent until an analysis has run.",
        "lower",
        "expiry_cliff_keys",
        label="expiry cliff",
        # Contributed by the last keyspace report (analysis/keyspace/figures.py); no background scan.
    ),
    MetricInfo(
        "cpu_pct",
        "%",
        "Server process CPU as a share of one core, when the server runs on this host.",
        "lower",
        "process_cpu_ratio",
        0.01,
        label="CPU",
        compute=f.cpu_pct,
    ),
    MetricInfo(
        "rss_bytes",
        "bytes",
        "Server process resident memory, when the server runs on this host.",
        "lower",
        "process_resident_memory_bytes",
        label="RSS",
        compute=f.gauge_whole("rss"),
    ),
)
