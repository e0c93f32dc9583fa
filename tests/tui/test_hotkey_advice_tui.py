"""The Hot keys tab says what to do about the key under the cursor, and how the node compares:
Pilot on a real Redis with real traffic, sampled by MONITOR."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from cachetop.engine.live import LiveSources
from cachetop.engine.monitor import Monitor
from cachetop.servers import LocalServer
from cachetop.tui.app import CachetopApp
from tests.tui.helpers import hot_reads, keys, open_detail, sampled_config, until


def _static(app: CachetopApp, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


async def test_advice_line_follows_the_selected_key(redis: LocalServer, tmp_path: Path) -> None:
    config = sampled_config(redis.url, tmp_path / "state")
    stop = asyncio.Event()
    async with Monitor(config) as mon:
        app = CachetopApp(config, monitor=mon)
        async with LiveSources(config, mon), app.run_test(size=(80, 24)):
            load = asyncio.create_task(hot_reads(redis.port, stop))
            try:
                await open_detail(app, "r1")
                tabs = app.screen.query_one("#tabs")
                for _ in range(5):
                    await keys(app, "right")
                await until(lambda: tabs.active == "tab-hotkeys", what="the Hot keys tab")
                hot_table = app.screen.query_one("#hotkeys-table")
                await until(lambda: hot_table.row_count >= 2, deadline_s=15, what="two keys")
                await until(lambda: hot_table.get_row_at(0)[1].plain == "hot:1", what="hot:1 first")
                hot = "advice: cache it in the client (CLIENT TRACKING): -60% of this node's ops"
                await until(lambda: _static(app, "#hotkeys-advice") == hot, deadline_s=10, what=hot)
                node = _static(app, "#hotkeys-node")
                assert node.startswith("node: ") and node.endswith(
                    " ops/s (one instance: no cluster mean to compare); 0 replicas"
                )
                await keys(app, "down")
                cold = "advice: none for this key (no change would remove ≥ 5% of the node's ops)"
                await until(lambda: _static(app, "#hotkeys-advice") == cold, what=cold)
            finally:
                stop.set()
                with contextlib.suppress(Exception):
                    await load
