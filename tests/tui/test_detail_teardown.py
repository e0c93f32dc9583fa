"""A details fetch that finishes after its screen is gone touches nothing (no NoMatches in a worker)."""

from __future__ import annotations

from cachetop.engine.config import Config, InstanceConfig, Settings, parse_target
from cachetop.engine.monitor import Monitor
from cachetop.servers import LocalServer
from cachetop.tui.app import CachetopApp
from cachetop.tui.inspect import Details
from cachetop.tui.screens.detail import DetailScreen
from tests.tui.helpers import cell, keys, until


async def test_details_arriving_after_the_screen_is_gone_are_dropped(redis: LocalServer) -> None:
    config = Config(
        path=None,
        settings=Settings(interval=0.2, window=5.0, timeout=1.0),
        instances=(InstanceConfig(name="r", target=parse_target(redis.url)),),
    )
    async with Monitor(config) as mon:
        app = CachetopApp(config, monitor=mon)
        async with app.run_test(size=(100, 30)):
            await until(lambda: cell(app, "r", "status") == "up", what="up")
            table = app.screen.query_one("FleetTable")
            table.move_cursor(row=table.get_row_index("r"))
            await keys(app, "enter")
            detail = await until(lambda: isinstance(app.screen, DetailScreen) and app.screen, what="detail")
            await keys(app, "escape")
            await until(lambda: not isinstance(app.screen, DetailScreen), what="back on the overview")
            await until(lambda: not detail.is_attached, what="detail screen torn down")
            # What the fetch worker does when its await returns after the screen went away.
            detail.show_details(Details(error="late"))
            assert detail.details is None
            assert app._exception is None
