"""Status per instance: restarts, kills and slow servers, each instance on its own schedule."""

from __future__ import annotations

import asyncio
import socket
import time

import redis as redis_py

from cachetop.engine.monitor import Monitor
from cachetop.model import Snapshot, Status
from cachetop.servers import LocalServer, wait_for_port_closed
from tests.delay_proxy import DelayProxy
from tests.monitoring import fast_config


def rate_values(snap: Snapshot) -> list[float]:
    names = ("ops_per_sec", "evictions_per_sec", "expired_per_sec", "hit_ratio", "error_rate")
    return [v for i in snap.instances for k in names if (v := i.metrics.get(k)) is not None]


async def test_restart_gives_no_negative_rate_and_is_up_within_two_intervals(redis: LocalServer) -> None:
    client = redis_py.Redis(port=redis.port, driver_info=None)
    seen: list[Snapshot] = []
    interval = 0.2
    async with Monitor(fast_config(redis.url, interval=interval, window=5)) as mon:
        mon.subscribe(seen.append)
        await mon.wait_polls(1)
        for i in range(2000):
            client.set(f"k{i}", i)
        await mon.wait_polls(mon.pollers[0].polls + 2)
        assert mon.snapshot().instances[0].metrics["ops_per_sec"] > 0
        redis.stop()
        wait_for_port_closed(redis.port)
        redis.start()
        back_at = time.monotonic()
        poller = mon.pollers[0]
        polls_then = poller.polls
        await mon.wait_snapshot(lambda s: s.instances[0].status == Status.UP and poller.polls > polls_then, 5)
        up_after = time.monotonic() - back_at
        await mon.wait_polls(poller.polls + 2)
        after = mon.snapshot()
    assert up_after <= 2 * interval + 0.15, up_after
    assert poller.polls - polls_then <= 4
    assert all(v >= 0 for s in [*seen, after] for v in rate_values(s))
    assert poller.window.resets >= 1  # the restart started a new window
    assert after.instances[0].metrics["ops_per_sec"] is not None


async def test_killed_server_is_down_with_a_reason_and_others_stay_on_time(make_redis) -> None:  # type: ignore[no-untyped-def]
    victim, healthy = make_redis(), make_redis()
    interval, timeout = 0.2, 1.0
    async with Monitor(fast_config(victim.url, healthy.url, interval=interval, timeout=timeout)) as mon:
        await mon.wait_polls(1)
        victim.kill()
        killed_at = time.monotonic()
        snap = await mon.wait_snapshot(lambda s: s.instances[0].status == Status.DOWN, timeout + 1)
        took = time.monotonic() - killed_at
        healthy_polls = mon.pollers[1].polls
        await mon.wait_polls(healthy_polls + 3)
        final = mon.snapshot()
    assert took <= timeout
    assert snap.instances[0].error == "connection refused"
    assert all(v is None for v in snap.instances[0].metrics.values())
    assert final.instances[1].status == Status.UP


async def test_a_silent_server_times_out_without_delaying_the_rest(redis: LocalServer) -> None:
    # A listener that accepts and never answers: the worst kind of slow.
    silent = socket.create_server(("127.0.0.1", 0))
    silent_port = silent.getsockname()[1]
    interval, timeout = 0.2, 0.8
    config = fast_config(f"redis://127.0.0.1:{silent_port}", redis.url, interval=interval, timeout=timeout)
    try:
        async with Monitor(config) as mon:
            start = time.monotonic()
            snap = await mon.wait_snapshot(lambda s: s.instances[0].status == Status.DOWN, 5)
            waited = time.monotonic() - start
            healthy_polls = mon.pollers[1].polls
    finally:
        silent.close()
    assert snap.instances[0].error == f"timed out after {timeout:g}s"
    assert waited < timeout + 2 * interval + 0.3
    # While the silent one took `timeout`, the healthy one kept its own schedule.
    assert healthy_polls >= int(timeout / interval) - 1
    assert snap.instances[1].status == Status.UP


async def test_probe_latency_behind_a_20ms_proxy_reads_20_to_25ms(redis: LocalServer) -> None:
    with DelayProxy(redis.port, 0.020) as proxy:
        config = fast_config(f"redis://127.0.0.1:{proxy.port}", interval=0.5, window=10, timeout=2)
        async with Monitor(config) as mon:
            await mon.wait_polls(6)
            inst = mon.snapshot().instances[0]
            probes = mon.pollers[0].latency.count(mon.clock())
    assert probes >= 12
    p50 = inst.metrics["latency_p50_ms"]
    assert p50 is not None and 20.0 <= p50 <= 25.0, p50
    assert inst.metrics["latency_p99_ms"] >= p50


async def test_memcached_restart_and_down(memcached: LocalServer) -> None:
    async with Monitor(fast_config(memcached.url, interval=0.2)) as mon:
        await mon.wait_polls(2)
        memcached.stop()
        snap = await mon.wait_snapshot(lambda s: s.instances[0].status == Status.DOWN, 3)
        assert snap.instances[0].error in (
            "connection refused",
            "connection closed by the server",
            "connection reset",
        )
        memcached.start()
        snap = await mon.wait_snapshot(lambda s: s.instances[0].status == Status.UP, 3)
        await mon.wait_polls(mon.pollers[0].polls + 2)
        after = mon.snapshot()
    assert all(v >= 0 for v in rate_values(after))
    assert after.instances[0].metrics["ops_per_sec"] == 0.0


async def test_refresh_now_polls_at_once_even_between_probes(redis: LocalServer) -> None:
    async with Monitor(fast_config(redis.url, interval=6.0, window=12.0)) as mon:
        poller = mon.pollers[0]
        await mon.wait_polls(1)
        await asyncio.sleep(0.1)  # inside the interval, between two probes (not a sync: any time works)
        before = poller.polls
        mon.refresh_now()
        await mon.wait_polls(before + 1, timeout=1.0)
        assert poller.polls == before + 1


async def test_a_server_loading_its_dataset_shows_loading_then_up(make_redis) -> None:  # type: ignore[no-untyped-def]
    # A real load: 50k keys saved to the RDB, then a restart that loads them slowly
    # (key-load-delay, a Redis test knob: µs per key) and answers between keys.
    redis = make_redis("--enable-debug-command", "local")
    client = redis_py.Redis(port=redis.port, driver_info=None)
    client.execute_command("DEBUG", "POPULATE", 50_000)
    client.save()
    redis.argv += ["--key-load-delay", "100", "--loading-process-events-interval-bytes", "1024"]
    redis.restart()
    async with Monitor(fast_config(redis.url, interval=0.2, timeout=1.0)) as mon:
        loading = await mon.wait_snapshot(lambda s: s.instances[0].status == Status.LOADING, 10)
        up = await mon.wait_snapshot(lambda s: s.instances[0].status == Status.UP, 60)
    reason = loading.instances[0].error or ""
    assert reason.startswith("loading the dataset"), reason
    assert up.instances[0].status == Status.UP
    assert redis_py.Redis(port=redis.port, driver_info=None).dbsize() == 50_000
