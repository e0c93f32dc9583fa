"""The dashboard's CPU cost: 50 instances polled every 1 s for 30 s, headless.

Runs the Monitor alone, then the Monitor with the dashboard rendering every Snapshot (the
overview at 160x48, updated by diff), against the same real servers in the same run, and
prints each as a share of one core (median of per-second samples, and the whole run).
Goal: the dashboard under 15% of a core.

    .venv/bin/python bench/tui.py [--seconds 30] [--instances 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from cachetop.config import Config, InstanceConfig, Settings, parse_target
from cachetop.monitor import Monitor
from cachetop.servers import LocalServer, memcached_server, redis_server
from cachetop.tui.app import CachetopApp

SERVERS = 5  # of each kind; the 50 instances are spread over them


def fleet_config(servers: list[LocalServer], instances: int) -> Config:
    items = tuple(
        InstanceConfig(
            name=f"cache-{i:02d}",
            target=parse_target(servers[i % len(servers)].url),
            tags=(("web", "api", "sessions")[i % 3],),
        )
        for i in range(instances)
    )
    return Config(path=None, settings=Settings(interval=1.0, window=10.0), instances=items)


async def measure(
    seconds: float, body: Callable[[], Awaitable[None]] | None = None
) -> tuple[float, list[float]]:
    """CPU share of one core over the run, and per-second samples, while `body` runs."""
    samples: list[float] = []
    task = asyncio.create_task(body()) if body else None
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    last_cpu, last_wall = start_cpu, start_wall
    while time.perf_counter() - start_wall < seconds:
        await asyncio.sleep(1.0)
        cpu, wall = time.process_time(), time.perf_counter()
        samples.append((cpu - last_cpu) / (wall - last_wall) * 100)
        last_cpu, last_wall = cpu, wall
    total = (time.process_time() - start_cpu) / (time.perf_counter() - start_wall) * 100
    if task:
        task.cancel()
    return total, samples


async def monitor_alone(config: Config, seconds: float) -> tuple[float, list[float]]:
    async with Monitor(config) as mon:
        await mon.wait_polls(1)
        return await measure(seconds)


async def with_dashboard(config: Config, seconds: float) -> tuple[float, list[float], int, int]:
    async with Monitor(config) as mon:
        app = CachetopApp(config, monitor=mon)
        runner = asyncio.create_task(app.run_async(headless=True, size=(160, 48)))
        while app.latest is None:
            await asyncio.sleep(0.05)
        await mon.wait_polls(2)
        total, samples = await measure(seconds)
        table = app.screen.query_one("FleetTable")
        updates, rebuilds = table.lines_refreshed, table.shows
        app.exit()
        await runner
        return total, samples, updates, rebuilds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--instances", type=int, default=50)
    args = parser.parse_args()
    servers = [redis_server() for _ in range(SERVERS)] + [memcached_server() for _ in range(SERVERS)]
    try:
        config = fleet_config(servers, args.instances)
        base, base_samples = asyncio.run(monitor_alone(config, args.seconds))
        dash, dash_samples, updates, rebuilds = asyncio.run(with_dashboard(config, args.seconds))
    finally:
        for server in servers:
            server.cleanup()
    print(f"{args.instances} instances, interval 1s, {args.seconds:g}s each (CPU as % of one core)")
    print(f"  monitor alone:        median {statistics.median(base_samples):5.1f}%   whole run {base:5.1f}%")
    print(f"  monitor + dashboard:  median {statistics.median(dash_samples):5.1f}%   whole run {dash:5.1f}%")
    print(
        f"  dashboard's own share: {dash - base:5.1f}% of a core; "
        f"ratio to the monitor alone: {dash / base:.2f}x"
    )
    print(f"  overview: {updates} changed lines redrawn over {rebuilds} updates in {args.seconds:g}s")
    print(f"  goal: dashboard (monitor + TUI) under 15% of a core: {'met' if dash < 15 else 'NOT met'}")


if __name__ == "__main__":
    main()
