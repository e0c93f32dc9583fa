"""Issue 13: `→` to the Hot keys tab, then `↑`/`↓` and `e`, open the evict dialog with no Tab; in the
dialog Cancel has the focus (the safe default) and the dialog says what Enter does. Pilot on a
real Redis with a real hot key (MONITOR sampling of real traffic)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import redis as redis_py

from cachetop.engine.live import LiveSources
from cachetop.engine.monitor import Monitor
from cachetop.servers import LocalServer
from cachetop.tui.app import CachetopApp
from cachetop.tui.widgets.confirm_evict import ConfirmEvictScreen
from tests.tui.helpers import hot_reads, keys, open_detail, sampled_config, text, until


async def test_right_to_hot_keys_then_e_opens_the_dialog_and_enter_cancels_visibly(
    redis: LocalServer, tmp_path: Path
) -> None:
    client = redis_py.Redis(port=redis.port)
    client.set("hot:1", "v")
    config = sampled_config(redis.url, tmp_path / "state")
    stop = asyncio.Event()
    async with Monitor(config) as mon:
        app = CachetopApp(config, monitor=mon)
        async with LiveSources(config, mon), app.run_test(size=(100, 30)):
            load = asyncio.create_task(hot_reads(redis.port, stop))
            try:
                await open_detail(app, "r1")
                tabs = app.screen.query_one("#tabs")
                await until(lambda: tabs.active == "tab-charts", what="the first tab")
                # Only arrow keys: Charts → Commands → Slowlog → Clients → Server → Hot keys.
                for _ in range(5):
                    await keys(app, "right")
                await until(lambda: tabs.active == "tab-hotkeys", what="the Hot keys tab")
                await until(lambda: "e Evict key" in text(app).splitlines()[-1], what="e in the footer")
                await until(lambda: "hot:1" in text(app), deadline_s=15, what="hot:1 in the panel")
                hot_table = app.screen.query_one("#hotkeys-table")
                assert app.focused is None or app.focused.id != "hotkeys-table"  # no Tab was pressed
                await until(lambda: hot_table.row_count >= 2, deadline_s=10, what="two keys")
                await keys(app, "down")  # ↓ picks a key without the focus in the table
                await until(lambda: hot_table.cursor_row == 1, what="the second row selected")
                await keys(app, "up")
                await until(lambda: hot_table.cursor_row == 0, what="back on hot:1")
                assert hot_table.get_row_at(0)[1].plain == "hot:1"
                assert "e Evict key" in text(app).splitlines()[-1]  # offered in the footer
                await keys(app, "e")  # no Tab before it
                modal = await until(
                    lambda: isinstance(app.screen, ConfirmEvictScreen) and app.screen, what="the dialog"
                )
                await until(lambda: "would evict 1 key from r1, e.g. hot:1" in text(app), what="the dry run")
                assert app.focused is not None and app.focused.id == "evict-cancel"
                assert "Enter: cancel (focused) · Tab, Enter: evict · Esc: cancel" in text(app)
                await keys(app, "enter")  # on the focused Cancel: declines, as the dialog says
                await until(lambda: not isinstance(app.screen, ConfirmEvictScreen), what="closed")
                assert modal.preview.matched == 1
                assert client.exists("hot:1") == 1
            finally:
                stop.set()
                with contextlib.suppress(Exception):
                    await load
    client.close()
