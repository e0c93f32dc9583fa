"""What one cachetop costs a server with hot keys at their defaults: between MONITOR phases only
the poll and the probe are connected, and no background SCAN (big keys) runs; during a phase one
connection more (the MONITOR or `watch` stream: the sampler's other commands go on the poll
connection); with the `light` profile not even MONITOR."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import redis as redis_py
import redis.asyncio as aioredis
from pymemcache.client.base import Client

from cachetop.engine.config import apply_profile, load_config
from cachetop.engine.live import LiveSources
from cachetop.engine.monitor import Monitor
from cachetop.hotkeys.config import HotKeySettings
from cachetop.servers import LocalServer
from tests.conftest import until
from tests.integration.hotkeys_workload import workload
from tests.monitoring import fast_config

# Sampling the connection count this often catches a phase's connections (a phase is 300 ms).
SAMPLE_S = 0.01


def cachetop_clients(port: int) -> list[str]:
    client = redis_py.Redis(port=port, client_name="cachetop-test", driver_info=None)
    try:
        return sorted(
            c["name"].split(":")[0] for c in client.client_list() if c["name"].startswith("cachetop")
        )
    finally:
        client.close()


def commandstats(port: int) -> set[str]:
    client = redis_py.Redis(port=port, driver_info=None)
    try:
        return set(client.info("commandstats"))
    finally:
        client.close()


async def test_between_monitor_phases_two_connections_and_no_scan(redis: LocalServer) -> None:
    client = redis_py.Redis(port=redis.port, driver_info=None)
    client.mset({f"k{i}": "v" * i for i in range(200)})  # what a big-key scan would size
    client.close()
    config = fast_config(redis.url, interval=0.2, window=2.0)
    hotkeys = replace(HotKeySettings(), monitor_on=0.5, monitor_off=4.0)  # defaults, a faster cycle
    config = replace(config, sections={**config.sections, "hotkeys": hotkeys})
    async with Monitor(config) as mon, LiveSources(config, mon, alerts=False) as live:
        collector = live.collectors[mon.pollers[0].inst.name]
        sampler = await until(lambda: collector.sampler, what="the MONITOR sampler")
        await until(lambda: sampler.stats.phases >= 1 and sampler.phase == "waiting", what="one phase done")
        # The side connection goes SIDE_LINGER_S after the phase; the poll and the probe stay.
        await until(
            lambda: cachetop_clients(redis.port) == ["cachetop", "cachetop-probe", "cachetop-test"],
            what="2 connections between phases",
        )
    seen = commandstats(redis.port)
    assert "cmdstat_scan" not in seen and "cmdstat_memory|usage" not in seen, sorted(seen)
    assert "cmdstat_monitor" in seen


async def test_light_profile_turns_hot_keys_off(tmp_path: Path, redis: LocalServer) -> None:
    path = tmp_path / "cachetop.toml"
    path.write_text(
        f'[settings]\nprofile = "light"\ninterval = "200ms"\n\n[[instance]]\nname = "r"\n'
        f'url = "{redis.url}"\n'
    )
    config = apply_profile(load_config(path))
    assert [i.hotkeys for i in config.instances] == ["off"]
    async with Monitor(config) as mon, LiveSources(config, mon, alerts=False):
        await mon.wait_polls(3, timeout=10)
        assert cachetop_clients(redis.port) == ["cachetop", "cachetop-probe", "cachetop-test"]
    assert "cmdstat_monitor" not in commandstats(redis.port)


async def test_redis_monitor_phases_hold_at_most_three_connections(redis_or_valkey: LocalServer) -> None:
    """Dashboard and daemon (Monitor + LiveSources): poll and probe, plus the MONITOR stream while
    a phase runs. The sampler's COMMAND, CONFIG GET and CLIENT LIST (its watchdog's omem checks
    every 20 ms) go on the poll connection, where they are counted as ours: the server still
    reads 0 ops/s. Before, a side connection of the sampler's own made it 4 (3 between phases)."""
    server = redis_or_valkey
    config = fast_config(server.url, interval=0.2, window=2.0)
    hotkeys = replace(HotKeySettings(), monitor_on=0.3, monitor_off=1.0)  # several phases, fast
    config = replace(config, sections={**config.sections, "hotkeys": hotkeys})
    # Not named cachetop*: it is the application here, and counts nothing of its own.
    counter = aioredis.Redis(port=server.port, client_name="footprint-counter", driver_info=None)
    during: list[int] = []  # counts read while a MONITOR connection was listed
    between: dict[int, list[int]] = {}  # counts read between phases, by phases done before
    try:
        async with Monitor(config) as mon, LiveSources(config, mon, alerts=False) as live:
            poller = mon.pollers[0]
            collector = live.collectors[poller.inst.name]
            sampler = await until(lambda: collector.sampler, what="the MONITOR sampler")
            deadline = time.monotonic() + 20
            while sampler.stats.phases < 4:
                assert time.monotonic() < deadline, f"{sampler.stats.phases} phases in 20 s"
                done, waiting = sampler.stats.phases, sampler.phase == "waiting"
                clients = await counter.client_list()
                ours = [c for c in clients if c["name"].startswith("cachetop")]
                if any(c["name"].startswith("cachetop-hotkeys-monitor") for c in ours):
                    during.append(len(ours))  # a phase, or the next one's connection opening
                elif waiting and sampler.phase == "waiting" and sampler.stats.phases == done >= 1:
                    between.setdefault(done, []).append(len(ours))
                assert len(ours) <= 3, sorted(c["name"] for c in ours)
                await asyncio.sleep(SAMPLE_S)
            await mon.wait_polls(poller.polls + 2, timeout=10)
            snap = mon.snapshot()
    finally:
        await counter.aclose()
    assert max(during) == 3, during
    # Between phases (no MONITOR connection listed): the poll and the probe, nothing else.
    assert {n for counts in between.values() for n in counts} == {2}, between
    assert len(between) >= 2, between
    assert snap.instances[0].metrics["ops_per_sec"] is not None
    assert "client|list" not in collector.own_command_counts  # it went on the poll connection
    assert poller.backend.own_commands["client|list"] > sampler.stats.phases * 5  # the omem checks


