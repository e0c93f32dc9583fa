"""The Hot keys and Alerts tabs, fed by the real collector and alert service on real traffic."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import redis as redis_py

from cachetop.alerts.rules import Rule
from cachetop.engine.live import LiveSources
from cachetop.engine.monitor import Monitor
from cachetop.servers import LocalServer
from cachetop.tui.app import CachetopApp
from tests.tui.helpers import cell, hot_reads, open_detail, open_tab, sampled_config, text, until


async def test_hot_keys_badge_panel_and_alerts_tab(redis: LocalServer, tmp_path: Path) -> None:
    rule = Rule(name="low-hit", metric="hit_ratio", op="<", threshold=50.0, severity="critical", channels=())
    config = sampled_config(redis.url, tmp_path / "state", rule=(rule,))
    stop = asyncio.Event()
    async with Monitor(config) as mon:
        app = CachetopApp(config, monitor=mon)
        async with LiveSources(config, mon) as live, app.run_test(size=(120, 32)):
            app.alerts = live.alert_service
            load = asyncio.create_task(hot_reads(redis.port, stop))
            try:
                # The overview row gets the hot-key badge and the hit cell is coloured by the rule.
                await until(lambda: "♨" in cell(app, "r1", "name"), deadline_s=15, what="hot badge")
                assert app.health.level(mon.latest.by_name("r1"), "hit_ratio", 10.0) == "bad"
                await open_detail(app, "r1")
                await open_tab(app, "tab-hotkeys")
                await until(lambda: "hot:1" in text(app), deadline_s=10, what="hot:1 in the panel")
                hot_table = app.screen.query_one("#hotkeys-table")
                assert hot_table.get_row_at(0)[1].plain == "hot:1"
                assert hot_table.get_row_at(0)[0].plain == "♨"
                # hit_ratio 0 < 50 fires the critical rule: the header badge and the Alerts tab.
                await until(lambda: "1 firing" in text(app), deadline_s=10, what="firing badge")
                await open_tab(app, "tab-alerts")
                await until(lambda: "FIRING" in text(app) and "low-hit" in text(app), what="alert row")
            finally:
                stop.set()
                with contextlib.suppress(Exception):
                    await load
    # Every side connection is closed once the sources stop.
    client = redis_py.Redis(port=redis.port)
    names = [c["name"] for c in client.client_list() if c["name"].startswith("cachetop")]
    client.close()
    assert names == []
