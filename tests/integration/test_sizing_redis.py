"""Sizing, checked by really resizing (issue 15): a Redis under a cache-aside Zipf 0.9 workload over
300,000 keys of 1 KB; cachetop predicts the hit ratio at M/2 and 2M from a MONITOR profile at M;
the test then sets maxmemory to each, runs the same workload until the hit ratio settles and
compares with the server's own counters. Also: no MONITOR client is left behind."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
import redis

from cachetop.analysis.sizing.analyse import analyse_redis
from cachetop.engine.config import InstanceConfig
from cachetop.engine.targets import parse_target
from cachetop.servers import LocalServer

M = 40 << 20
WINDOW_READS = 150_000  # reads per measurement window
SETTLED_POINTS = 0.5  # two windows in a row this close: settled
PROFILE_S = 30.0


def inst_of(server: LocalServer) -> InstanceConfig:
    return InstanceConfig(name="sized", target=parse_target(server.url))


def start_workload(server: LocalServer, seed: int = 7) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.sizing_workload",
            str(server.port),
            "--forever",
            "--requests",
            "50000",
            "--seed",
            str(seed),
        ],
        stdout=subprocess.DEVNULL,
    )


def _reads(client: redis.Redis) -> tuple[int, int]:
    s = client.info("stats")
    return s["keyspace_hits"], s["keyspace_misses"]


def settled_hit_ratio(client: redis.Redis, deadline_s: float = 120.0) -> float:
    """The hit ratio (%) from the server's keyspace counters, settled (see `settled`)."""
    return settled(lambda: _reads(client), deadline_s)


def settled(reads: Callable[[], tuple[int, int]], deadline_s: float) -> float:
    """The hit ratio (%) over the last window of WINDOW_READS reads, once two windows in a row
    agree within SETTLED_POINTS (the workload runs in its own process meanwhile); `reads` gives
    the server's (hits, misses) so far."""
    end = time.monotonic() + deadline_s
    last = None
    h0, m0 = reads()
    while time.monotonic() < end:
        h, m = reads()
        if (h - h0) + (m - m0) < WINDOW_READS:
            time.sleep(0.1)  # polling the server's counters with a deadline, not a synchronisation
            continue
        ratio = 100.0 * (h - h0) / ((h - h0) + (m - m0))
        if last is not None and abs(ratio - last) < SETTLED_POINTS:
            return ratio
        last, h0, m0 = ratio, h, m
    raise AssertionError(f"the hit ratio did not settle in {deadline_s} s (last window {last})")


def monitor_clients(client: redis.Redis) -> list[dict]:
    return [c for c in client.client_list() if "O" in c.get("flags", "") or c.get("cmd") == "monitor"]


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu"])
def test_prediction_at_half_and_double_memory_matches_the_resized_server(make_redis, policy) -> None:
    server = make_redis("--maxmemory", str(M), "--maxmemory-policy", policy)
    client = redis.Redis(port=server.port)
    workload = start_workload(server)
    try:
        now = settled_hit_ratio(client)
        # 30 s (the CLI's default): on a quiet machine the trace then passes the 2M cache about 8
        # times in its warm-up half, twice what a trusted point needs (curve.MIN_WARM_READS_PER_OBJECT).
        report = asyncio.run(analyse_redis(inst_of(server), duration=PROFILE_S, rate=0.05))
        assert monitor_clients(client) == []  # the profile's MONITOR is gone
        curve = report.current_curve()
        assert curve is not None and report.memory_max_bytes == M
        profile = f"sample {report.to_json()['sample']}; cost {report.cost}; notes {report.notes}"
        print(f"{policy}: {profile}")
        # A profile too short for these sizes (a loaded machine: the guard ended MONITOR early, or
        # the workload ran slowly) gives lower bounds that read low: the report says so, and so
        # does this test, instead of comparing them with the resized server or retrying quietly.
        unfilled = [p.memory_bytes for p in curve.points if not p.filled and p.memory_bytes <= 2 * M]
        if unfilled:
            pytest.fail(f"the profile was too short to predict {unfilled} (lower bounds): {profile}")
        predicted = {size: curve.hit_ratio_at(size) for size in (M // 2, 2 * M)}
        measured = {}
        for size in (M // 2, 2 * M):
            client.config_set("maxmemory", size)
            measured[size] = settled_hit_ratio(client)
        print(
            f"{policy}: now {now:.2f} (profile says {report.hit_ratio_now:.2f}, predicted "
            f"{report.predicted_now:.2f}); predicted {predicted}; measured {measured}"
        )
        for size in (M // 2, 2 * M):
            assert abs(predicted[size] - measured[size]) <= 3.0, (size, predicted, measured, profile)
    finally:
        workload.kill()
        workload.wait()
