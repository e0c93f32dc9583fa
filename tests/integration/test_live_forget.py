"""An instance removed from the fleet leaves nothing behind in LiveSources: its collector, its
own-traffic totals, its figures, and the lock that orders its collector's moves (a sentinel's
master changing), which was kept per name forever."""

from __future__ import annotations

from dataclasses import replace

from cachetop.engine.live import LiveSources
from cachetop.engine.monitor import Monitor
from cachetop.hotkeys.config import HotKeySettings
from cachetop.servers import LocalServer
from tests.conftest import until
from tests.monitoring import fast_config


async def test_a_removed_instance_leaves_no_move_lock(redis: LocalServer) -> None:
    config = fast_config(redis.url, interval=0.2, window=2.0)
    hotkeys = HotKeySettings(monitor_on=0.3, monitor_off=0.3, big_keys=False)
    config = replace(config, sections={**config.sections, "hotkeys": hotkeys})
    async with Monitor(config) as mon, LiveSources(config, mon, alerts=False) as live:
        poller = mon.pollers[0]
        name = poller.inst.name
        await until(lambda: name in live.collectors, 5, "a collector")
        # What a sentinel failover does: the collector moves to the new master (here the same
        # server), under the instance's move lock.
        live._masters[name] = ("127.0.0.1", redis.port)
        await live._move_collector(poller)
        assert set(live._moving) == {name}
        await mon.remove_instance(name)
        await until(lambda: name not in live.collectors, 5, "the collector stopped")
        assert live._moving == {}
        assert (live._own, live._masters, live._figures) == ({}, {}, {})
