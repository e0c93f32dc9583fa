"""Issue 13: the first data frame. The Monitor publishes its first Snapshot once every instance
has answered its first poll, not one interval later: status, memory and connections come from
that one poll, the rates from the next."""

from __future__ import annotations

import time

import redis as redis_py

from cachetop.engine.monitor import Monitor
from cachetop.model import Snapshot, Status
from cachetop.servers import LocalServer
from tests.monitoring import fast_config

INTERVAL = 5.0  # long on purpose: the old first publish came one interval after the start


async def test_first_snapshot_carries_status_memory_and_connections_from_the_first_poll(
    redis: LocalServer,
) -> None:
    app = redis_py.Redis(port=redis.port)
    app.config_set("maxmemory", str(64 << 20))
    app.set("k", "v" * 1000)
    used = int(app.info("memory")["used_memory"])
    snaps: list[tuple[float, int, Snapshot]] = []
    config = fast_config(redis.url, interval=INTERVAL, window=10.0)
    try:
        started = time.monotonic()
        async with Monitor(config) as mon:
            mon.subscribe(lambda s: snaps.append((time.monotonic() - started, mon.pollers[0].polls, s)))
            await mon.wait_snapshot(timeout=INTERVAL * 2)
    finally:
        app.close()
    took, polls, first = snaps[0]
    inst = first.instances[0]
    assert polls == 1, "published after the first poll, not the second"
    assert took < INTERVAL / 2, f"first snapshot {took:.2f}s after the start (interval {INTERVAL:g}s)"
    assert inst.status == Status.UP
    assert inst.metrics["memory_max_bytes"] == 64 << 20
    assert abs(inst.metrics["memory_used_bytes"] - used) < used * 0.2, (
        inst.metrics["memory_used_bytes"],
        used,
    )
    assert inst.metrics["connections"] == 1  # the application's one connection; ours are not counted
    assert inst.metrics["ops_per_sec"] is None  # a rate needs two polls: it follows
