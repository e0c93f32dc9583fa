"""Sizing checked by resizing memcached (issue 15): -m M under a cache-aside Zipf 0.9 workload over
300,000 keys of 1 KB; cachetop predicts the hit ratio at M/2 and 2M from a `watch` profile at M; the
test restarts memcached with -m halved and doubled (a restart per size), runs the same workload
until the hit ratio settles and compares with the server's counters.

memcached drops watch lines rather than wait for a watcher; the servers here run with a larger
watcher buffer (docs/sizing.md gives the same advice). About 40 s on 2 cores (three servers, one 20 s
profile)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

import pytest

from cachetop.analysis.sizing.analyse import analyse_memcached
from cachetop.engine.config import InstanceConfig
from cachetop.engine.targets import parse_target
from cachetop.servers import LocalServer
from tests.integration.test_keyspace_memcached import mc_stats as stats
from tests.integration.test_sizing_redis import settled

M_MB = 40
# Only the watcher's buffer: memcached 1.6's option parser falls through from worker_logbuf_size
# into slab_sizes, so `-o worker_logbuf_size=4096` also makes one slab class of 4096-byte chunks
# (a 1 KB item then takes 4 KB: a quarter of the items fit).
LOG_BUFFERS = ("-o", "watcher_logbuf_size=16384")


def settled_hit_ratio(port: int, deadline_s: float = 180.0) -> float:
    """The hit ratio (%) from get_hits and get_misses, settled (test_sizing_redis.settled), counted
    from the first eviction on: a restarted server fills from empty, and its hit ratio creeps up
    while it does (two windows of that creep can agree within SETTLED_POINTS and read a point or
    two low)."""
    end = time.monotonic() + deadline_s
    while stats(port)["evictions"] == 0:
        assert time.monotonic() < end, "the cache never filled"
        time.sleep(0.1)  # polling the server's counters with a deadline, not a synchronisation

    def reads() -> tuple[int, int]:
        s = stats(port)
        return s["get_hits"], s["get_misses"]

    return settled(reads, end - time.monotonic())


def workload(server: LocalServer) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.sizing_workload_mc",
            str(server.port),
            "--forever",
            "--requests",
            "50000",
            "--seed",
            "7",
        ],
        stdout=subprocess.DEVNULL,
    )


def measured_at(make_memcached: Any, memory_mb: int) -> float:
    server = make_memcached(*LOG_BUFFERS, memory_mb=memory_mb)
    load = workload(server)
    try:
        return settled_hit_ratio(server.port)
    finally:
        load.kill()
        load.wait()
        server.cleanup()


@pytest.mark.slow
def test_prediction_at_half_and_double_memory_matches_the_restarted_server(make_memcached: Any) -> None:
    server = make_memcached(*LOG_BUFFERS, memory_mb=M_MB)
    load = workload(server)
    try:
        now = settled_hit_ratio(server.port)
        inst = InstanceConfig(name="mc", target=parse_target(server.url))
        report = asyncio.run(analyse_memcached(inst, duration=20.0, rate=0.05))
    finally:
        load.kill()
        load.wait()
        server.cleanup()
    curve = report.current_curve()
    assert curve is not None and report.memory_max_bytes == M_MB << 20
    predicted = {mb: curve.hit_ratio_at(mb << 20) for mb in (M_MB // 2, 2 * M_MB)}
    measured = {mb: measured_at(make_memcached, mb) for mb in (M_MB // 2, 2 * M_MB)}
    print(
        f"memcached: now {now:.2f} (predicted {report.predicted_now:.2f}); predicted {predicted}; "
        f"measured {measured}; notes {report.notes}; cost {report.cost}"
    )
    for mb in (M_MB // 2, 2 * M_MB):
        assert abs(predicted[mb] - measured[mb]) <= 3.0, (mb, predicted, measured)