def memcached_connections(port: int, app: set[str]) -> int:
    """Open connections from `stats conns`, less the listeners (TCP, UDP), this one and the
    application's (`app`: their addresses as the server shows them, tcp:host:port)."""
    client = Client(("127.0.0.1", port))
    try:
        lines = client.raw_command(b"stats conns", b"END").decode().splitlines()
    finally:
        client.close()
    fds: dict[str, dict[str, str]] = {}
    for line in lines:
        parts = line.split(" ", 2)
        if len(parts) == 3 and ":" in parts[1]:
            fd, field = parts[1].split(":", 1)
            fds.setdefault(fd, {})[field] = parts[2]
    served = [
        f
        for f in fds.values()
        if f.get("state") != "conn_listening"
        and not f.get("addr", "").startswith("udp")
        and f.get("addr") not in app
    ]
    return len(served) - 1  # the connection that asked


async def test_memcached_watch_holds_three_connections_and_counts_worker_drops(
    memcached: LocalServer,
) -> None:
    """Poll, probe and the `watch` stream: log_worker_dropped comes from the poll's `stats`, not
    from a fourth connection (there was one, polling `stats` every second). The drop rate stays
    exact: every lookup is a line read or a drop the server reported."""
    config = fast_config(memcached.url, interval=0.2, window=2.0)
    counts: list[int] = []
    async with Monitor(config) as mon, LiveSources(config, mon, alerts=False) as live:
        poller = mon.pollers[0]
        collector = live.collectors[poller.inst.name]
        await until(
            lambda: collector.sampler is not None and collector.sampler.phase == "sampling", what="watch"
        )
        stats = collector.sampler.stats
        keys = workload(20_000, seed=3)
        app = Client(("127.0.0.1", memcached.port))
        app._connect()  # its address, to leave it out of the count
        host, port = app.sock.getsockname()[:2]
        sent = asyncio.create_task(asyncio.to_thread(send_gets, app, keys))
        deadline = time.monotonic() + 20
        # Several seconds of watching (the old side connection came at the phase's start and
        # read `stats` every second), under load and after it.
        while not (sent.done() and stats.lines + stats.dropped == len(keys) and poller.polls >= 15):
            assert time.monotonic() < deadline, (
                (stats.lines, stats.dropped, len(keys), poller.polls),
                Client(("127.0.0.1", memcached.port)).stats(),
                poller.backend.worker_drops(),
            )
            counts.append(
                await asyncio.to_thread(memcached_connections, memcached.port, {f"tcp:{host}:{port}"})
            )
            await asyncio.sleep(SAMPLE_S)
        await sent
        view = collector.snapshot()
    assert max(counts) == 3 and min(counts) >= 2, counts
    assert counts[-1] == 3, counts  # poll, probe, watch
    assert stats.lines + stats.dropped == len(keys)
    assert view.drop_rate == stats.dropped / len(keys)


def send_gets(client: Client, keys: list[bytes]) -> None:
    try:
        for i in range(0, len(keys), 100):
            client.get_many(keys[i : i + 100])
    finally:
        client.close()


async def test_omem_checks_on_the_poll_connection_do_not_hold_up_polls(redis: LocalServer) -> None:
    """The watchdog's CLIENT LIST ID shares the poll connection, one command at a time (the
    own-traffic gate, first come first served): with a check as often as it can go, polls still
    run every interval, each waits for at most the one check in flight, and an idle server
    still reads 0 ops/s."""
    config = fast_config(redis.url, interval=0.1, window=1.0)
    hotkeys = replace(HotKeySettings(), monitor_on=3.0, monitor_off=60.0)
    config = replace(config, sections={**config.sections, "hotkeys": hotkeys})
    async with Monitor(config) as mon, LiveSources(config, mon, alerts=False) as live:
        poller = mon.pollers[0]
        backend = poller.backend
        collector = live.collectors[poller.inst.name]
        sampler = await until(lambda: collector.sampler, what="the MONITOR sampler")
        sampler.check_s = 0.0  # back to back: the worst case for the polls
        took: list[float] = []
        poll = backend.poll

        async def timed(now: float) -> object:
            start = time.perf_counter()
            try:
                return await poll(now)
            finally:
                if sampler.stats.connected:
                    took.append(time.perf_counter() - start)

        backend.poll = timed  # type: ignore[method-assign]
        checks = await until(
            lambda: sampler.stats.connected and backend.own_commands["client|list"], what="on"
        )
        await until(lambda: len(took) >= 15, 10, what="15 polls while MONITOR is on")
        checks = backend.own_commands["client|list"] - int(checks)
        await until(lambda: sampler.phase == "waiting", 10, what="the phase's end")
        await mon.wait_polls(poller.polls + 2, timeout=10)
        snap = mon.snapshot()
    assert checks > 3 * len(took), (checks, len(took))  # the checks ran between the polls
    assert max(took) < 0.25, sorted(took)  # a poll is a few ms on loopback; 0.25 s: a loaded CI
    assert snap.instances[0].metrics["ops_per_sec"] == 0.0
