"""What one cachetop costs a server with hot keys at their defaults: between MONITOR phases only
the poll and the probe are connected, and no background SCAN (big keys) runs; with the `light`
profile not even MONITOR."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import redis as redis_py

from cachetop.config import apply_profile, load_config
from cachetop.hotkeys_config import HotKeySettings
from cachetop.live import LiveSources
from cachetop.monitor import Monitor
from cachetop.servers import LocalServer
from tests.conftest import until
from tests.monitoring import fast_config


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
