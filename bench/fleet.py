"""200 instances at 1 s, headless: what the whole Monitor costs the client, as a share of one core.

One real redis-server is addressed 200 ways (200 instances, each with its own connection pool,
probe socket and windows, spread over databases 0-15), so the client does the full work of a
200-instance fleet while the server stays cheap. The reference, measured in the same run, is
the plain shell way: 200 `redis-cli INFO` processes every second.

Goal: cachetop <= 20% of one core (and far below the reference).

Run: .venv/bin/python bench/fleet.py   (prints medians of several windows; the machine is noisy)
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import subprocess
import time

from cachetop.engine.config import Config, InstanceConfig, Settings, parse_target
from cachetop.engine.monitor import Monitor
from cachetop.model import Status
from cachetop.servers import redis_server

INSTANCES = 200
WARMUP_S = 5.0
WINDOW_S = 10.0
WINDOWS = 3
CLI_ROUNDS = 3
GOAL = 0.20


def fleet_config(port: int) -> Config:
    instances = tuple(
        InstanceConfig(name=f"node-{i:03d}", target=parse_target(f"redis://127.0.0.1:{port}/{i % 16}"))
        for i in range(INSTANCES)
    )
    return Config(path=None, settings=Settings(interval=1.0, window=10.0, timeout=2.0), instances=instances)


async def monitor_share(port: int) -> tuple[list[float], float, int]:
    """Client CPU / wall time per window, the polls per second achieved, and instances up."""
    shares = []
    async with Monitor(fleet_config(port)) as mon:
        await asyncio.sleep(WARMUP_S)
        polls_start, t_start = sum(p.polls for p in mon.pollers), time.monotonic()
        for _ in range(WINDOWS):
            cpu0, wall0 = time.process_time(), time.monotonic()
            await asyncio.sleep(WINDOW_S)
            shares.append((time.process_time() - cpu0) / (time.monotonic() - wall0))
        polls_per_s = (sum(p.polls for p in mon.pollers) - polls_start) / (time.monotonic() - t_start)
        up = sum(1 for i in mon.snapshot().instances if i.status == Status.UP)
    return shares, polls_per_s, up


def redis_cli_share(port: int) -> list[float]:
    """CPU (children: the redis-cli processes) to run 200 `redis-cli INFO`, i.e. the share of a
    core that doing it once a second takes."""
    shares = []
    for _ in range(CLI_ROUNDS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        for _ in range(INSTANCES):
            subprocess.run(["redis-cli", "-p", str(port), "INFO"], stdout=subprocess.DEVNULL, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        shares.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return shares


def main() -> int:
    server = redis_server()
    try:
        cli = redis_cli_share(server.port)
        shares, polls_per_s, up = asyncio.run(monitor_share(server.port))
        cli_after = redis_cli_share(server.port)
    finally:
        server.cleanup()
    reference = statistics.median(cli + cli_after)
    share = statistics.median(shares)
    print(f"fleet: {INSTANCES} instances at 1 s on one redis-server, {os.cpu_count()} cores")
    print(f"  instances up: {up}/{INSTANCES}, polls/s achieved: {polls_per_s:.1f}")
    print(f"  cachetop client CPU, median of {WINDOWS} x {WINDOW_S:g} s: {share:.1%} of one core")
    print(f"    windows: {', '.join(f'{s:.1%}' for s in shares)}")
    print(
        f"  reference, {INSTANCES} redis-cli INFO per second, median of {len(cli + cli_after)}: "
        f"{reference:.1%} of one core"
    )
    print(f"  ratio cachetop / reference: {share / reference:.3f}")
    verdict = "ok" if share <= GOAL else "OVER GOAL"
    print(f"  goal <= {GOAL:.0%} of one core: {verdict}")
    return 0 if share <= GOAL else 1


if __name__ == "__main__":
    raise SystemExit(main())
