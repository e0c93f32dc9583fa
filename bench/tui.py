"""The dashboard's CPU cost: 50 instances polled every 1 s for 30 s, headless; and, with
--first-frame, the time from start to the first data frame in a real terminal.

Runs the Monitor alone, then the Monitor with the dashboard rendering every Snapshot (the
overview at 160x48, updated by diff), against the same real servers in the same run, and
prints each as a share of one core (median of per-second samples, and the whole run).
Goal: the dashboard under 15% of a core.

    .venv/bin/python bench/tui.py [--seconds 30] [--instances 50]
    .venv/bin/python bench/tui.py --first-frame [--runs 5]

--first-frame starts `cachetop URL` (one local redis, interval 1 s) in tmux at 80x24 and times,
from the process start: the first frame (the header), and the first data frame (the row shows
`up` and a memory share). The reference, measured in the same run: the same interpreter
importing the dashboard's modules and exiting (the floor: nothing can draw before that).
Medians over --runs. Goal: the first data frame under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cachetop.engine.config import Config, InstanceConfig, Settings, parse_target
from cachetop.engine.monitor import Monitor
from cachetop.servers import LocalServer, memcached_server, redis_server
from cachetop.tui.app import CachetopApp
from tests import tmux

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


CACHETOP = Path(sys.executable).parent / "cachetop"
ROOT = Path(__file__).resolve().parents[1]
DATA_ROW = re.compile(r"127\.0\.0\.1:\d+.* up .*\d%")


def first_frame_once(url: str) -> tuple[float, float]:
    """(first frame, first data frame) in seconds from the start of `cachetop URL` in tmux."""
    session = f"bench-tui-{uuid.uuid4().hex[:8]}"
    env = f"env -i PATH=/usr/bin:/bin TERM=xterm-256color PYTHONPATH={ROOT}"
    start = time.monotonic()
    tmux.start(session, f"{env} {CACHETOP} {url}", (80, 24))
    first = data = 0.0
    try:
        while time.monotonic() - start < 20:
            text = tmux.screen(session)
            if not first and "cachetop" in text:
                first = time.monotonic() - start
            if DATA_ROW.search(text):
                data = time.monotonic() - start
                break
            time.sleep(0.01)  # a bench's sampling step, not a test's synchronisation
    finally:
        tmux.kill(session)
    return first, data


def imports_once() -> float:
    start = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", "import cachetop.cli, cachetop.tui.app, cachetop.engine.monitor, textual.app"],
        check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    return time.monotonic() - start


def first_frame(runs: int) -> None:
    if shutil.which("tmux") is None:
        raise SystemExit("--first-frame needs tmux")
    server = redis_server()
    try:
        results = []
        for _ in range(runs):  # interleaved, so both see the same machine load
            results.append((imports_once(), *first_frame_once(server.url)))
    finally:
        server.cleanup()
    imports, frames, datas = (statistics.median(col) for col in zip(*results, strict=True))
    print(f"cachetop URL (one local redis, interval 1s) in tmux 80x24, medians of {runs} runs:")
    print(f"  reference: interpreter + imports only  {imports:5.2f}s")
    print(f"  first frame (header)                   {frames:5.2f}s")
    verdict = "met" if datas < 1 else "NOT met"
    print(f"  first data frame (status, memory)      {datas:5.2f}s   goal < 1 s: {verdict}")
    print(
        "  each run (imports, first frame, data): "
        + ", ".join(f"{a:.2f}/{b:.2f}/{c:.2f}" for a, b, c in results)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--first-frame", action="store_true", help="time start to the first data frame")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.first_frame:
        first_frame(args.runs)
        return
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
