"""Fixed, realistic Snapshots for screenshots and snapshot tests: no servers, no clock.

Times are a fixed epoch plus the tick number, and every value is a pure function of the tick,
so the rendered screens are identical on every run.
"""

from __future__ import annotations

import math

from cachetop.engine.config import Config, InstanceConfig, Settings, parse_target
from cachetop.model import CommandStat, InstanceMetrics, Snapshot, Status

EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z
TICKS = 240

# name, kind, url, tags, base ops/s, base hit %, p99 ms, memory used MiB, max MiB
FLEET = (
    ("cache-eu-1", "redis", "redis://10.0.1.11:6379", ("web",), 48_200.0, 96.4, 0.9, 1_610, 4_096),
    ("cache-eu-2", "redis", "redis://10.0.1.12:6379", ("web",), 45_900.0, 95.8, 1.1, 1_580, 4_096),
    ("sessions", "valkey", "valkey://10.0.2.20:6379", ("web",), 12_400.0, 88.1, 2.4, 3_350, 4_096),
    ("api-cache", "memcached", "memcached://10.0.3.30:11211", ("api",), 31_000.0, 72.5, 14.0, 860, 1_024),
    ("rate-limit", "redis", "redis://10.0.3.31:6379", ("api",), 9_800.0, 99.2, 0.6, 120, 512),
    ("feature-flags", "redis", "redis://10.0.4.40:6379", (), 310.0, 99.9, 0.4, 18, 256),
    ("search-cache", "memcached", "memcached://10.0.4.41:11211", (), 0.0, 0.0, 0.0, 0, 0),
)
DOWN = "search-cache"
DOWN_REASON = "connection refused"
COMMANDS = {
    "get": (30_100.0, 1.2),
    "set": (9_400.0, 2.1),
    "mget": (3_100.0, 6.8),
    "hgetall": (2_900.0, 4.4),
    "expire": (1_800.0, 0.9),
    "del": (650.0, 1.7),
}


def sample_config() -> Config:
    instances = tuple(
        InstanceConfig(name=name, target=parse_target(url), tags=tags) for name, _k, url, tags, *_ in FLEET
    )
    return Config(path=None, settings=Settings(interval=1.0, window=10.0), instances=instances)


def _instance(tick: int, row: tuple) -> InstanceMetrics:  # type: ignore[type-arg]
    name, kind, url, tags, ops, hit, p99, used_mib, max_mib = row
    address = url.split("://", 1)[1]
    if name == DOWN:
        return InstanceMetrics(
            name=name,
            kind=kind,
            address=address,
            status=Status.DOWN,
            error=DOWN_REASON,
            metrics={},
            tags=tags,
        )
    wave = math.sin(tick / 9.0 + len(name)) * 0.12 + math.sin(tick / 31.0) * 0.08
    ops_now = ops * (1.0 + wave)
    # A miss-heavy stretch on api-cache and an eviction burst on sessions make the charts tell a story.
    hit_now = hit - (18.0 if name == "api-cache" and 120 <= tick < 170 else 0.0) + wave * 2
    evictions = 0.0
    if name == "sessions" and tick >= 150:
        evictions = 220.0 + 80.0 * math.sin(tick / 5.0)
    used = used_mib * (1.0 + tick / 4000.0) * 1024 * 1024
    limit = max_mib * 1024 * 1024
    commands = {}
    if kind != "memcached":
        scale = ops_now / 48_200.0
        commands = {
            cmd: CommandStat(
                calls * scale, usec, 0.0 if cmd != "set" else 0.4, usec / 1000, usec / 400, usec / 150
            )
            for cmd, (calls, usec) in COMMANDS.items()
        }
    facts = {
        "version": "1.6.18" if kind == "memcached" else ("8.0.2" if kind == "valkey" else "7.2.4"),
        "server": kind,
        "role": "standalone" if kind == "memcached" else "master",
        "uptime_s": str(1_209_600 + tick),
        "maxmemory_policy": "lru" if kind == "memcached" else "allkeys-lru",
        "persistence": "none" if kind == "memcached" else "rdb (last save ok)",
    }
    metrics = {
        "hit_ratio": min(100.0, max(0.0, hit_now)),
        "ops_per_sec": ops_now,
        "latency_p50_ms": p99 / 3.2,
        "latency_p95_ms": p99 / 1.6,
        "latency_p99_ms": p99 * (1.0 + wave),
        "server_latency_p50_ms": None if kind == "memcached" else 0.004,
        "server_latency_p99_ms": None if kind == "memcached" else 0.021,
        "memory_used_bytes": used,
        "memory_max_bytes": limit,
        "memory_used_pct": used / limit * 100.0,
        "error_rate": 0.0 if name != "api-cache" else 1.6,
        "evictions_per_sec": evictions,
        "expired_per_sec": ops_now * 0.01,
        "connections": 40 + len(name) * 7,
    }
    return InstanceMetrics(
        name=name,
        kind=kind,
        address=address,
        status=Status.UP,
        error=None,
        metrics=metrics,
        tags=tags,
        facts=facts,
        memory_max_from="maxmemory",
        commands=commands,
        last_poll=EPOCH + tick,
    )


def sample_snapshots(ticks: int = TICKS) -> list[Snapshot]:
    return [
        Snapshot(time=EPOCH + t, window_s=10.0, instances=tuple(_instance(t, row) for row in FLEET))
        for t in range(ticks)
    ]
