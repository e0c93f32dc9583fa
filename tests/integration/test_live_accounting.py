"""With the hot-key sampler running beside the Monitor, an idle server still reads as idle:
no ops/s, and none of the sampler's commands in the per-command stats."""

from __future__ import annotations

import itertools
import socket
from dataclasses import replace

import redis as redis_py

from cachetop.engine.live import LiveSources
from cachetop.engine.monitor import Monitor
from cachetop.hotkeys.config import HotKeySettings
from cachetop.model import Snapshot
from cachetop.servers import LocalServer
from tests.monitoring import fast_config


async def test_an_idle_server_stays_idle_while_hot_keys_are_sampled(redis: LocalServer) -> None:
    client = redis_py.Redis(port=redis.port, driver_info=None)
    client.mset({f"k{i}": "v" for i in range(200)})  # something for the big-key scan to size
    client.close()
    config = fast_config(redis.url, interval=0.2, window=2.0)
    hotkeys = HotKeySettings(monitor_on=0.5, monitor_off=0.5, big_keys=True)
    config = replace(config, sections={**config.sections, "hotkeys": hotkeys})
    async with Monitor(config) as mon, LiveSources(config, mon, alerts=False) as live:
        poller = mon.pollers[0]
        poller.want_detail(True)  # per-command figures on every poll
        collector = live.collectors[poller.inst.name]

        def settled(s: Snapshot) -> bool:
            # two full windows after the sampler's start-up, with MONITOR and SCAN both at work
            return collector.own_commands > 50 and poller.polls > 25

        await mon.wait_snapshot(settled, 20)
        snap = mon.snapshot()
    inst = snap.instances[0]
    assert inst.metrics["ops_per_sec"] == 0.0
    assert inst.metrics["hit_ratio"] is None
    assert dict(inst.commands) == {}, sorted(inst.commands)
    assert {"monitor", "scan"} <= set(collector.own_command_counts)
    # The sampler's CLIENT LIST (own clients, the omem watchdog) went on the poll connection,
    # counted there (backends/redis.py run_own): no side connection of its own.
    assert "client|list" not in collector.own_command_counts


async def test_instances_added_later_get_a_collector_and_lose_it_when_removed(make_redis) -> None:  # type: ignore[no-untyped-def]
    first, late = make_redis(), make_redis()
    config = fast_config(first.url, interval=0.2, window=2.0)
    hotkeys = HotKeySettings(monitor_on=0.3, monitor_off=0.3, big_keys=False)
    config = replace(config, sections={**config.sections, "hotkeys": hotkeys})
    async with Monitor(config) as mon, LiveSources(config, mon, alerts=False) as live:
        # what cluster discovery does when a node joins
        mon.add_instance(
            replace(
                config.instances[0], name="late", target=replace(config.instances[0].target, port=late.port)
            )
        )
        snap = await mon.wait_snapshot(
            lambda s: (
                (i := s.by_name("late")) is not None
                and "hotkeys" in i.extras
                and live.collectors["late"].own_commands > 0
            ),
            10,
        )
        assert snap.by_name("late").extras["hotkeys"].source == "monitor"
        await mon.remove_instance("late")
        await mon.wait_snapshot(lambda s: "late" not in live.collectors, 5)

        def monitor_clients() -> list[dict]:
            return [c for c in redis_py.Redis(port=late.port).client_list() if c.get("cmd") == "monitor"]

        # the removed node's sampler closed its MONITOR connection
        await mon.wait_snapshot(lambda s: not monitor_clients(), 5)


async def test_connections_leave_out_every_connection_of_the_hot_key_sampler(redis: LocalServer) -> None:
    # 3 connections of "the application"; cachetop adds its poll and probe connections, two
    # hot-key side connections and, while a phase runs, the MONITOR connection.
    apps = [socket.create_connection(("127.0.0.1", redis.port)) for _ in range(3)]
    try:
        config = fast_config(redis.url, interval=0.2, window=2.0)
        hotkeys = HotKeySettings(monitor_on=3, monitor_off=600, big_keys=True)
        config = replace(config, sections={**config.sections, "hotkeys": hotkeys})
        seen: list[tuple[bool, int | None]] = []
        async with Monitor(config) as mon, LiveSources(config, mon, alerts=False) as live:
            collector = live.collectors[mon.pollers[0].inst.name]

            def record(s: Snapshot) -> None:
                sampler = collector.sampler
                if sampler is not None and sampler.phase != "starting":
                    seen.append((sampler.stats.connected, s.instances[0].metrics["connections"]))

            mon.subscribe(record)

            def both_states_settled(_: Snapshot) -> bool:
                states = [on for on, _ in seen]
                return states.count(True) >= 3 and states[-3:] == [False] * 3

            await mon.wait_snapshot(both_states_settled, 20)
    finally:
        for sock in apps:
            sock.close()
    # a poll right after MONITOR opened or closed may straddle the change: count the steady ones
    steady = [(on, n) for (prev, _), (on, n) in itertools.pairwise(seen) if prev == on]
    assert {n for on, n in steady if on} == {3}
    assert {n for on, n in steady if not on} == {3}
    assert collector.open_connections == 0  # stopped: every connection closed


async def test_memcached_connections_leave_out_the_watch_connection(memcached: LocalServer) -> None:
    apps = [socket.create_connection(("127.0.0.1", memcached.port)) for _ in range(2)]
    try:
        config = fast_config(memcached.url, interval=0.2, window=2.0)
        config = replace(config, sections={**config.sections, "hotkeys": HotKeySettings(watch_on=600)})
        seen: list[int | None] = []
        async with Monitor(config) as mon, LiveSources(config, mon, alerts=False) as live:
            collector = live.collectors[mon.pollers[0].inst.name]

            def record(s: Snapshot) -> None:
                if collector.sampler is not None and collector.sampler.stats.connected:
                    seen.append(s.instances[0].metrics["connections"])

            mon.subscribe(record)
            await mon.wait_snapshot(lambda _: len(seen) >= 5, 10)
    finally:
        for sock in apps:
            sock.close()
    assert set(seen[1:]) == {2}  # the first may straddle the watch connection's opening
