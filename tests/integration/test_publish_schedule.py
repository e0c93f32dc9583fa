"""Snapshots keep their spacing: they are published on fixed deadlines (the last one plus an
interval), so the time a publish takes (building it, awaiting a slow subscriber) does not add
to every gap."""

from __future__ import annotations

import asyncio
import itertools

from cachetop.engine.monitor import Monitor
from cachetop.model import Snapshot
from cachetop.servers import LocalServer
from tests.conftest import until
from tests.monitoring import fast_config


async def test_a_slow_subscriber_does_not_stretch_the_interval(redis: LocalServer) -> None:
    loop = asyncio.get_running_loop()
    arrivals: list[float] = []
    tenth = asyncio.Event()

    async def slow(_snap: Snapshot) -> None:
        arrivals.append(loop.time())
        if len(arrivals) == 10:
            tenth.set()
        await asyncio.sleep(0.3)  # the subscriber's own work (a slow exporter), not a wait

    async with Monitor(fast_config(redis.url, interval=1.0, window=2.0)) as mon:
        mon.subscribe(slow)
        await asyncio.wait_for(tenth.wait(), 20)
        # refresh_now still publishes at once (once the slow subscriber is done with the tenth).
        asked = loop.time()
        mon.refresh_now()
        await until(lambda: len(arrivals) > 10, 5, "the refreshed snapshot")
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(arrivals)]
    assert abs(arrivals[9] - arrivals[0] - 9.0) <= 0.2, gaps  # was ~11.7 s: 1 s + 0.3 s a gap
    assert arrivals[10] - asked < 0.6, gaps
