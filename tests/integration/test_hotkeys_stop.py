"""Leaving LiveSources while MONITOR streams fast ends every task it started: none is left
cancelling in the background (a hot-key sampler that outlived its LiveSources once held up the
end of a test run for 120 s)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import redis as redis_py

from cachetop.engine.live import LiveSources
from cachetop.engine.monitor import Monitor
from cachetop.hotkeys.config import HotKeySettings
from cachetop.servers import LocalServer
from tests.integration.test_evict_idle import kept_in_use
from tests.monitoring import fast_config


@contextmanager
def busy(port: int) -> Iterator[None]:
    """Pipelined GETs and SETs in a thread until the block ends: MONITOR never idles."""
    client = redis_py.Redis(port=port)
    batches = itertools.count()

    def batch() -> None:
        n = next(batches)
        pipe = client.pipeline(transaction=False)
        for i in range(200):
            pipe.set(f"k{(n + i) % 5000}", "v" * 64)
            pipe.get(f"k{(n * 7 + i) % 5000}")
        pipe.execute()

    try:
        with kept_in_use(batch, every_s=0.0):
            yield
    finally:
        client.close()


async def test_leaving_live_sources_mid_phase_leaves_no_task_running(redis: LocalServer) -> None:
    config = fast_config(redis.url, interval=0.2, window=2.0)
    hotkeys = HotKeySettings(monitor_on=60.0, monitor_off=1.0, big_keys=False)
    config = replace(config, sections={**config.sections, "hotkeys": hotkeys})
    me = asyncio.current_task()
    with busy(redis.port):
        for _ in range(5):
            async with Monitor(config) as mon, LiveSources(config, mon, alerts=False) as live:
                collector = live.collectors[mon.pollers[0].inst.name]
                # MONITOR is on and lines are pouring in
                deadline = time.monotonic() + 10
                while not (collector.sampler is not None and collector.sampler.stats.lines > 2000):
                    assert time.monotonic() < deadline, "MONITOR never streamed"
                    await asyncio.sleep(0.05)
            left = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
            assert left == [], "\n".join(f"{t!r}: {t.get_stack()[-1:]}" for t in left)
