"""Sentinel: a real redis-server --sentinel watching a master and its replica; failover is followed."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis as redis_py

from cachetop.engine.config import config_from_targets
from cachetop.engine.live import LiveSources
from cachetop.engine.monitor import Monitor
from cachetop.hotkeys.config import HotKeySettings
from cachetop.model import Snapshot, Status
from cachetop.servers import LocalServer, free_port
from cachetop.tui.instances import live_instance
from tests.conftest import until, wait_until
from tests.integration.test_hotkeys_redis import monitor_clients, send


def replication(port: int) -> dict[str, str]:
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "INFO", "replication"], capture_output=True, text=True, timeout=5
    ).stdout
    return dict(line.split(":", 1) for line in out.split() if ":" in line)


@pytest.fixture
def sentinel_setup(
    tmp_path: Path, make_redis: Callable[..., LocalServer]
) -> Iterator[tuple[LocalServer, LocalServer, LocalServer]]:
    master = make_redis()
    replica = make_redis("--replicaof", "127.0.0.1", str(master.port))
    wait_until(lambda: replication(replica.port).get("master_link_status") == "up", 10, "the replica to sync")
    port = free_port()
    workdir = tmp_path / "sentinel"
    workdir.mkdir()
    conf = workdir / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
        f"sentinel monitor mymaster 127.0.0.1 {master.port} 1\n"
        "sentinel down-after-milliseconds mymaster 500\n"
        "sentinel failover-timeout mymaster 3000\n"
    )
    sentinel = LocalServer("redis", ["redis-server", str(conf), "--sentinel"], port, workdir).start()
    wait_until(
        lambda: (
            "slaves=1"
            in subprocess.run(
                ["redis-cli", "-p", str(port), "INFO", "sentinel"], capture_output=True, text=True, timeout=5
            ).stdout
        ),
        15,
        "the sentinel to know the replica",
    )
    yield master, replica, sentinel
    sentinel.cleanup()


def sentinel_config(port: int):  # type: ignore[no-untyped-def]
    """Two instances through one sentinel: the master it watches, and a name it does not know."""
    config = config_from_targets([f"redis-sentinel://127.0.0.1:{port}/mymaster"])
    unknown = config_from_targets([f"redis-sentinel://127.0.0.1:{port}/nope"]).instances[0]
    settings = replace(config.settings, interval=0.2, window=2.0, timeout=0.5)
    instances = (replace(config.instances[0], name="main"), replace(unknown, name="unknown"))
    return replace(config, settings=settings, instances=instances)


async def test_follows_the_master_through_a_failover_and_names_an_unknown_master(
    sentinel_setup: tuple[LocalServer, LocalServer, LocalServer],
) -> None:
    master, replica, sentinel = sentinel_setup
    config = sentinel_config(sentinel.port)
    screen = SimpleNamespace(monitor=None, config=config)  # what tui/instances.live_instance reads
    async with Monitor(config) as mon:
        screen.monitor = mon
        first = await mon.wait_snapshot(lambda s: s.instances[0].status == Status.UP, 10)
        acted_on = live_instance(screen, "main")
        assert acted_on is not None and acted_on.target.address == master.address
        unknown = first.instances[1]
        assert (unknown.status, unknown.error) == (Status.DOWN, "no sentinel knows a master named 'nope'")
        assert (first.instances[0].name, first.instances[0].address) == ("main", master.address)
        assert first.instances[0].facts["role"] == "master"
        mon.pollers[0].want_detail(True)  # the instance view is open: every poll carries details
        master.kill()
        killed = time.monotonic()
        after = await mon.wait_snapshot(
            lambda s: s.instances[0].status == Status.UP and s.instances[0].address == replica.address, 20
        )
        took = time.monotonic() - killed
        acted_on = live_instance(screen, "main")
        assert acted_on is not None and acted_on.target.address == replica.address  # actions follow
    inst = after.instances[0]
    assert (inst.name, inst.facts["role"], inst.error) == ("main", "master", None)
    assert mon.pollers[0].backend.switches == 2
    assert took < 15
    # the new master's backend got what was asked of the old one
    assert mon.pollers[0].backend.inner.detail_every_s == 0.0


async def test_hot_keys_sample_the_master_and_follow_it_through_a_failover(
    sentinel_setup: tuple[LocalServer, LocalServer, LocalServer],
) -> None:
    master, replica, sentinel = sentinel_setup
    config = sentinel_config(sentinel.port)
    hotkeys = HotKeySettings(monitor_on=600, monitor_off=1, big_keys=False)
    config = replace(config, instances=config.instances[:1], sections={"hotkeys": hotkeys})

    def sampling_on(server: LocalServer) -> Callable[[Snapshot], bool]:
        def check(_: Snapshot) -> bool:
            c = live.collectors.get("main")
            return (
                c is not None
                and c.inst.target.port == server.port
                and c.sampler is not None
                and (c.sampler.phase == "sampling")
            )

        return check

    def hottest(key: bytes) -> Callable[[Snapshot], bool]:
        def check(s: Snapshot) -> bool:
            view = s.instances[0].extras.get("hotkeys")
            return view is not None and bool(view.keys) and view.keys[0].key == key

        return check

    async with Monitor(config) as mon, LiveSources(config, mon, alerts=False) as live:
        await mon.wait_snapshot(sampling_on(master), 10)
        await asyncio.to_thread(send, master.port, [b"before"] * 2000)
        await mon.wait_snapshot(hottest(b"before"), 10)
        master.kill()
        await mon.wait_snapshot(sampling_on(replica), 20)
        await asyncio.to_thread(send, replica.port, [b"after"] * 3000)
        after = await mon.wait_snapshot(hottest(b"after"), 10)
        # On the new master: the poll, the probe and the MONITOR stream; the sampler's CLIENT
        # LIST checks go on the poll connection (there was a fourth, side connection).
        wanted = ["cachetop", "cachetop-hotkeys-monitor", "cachetop-probe"]
        await until(lambda: cachetop_names(replica.port) == wanted, 5, what="3 connections on the master")
    view = after.instances[0].extras["hotkeys"]
    assert view.source == "monitor"
    assert after.instances[0].address == replica.address
    # the collector on the new master closed MONITOR too
    wait_until(lambda: not monitor_clients(replica.port), 5, "no MONITOR client on the new master")


def cachetop_names(port: int) -> list[str]:
    client = redis_py.Redis(port=port, client_name="test-observer", driver_info=None)
    try:
        return sorted(
            c["name"].split(":")[0] for c in client.client_list() if c["name"].startswith("cachetop")
        )
    finally:
        client.close()
