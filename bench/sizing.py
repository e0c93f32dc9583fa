"""Sizing benchmarks, each against a reference measured in the same run (about 3 minutes in all).

1. Error of the sampled curve against the exact libCacheSim simulation of the whole trace (LRU in C,
   Zipf 0.9, 300,000 keys, 2,000,000 reads, 0.25x-4x a cache of 30,000 objects), as a function of
   the sampling rate: mean absolute error over 5 hash seeds (median and worst).
2. Time to build a curve once per rate (the command's three policies: Redis sampled LRU and LFU in Python,
   S3-FIFO in libCacheSim) at each rate, against the time of the exact LRU simulation.
3. What the profiling run costs the server: reads/s of the cache-aside workload (pipelined, its
   own process) while `cachetop sizing` profiles, against the same workload without it, in
   alternating windows on one Redis (maxmemory 40 MiB, allkeys-lru).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis

from cachetop.analysis.sizing.analyse import analyse_redis
from cachetop.analysis.sizing.curve import FACTORS, CurveRequest, build_curves
from cachetop.analysis.sizing.memory import MemoryModel
from cachetop.engine.config import InstanceConfig, parse_target
from cachetop.servers import redis_server
from tests.sizing_traces import exact_hit_ratios, mae, sampled, zipf_ids

KEYS, REQUESTS, CACHE = 300_000, 2_000_000, 30_000
RATES = (0.001, 0.005, 0.01, 0.05, 0.1)
SEEDS = 5
WINDOW_S = 5.0
REPEATS = 3


def error_and_time() -> None:
    ids = zipf_ids(KEYS, 0.9, REQUESTS)
    lru = CurveRequest(CACHE, MemoryModel(1.0), ["lru"])
    started = time.perf_counter()
    exact = exact_hit_ratios(ids, [int(CACHE * f) for f in FACTORS])  # libCacheSim in C, every read
    exact_s = time.perf_counter() - started
    print(f"exact LRU simulation (C) of {REQUESTS:,} reads at 9 sizes: {exact_s:.1f} s (the reference)")
    print(
        f"{'rate':>6} {'sampled reads':>14} {'MAE median':>11} {'MAE worst':>10}"
        f" {'curve s':>8} {'vs exact':>9}"
    )
    three = CurveRequest(CACHE, MemoryModel(1.0), ["redis-lru", "redis-lfu", "s3fifo"])
    for rate in RATES:
        errors, times, reads = [], [], []
        for seed in range(SEEDS):
            trace = sampled(ids, KEYS, rate, seed)
            reads.append(len(trace.ids))
            curve = build_curves(trace, lru)[0]
            errors.append(mae(curve, exact))
            if seed == 0:  # timed once per rate: the Redis models run in Python
                started = time.perf_counter()
                build_curves(trace, three)
                times.append(time.perf_counter() - started)
        t = statistics.median(times)
        print(
            f"{rate:>6g} {int(statistics.median(reads)):>14,} {statistics.median(errors):>11.4f} "
            f"{max(errors):>10.4f} {t:>8.2f} {t / exact_s:>8.2f}x"
        )


def reads_per_s(client: redis.Redis, seconds: float) -> float:
    def reads() -> int:
        s = client.info("stats")
        return s["keyspace_hits"] + s["keyspace_misses"]

    r0, t0 = reads(), time.monotonic()
    time.sleep(seconds)
    return (reads() - r0) / (time.monotonic() - t0)


def server_cost() -> None:
    server = redis_server(extra=["--maxmemory", str(40 << 20), "--maxmemory-policy", "allkeys-lru"])
    workload = subprocess.Popen(
        [sys.executable, "-m", "tests.sizing_workload", str(server.port), "--forever", "--requests", "50000"],
        stdout=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        client = redis.Redis(port=server.port)
        inst = InstanceConfig(name="bench", target=parse_target(server.url))
        reads_per_s(client, 5.0)  # warm-up
        without, during = [], []
        for _ in range(REPEATS):
            without.append(reads_per_s(client, WINDOW_S))
            started = time.monotonic()
            report = asyncio.run(analyse_redis(inst, duration=WINDOW_S, rate=0.05, baseline_s=0.5))
            watched = report.duration_s or (time.monotonic() - started)
            during.append(report.reads_total / watched if report.reads_total else 0.0)
        a, b = statistics.median(without), statistics.median(during)
        print(f"workload reads/s without profiling: {a:,.0f} (median of {REPEATS} {WINDOW_S:g} s windows)")
        print(
            f"workload reads/s while MONITOR profiles: {b:,.0f}: ratio {b / a:.2f}"
            f" ({100 * (1 - b / a):.0f}% fewer)"
        )
    finally:
        workload.kill()
        workload.wait()
        server.cleanup()


if __name__ == "__main__":
    error_and_time()
    server_cost()
