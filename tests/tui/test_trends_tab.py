"""The Trends tab (Pilot, real Redis, 80x24): the last bucket against yesterday's, what appeared and
vanished, the hit ratio by hour and the precision line, from the history file; with a daemon holding
the history lock, the dashboard keeps no second history and shows the daemon's."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from cachetop.engine.config import Config, InstanceConfig, Settings, parse_target
from cachetop.engine.live import LiveSources
from cachetop.engine.monitor import Monitor
from cachetop.history.bucket import BucketRecord
from cachetop.history.config import HistorySettings
from cachetop.history.store import HistoryLock, HistoryStore
from cachetop.hotkeys.config import HotKeySettings
from cachetop.servers import LocalServer
from cachetop.tui.app import CachetopApp
from tests.tui.helpers import open_detail, open_tab, text, until

HOUR = 3600.0


def _config(redis: LocalServer, state: Path) -> Config:
    return Config(
        path=None,
        settings=Settings(interval=0.25, window=4.0, timeout=1.0, state_dir=state),
        instances=(InstanceConfig(name="r1", target=parse_target(redis.url)),),
        sections={"hotkeys": HotKeySettings(monitor_on=0.5, monitor_off=0.3), "history": HistorySettings()},
    )


def _history(state: Path) -> int:
    store = HistoryStore(state, HistorySettings())
    last = int(time.time() // HOUR) - 1
    today = ((b"page:new:1", 90), (b"page:both:1", 50))
    yesterday = ((b"page:both:1", 70), (b"page:old:1", 60))
    store.add(BucketRecord("r1", last, HOUR, today, ((b"page:new:*", 90),), {"hits": 930.0, "misses": 70.0}))
    store.add(
        BucketRecord(
            "r1", last - 24, HOUR, yesterday, ((b"page:old:*", 60),), {"hits": 800.0, "misses": 200.0}
        )
    )
    store.close()
    return last


@contextlib.asynccontextmanager
async def dashboard(config: Config) -> AsyncIterator[tuple[CachetopApp, LiveSources]]:
    async with Monitor(config) as mon:
        app = CachetopApp(config, monitor=mon)
        async with LiveSources(config, mon, alerts=False) as live, app.run_test(size=(80, 24)):
            app.live = live  # type: ignore[attr-defined]  # as tui/run.py does
            yield app, live


async def test_trends_tab_shows_the_daemons_history_at_80x24(redis: LocalServer, tmp_path: Path) -> None:
    state = tmp_path / "state"
    _history(state)
    daemon = HistoryLock(state)  # a daemon keeps the history of this state dir
    assert daemon.held
    try:
        async with dashboard(_config(redis, state)) as (app, live):
            assert live.history is not None and not live.history.writer  # no second history
            await open_detail(app, "r1")
            await open_tab(app, "tab-trends")
            await until(lambda: "new keys vs yesterday" in text(app), deadline_s=10, what="the trends text")
            screen = text(app)
            assert "hit ratio          93.0%          80.0%   +13.0" in screen
            assert "new keys vs yesterday: page:new:1" in screen
            assert "gone keys vs yesterday: page:old:1" in screen
            assert "new prefixes: page:new:*" in screen
            assert "hit ratio by hour of day (UTC):" in screen
            assert all(len(line) <= 80 for line in screen.splitlines())
    finally:
        daemon.close()
