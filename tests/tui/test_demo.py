"""`cachetop demo`'s fleet: real servers, the phased workload, and a clean stop."""

from __future__ import annotations

import os
import random

import pytest
import redis as redis_py

from cachetop.demo import PHASES, DemoFleet, Zipf, phase_at
from tests.conftest import wait_until


def test_phases_cycle_in_order() -> None:
    assert [phase_at(t) for t in (0, 19.9, 20, 31.9, 32, 44, 59.9, 60)] == [
        "steady",
        "steady",
        "miss-heavy",
        "miss-heavy",
        "eviction burst",
        "cold start",
        "cold start",
        "steady",
    ]
    assert phase_at(2.5, scale=0.1) == "miss-heavy"
    assert sum(s for _, s in PHASES) == 60


def test_zipf_puts_most_weight_on_the_first_ranks() -> None:
    zipf = Zipf(1000, 1.05, random.Random(1))
    draws = [zipf.draw() for _ in range(20_000)]
    assert all(0 <= d < 1000 for d in draws)
    assert draws.count(0) > draws.count(1) > draws.count(10) > draws.count(500)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_demo_fleet_drives_hits_misses_evictions_and_stops_everything() -> None:
    fleet = DemoFleet(ops_per_sec=3000, phase_scale=0.05)  # a whole cycle every 3 s
    with pytest.raises(RuntimeError, match="boom"), fleet:
        config = fleet.config()
        assert [i.name for i in config.instances] == ["cache-main", "sessions", "cache-small"]
        assert [i.tags for i in config.instances] == [("web",), ("sessions",), ("web",)]
        main = redis_py.Redis(port=fleet.servers["cache-main"].port)
        small = redis_py.Redis(port=fleet.servers["cache-small"].port)
        stats = lambda c: c.info("stats")  # noqa: E731
        wait_until(lambda: stats(main)["keyspace_hits"] > 500, deadline_s=20, what="hits")
        wait_until(lambda: stats(main)["keyspace_misses"] > 500, deadline_s=20, what="misses")
        wait_until(lambda: stats(small)["evicted_keys"] > 0, deadline_s=20, what="evictions under 2mb")
        assert small.config_get("maxmemory")["maxmemory"] == str(2 * 1024 * 1024)
        main.close()
        small.close()
        pids = [s.pid for s in fleet.servers.values()] + [fleet.workload.pid]
        raise RuntimeError("boom")  # a crash inside the demo
    for pid in pids:
        wait_until(lambda pid=pid: not _alive(pid), deadline_s=10, what=f"pid {pid} stopped")
