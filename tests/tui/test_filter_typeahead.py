"""Keys typed in the same burst as `/` go to the filter, not to the table (a fast typist, or a
paste, must not fold the groups with `c` or speed up polling with `-`)."""

from __future__ import annotations

from textual import events

from cachetop.engine.config import Config, InstanceConfig, Settings, parse_target
from cachetop.engine.monitor import Monitor
from cachetop.servers import LocalServer
from cachetop.tui.app import CachetopApp
from tests.tui.helpers import cell, until


async def test_keys_typed_with_the_slash_reach_the_filter(redis: LocalServer) -> None:
    config = Config(
        path=None,
        settings=Settings(interval=0.5, window=5.0, timeout=1.0),
        instances=(
            InstanceConfig(name="cache-a", target=parse_target(redis.url), tags=("web",)),
            InstanceConfig(name="other", target=parse_target(redis.url), tags=("db",)),
        ),
    )
    async with Monitor(config) as mon:
        app = CachetopApp(config, monitor=mon)
        async with app.run_test(size=(100, 30)):
            await until(lambda: cell(app, "cache-a", "status") == "up", what="up")
            assert app.screen.query_one("FleetTable").has_focus
            before = mon.pollers[0].interval
            # One burst: "/" and what follows, before the filter box can take the focus.
            names = {"/": "slash", "-": "minus"}
            for char in "/c-a":
                app.post_message(events.Key(names.get(char, char), char))
            box = app.screen.query_one("#filter")
            await until(lambda: box.value == "c-a", what="the filter holds every key typed")
            assert mon.pollers[0].interval == before  # "-" did not change the interval
            # The view follows the box through its Changed messages, handled after the keys.
            await until(lambda: app.view.query == "c-a", what="the view filters on what was typed")


async def test_keys_typed_right_after_enter_in_the_filter_reach_the_table(redis: LocalServer) -> None:
    # Enter, End, Enter in one burst: the filter is kept, End selects the last row (the one
    # instance left) and Enter opens it. The box used to hand the focus back in a handler of its
    # Submitted message, queued behind End and Enter, so those two went to the box (a clean CI run
    # once showed the overview, filtered, with the box still open).
    from cachetop.tui.screens.detail import DetailScreen

    config = Config(
        path=None,
        settings=Settings(interval=0.5, window=5.0, timeout=1.0),
        instances=(
            InstanceConfig(name="cache-a", target=parse_target(redis.url)),
            InstanceConfig(name="other", target=parse_target(redis.url)),
        ),
    )
    async with Monitor(config) as mon:
        app = CachetopApp(config, monitor=mon)
        async with app.run_test(size=(100, 30)):
            await until(lambda: cell(app, "cache-a", "status") == "up", what="up")
            app.post_message(events.Key("slash", "/"))
            box = app.screen.query_one("#filter")
            await until(lambda: box.has_focus, what="the filter box")
            for char in "cache-a":
                app.post_message(events.Key("minus" if char == "-" else char, char))
            await until(lambda: app.view.query == "cache-a", what="the filter applied")
            for key, char in (("enter", "\r"), ("end", None), ("enter", "\r")):
                app.post_message(events.Key(key, char))
            await until(lambda: isinstance(app.screen, DetailScreen), what="cache-a's detail")
            assert app.screen.instance_name == "cache-a"
            # mounted whole before the app exits (its tab bar takes the focus)
            await until(lambda: type(app.focused).__name__ == "ContentTabs", what="the detail's tabs")
