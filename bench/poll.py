"""What one poll of one Redis instance costs the client, and how honest the probe is.

1. Client CPU per poll (one INFO round trip; every 5 s it also carries commandstats and LATENCY
   HISTOGRAM), plus the probes of one interval, against redis-py's own `info()` in the same run.
   Goal: at least 2x cheaper, so that 100 instances at 1 s cost under 5% of a core.
2. The probe's loopback p50 against `redis-benchmark -c 1 -n 20000 -t ping` (C) in the same
   run. Goal: within 50 µs, so the latency a user reads is the server's, not ours.

Run: .venv/bin/python bench/poll.py   (prints medians of several rounds; the machine is noisy)
"""

from __future__ import annotations

import asyncio
import csv
import io
import statistics
import subprocess
import time

import redis.asyncio as aioredis

from cachetop.backends.redis import RedisBackend
from cachetop.engine.config import config_from_targets
from cachetop.engine.poller import PROBES_PER_INTERVAL
from cachetop.servers import redis_server

ROUNDS = 5
POLLS = 400
PROBES = 20_000


def cpu() -> float:
    return time.process_time()


async def poll_cpu(url: str, port: int) -> tuple[float, float, float, float]:
    """Median client CPU (ms) per call: redis-py info(), redis-py info("all"), our poll, our
    poll plus one interval's probes. Rounds alternate between them so noise hits all alike."""
    backend = RedisBackend(config_from_targets([url]).instances[0], timeout=2.0)
    client = aioredis.Redis(port=port, driver_info=None)
    await backend.poll(0.0)
    await client.info()

    async def info_default() -> None:
        await client.info()

    async def info_all() -> None:
        await client.info("all")

    clock = iter(range(10**9))  # one poll per simulated second: every 5th carries command stats

    async def poll() -> None:
        await backend.poll(float(next(clock)))

    async def poll_and_probes() -> None:
        await backend.poll(float(next(clock)))
        for _ in range(PROBES_PER_INTERVAL):
            await backend.probe()

    rounds: dict[str, list[float]] = {"info": [], "all": [], "poll": [], "probes": []}
    for _ in range(ROUNDS):
        for name, call in (
            ("info", info_default),
            ("all", info_all),
            ("poll", poll),
            ("probes", poll_and_probes),
        ):
            start = cpu()
            for _ in range(POLLS):
                await call()
            rounds[name].append((cpu() - start) / POLLS * 1000)
    await backend.close()
    await client.aclose()
    return tuple(statistics.median(rounds[k]) for k in ("info", "all", "poll", "probes"))  # type: ignore[return-value]


async def probe_p50_us(url: str, count: int, gap_s: float = 0.0) -> float:
    backend = RedisBackend(config_from_targets([url]).instances[0], timeout=2.0)
    await backend.probe()
    samples = []
    for _ in range(count):
        samples.append(await backend.probe())
        if gap_s:
            await asyncio.sleep(gap_s)
    await backend.close()
    return statistics.median(samples) * 1e6


def redis_benchmark_p50_us(port: int) -> float:
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", "1", "-n", str(PROBES), "-t", "ping", "--csv"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    mbulk = next(r for r in rows if r["test"] == "PING_MBULK")
    return float(mbulk["p50_latency_ms"]) * 1000


def main() -> None:
    server = redis_server()
    try:
        info, info_all, ours, ours_probes = asyncio.run(poll_cpu(server.url, server.port))
        print(f"client CPU per call (median of {ROUNDS} interleaved rounds of {POLLS})")
        print(f"  redis-py info()        (default sections)       {info:.3f} ms   reference")
        print(f"  redis-py info('all')   (the data a poll reads)  {info_all:.3f} ms   reference")
        print(
            f"  cachetop poll          (at 1 s, details each 5 s) {ours:.3f} ms   "
            f"{info / ours:.2f}x vs info(), {info_all / ours:.2f}x vs info('all')"
        )
        print(
            f"  cachetop poll + {PROBES_PER_INTERVAL} probes                          {ours_probes:.3f} ms   "
            f"{info / ours_probes:.2f}x vs info(), {info_all / ours_probes:.2f}x vs info('all')"
        )
        print(f"  => 100 instances at 1 s cost {ours_probes * 100 / 10:.1f}% of one core (goal < 5%)")

        bench_p50 = statistics.median(redis_benchmark_p50_us(server.port) for _ in range(3))
        hot_p50 = statistics.median(asyncio.run(probe_p50_us(server.url, PROBES)) for _ in range(3))
        sparse_p50 = asyncio.run(probe_p50_us(server.url, 200, gap_s=0.005))
        print("probe round trip, loopback PING (p50)")
        print(f"  redis-benchmark -c 1 -n {PROBES} -t ping    {bench_p50:.1f} µs   reference")
        print(
            f"  cachetop probe, back to back             {hot_p50:.1f} µs   "
            f"difference {hot_p50 - bench_p50:+.1f} µs"
        )
        print(f"  cachetop probe, 5 ms apart (as in use)   {sparse_p50:.1f} µs")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
