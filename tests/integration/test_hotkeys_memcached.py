"""Hot keys from a real memcached 1.6 through `watch fetchers mutations`."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import pytest
from pymemcache.client.base import Client

from cachetop.engine.config import InstanceConfig, parse_target
from cachetop.hotkeys.collector import HotKeyCollector
from cachetop.hotkeys.config import HotKeySettings
from cachetop.servers import LocalServer
from tests.conftest import until
from tests.integration.hotkeys_workload import precision_at, workload


async def settle(progress: Callable[[], int], target: int, quiet_s: float = 3.0) -> None:
    """Waits until `target` is reached, or nothing more has come for `quiet_s`: memcached's
    logger sometimes holds the last watch lines back until there is more traffic."""
    last, last_change = progress(), time.monotonic()
    while progress() < target:
        if progress() != last:
            last, last_change = progress(), time.monotonic()
        elif time.monotonic() - last_change > quiet_s:
            return
        await asyncio.sleep(0.01)


def collector_for(server: LocalServer) -> HotKeyCollector:
    inst = InstanceConfig(name="m", target=parse_target(server.url))
    return HotKeyCollector(inst, HotKeySettings(stampede_writers=3), window_s=600)


def send(port: int, keys: list[bytes]) -> None:
    client = Client(("127.0.0.1", port))
    for i in range(0, len(keys), 100):
        client.get_many(keys[i : i + 100])
    client.close()


async def test_watch_ranks_hot_key_first_with_precision_and_hits(memcached: LocalServer) -> None:
    Client(("127.0.0.1", memcached.port)).set(b"hot:1", b"v", noreply=False)  # before sampling
    collector = collector_for(memcached)
    await collector.start()
    try:
        await until(
            lambda: collector.sampler is not None and collector.sampler.phase == "sampling", what="watch"
        )
        keys = workload(20_000, seed=2)
        await asyncio.to_thread(send, memcached.port, keys)
        stats = collector.sampler.stats
        # Every lookup is a line we read, or one the server says it dropped: skipped= lines, or
        # its worker threads' log_worker_dropped (read every second).
        await until(lambda: stats.lines + stats.dropped == len(keys), 10, what="every line accounted for")
        if not stats.dropped:  # the last lookup is counted after a quiet tick
            await until(lambda: collector.snapshot().total_events == len(keys), what="all events")
        view = collector.snapshot()
    finally:
        await collector.stop()
    exact = Counter(keys)
    assert view.source == "watch"
    ranked = [k.key for k in view.keys]
    assert ranked[0] == b"hot:1"
    assert precision_at(ranked, exact) >= 0.9
    assert view.drop_rate == stats.dropped / len(keys)
    if stats.dropped:  # the server dropped lines (it says how many): the counts are a sample of them
        assert view.total_events == len(keys) - stats.dropped
        assert view.keys[0].count <= exact[b"hot:1"]
        return
    assert view.total_events == len(keys)
    hot = view.keys[0]
    assert (hot.count, hot.reads, hot.writes) == (exact[b"hot:1"], exact[b"hot:1"], 0)
    assert (hot.hits, hot.misses) == (exact[b"hot:1"], 0)
    second = view.keys[1]
    assert (second.hits, second.misses) == (0, second.count)  # never stored: every get missed
    assert hot.share == pytest.approx(exact[b"hot:1"] / len(keys))


async def test_stampede_misses_then_writers(memcached: LocalServer) -> None:
    collector = collector_for(memcached)
    await collector.start()
    try:
        await until(
            lambda: collector.sampler is not None and collector.sampler.phase == "sampling", what="watch"
        )
        clients = [Client(("127.0.0.1", memcached.port)) for _ in range(4)]
        for c in clients:
            assert c.get(b"feed:home") is None
        for c in clients[:3]:
            c.set(b"feed:home", b"rebuilt")
        await until(lambda: collector.snapshot().stampede_events == 1, what="a stampede")
        # the quiet tick flushes the last pending lookup
        await until(lambda: collector.snapshot().keys[0].reads == 4, what="the 4th miss")
        view = collector.snapshot()
    finally:
        await collector.stop()
    assert [(s.key, s.writers) for s in view.stampedes] == [(b"feed:home", 3)]
    # The 4th client's miss may still wait for its connection's next line (it could have been a
    # set's own lookup) when the 3rd writer completes the pattern.
    assert view.stampedes[0].readers in (3, 4)
    feed = next(k for k in view.keys if k.key == b"feed:home")
    # 4 misses and 3 sets; the lookup each set does inside the server is not a read
    assert (feed.reads, feed.writes, feed.hits, feed.misses) == (4, 3, 0, 4)
