"""Hostile names (Rich markup, terminal escapes, invalid UTF-8) show literally and break nothing."""

from __future__ import annotations

import asyncio
import contextlib

import redis as redis_py

from cachetop.engine.config import Config, InstanceConfig, Settings, parse_target
from cachetop.engine.live import LiveSources
from cachetop.engine.monitor import Monitor
from cachetop.hotkeys.config import HotKeySettings
from cachetop.servers import LocalServer
from cachetop.tui.app import CachetopApp
from cachetop.tui.detail_rows import client_rows, slowlog_rows
from cachetop.tui.inspect import ClientInfo, Details, SlowEntry
from tests.tui.helpers import cell, hot_reads, open_detail, open_tab, text, until

MARKUP = "[red]x[/]"
ESCAPE_KEY = b"\x1b[2J"
BINARY_KEY = b"\xff\xfe[bold]k"


def test_rows_escape_every_hostile_name() -> None:
    details = Details(
        slowlog=(
            SlowEntry(1, 100, 2500, b"GET", ESCAPE_KEY, MARKUP.encode()),
            SlowEntry(2, 100, 10, b"GET", BINARY_KEY, b""),
        ),
        clients=(ClientInfo("7", "127.0.0.1:5000", b"\x1b]0;pwned\x07", 3, 1, "get", 0, False),),
    )
    slow = slowlog_rows(details, now=160.0)
    assert slow[0].cells["key"][0] == "\\x1b[2J"
    assert slow[0].cells["client"][0] == MARKUP
    assert slow[0].cells["when"][0] == "1m00s"
    assert slow[1].cells["key"][0] == "\\xff\\xfe[bold]k"
    assert client_rows(details)[0].cells["name"][0] == "\\x1b]0;pwned\\x07"


async def test_hostile_names_show_literally_in_the_app(redis: LocalServer) -> None:
    setup = redis_py.Redis(port=redis.port)
    setup.config_set("slowlog-log-slower-than", 0)  # log every command
    setup.close()
    app_client = redis_py.Redis(port=redis.port, client_name=MARKUP)
    app_client.get(ESCAPE_KEY)
    app_client.get(BINARY_KEY)
    # Then nothing more is logged: SLOWLOG GET shows the newest entries, and the dashboard's own
    # polls (a few commands each) would push these out of them on a slow machine.
    app_client.config_set("slowlog-log-slower-than", -1)
    name = "[bold]evil[/]"
    config = Config(
        path=None,
        settings=Settings(interval=0.2, window=5.0, timeout=1.0),
        instances=(InstanceConfig(name=name, target=parse_target(redis.url), tags=("[blink]t",)),),
    )
    async with Monitor(config) as mon:
        app = CachetopApp(config, monitor=mon)
        async with app.run_test(size=(120, 30)):
            await until(lambda: cell(app, name, "status") == "up", what="up")
            assert cell(app, name, "name") == name
            await until(lambda: name in text(app) and "▾ [blink]t (1)" in text(app), what="literal names")
            await open_detail(app, name)
            await open_tab(app, "tab-slowlog")
            await until(lambda: app.screen.details is not None and app.screen.details.slowlog, what="slowlog")
            screen = await until(lambda: "\\x1b[2J" in text(app) and text(app), what="escaped key on screen")
            assert "\\xff\\xfe[bold]k" in screen
            assert MARKUP in screen
            assert "\x1b" not in screen
            await open_tab(app, "tab-clients")
            await until(lambda: f"{MARKUP}" in text(app), what="client name literal")
            assert app._exception is None
    app_client.close()


async def test_a_hot_key_with_an_escape_is_escaped_once_in_the_hot_keys_tab(redis: LocalServer) -> None:
    """The CLI shows ESC as \\x1b; the Hot keys tab once showed \\\\x1b (escaped a second time)."""
    config = Config(
        path=None,
        settings=Settings(interval=0.25, window=4.0, timeout=1.0),
        instances=(InstanceConfig(name="r1", target=parse_target(redis.url)),),
        sections={"hotkeys": HotKeySettings(monitor_on=0.5, monitor_off=0.5, big_keys=False)},
    )
    stop = asyncio.Event()
    async with Monitor(config) as mon:
        app = CachetopApp(config, monitor=mon)
        async with LiveSources(config, mon), app.run_test(size=(120, 32)):
            load = asyncio.create_task(hot_reads(redis.port, stop, b"\x1b[2Jhot\\k"))
            try:
                await until(lambda: "♨" in cell(app, "r1", "name"), deadline_s=15, what="hot badge")
                await open_detail(app, "r1")
                await open_tab(app, "tab-hotkeys")
                await until(lambda: "Jhot" in text(app), deadline_s=10, what="the hot key in the panel")
                hot_table = app.screen.query_one("#hotkeys-table")
                # Exactly once: ESC as \x1b, the key's own backslash as \\.
                assert hot_table.get_row_at(0)[1].plain == "\\x1b[2Jhot\\\\k"
                screen = text(app)
                assert "\\x1b[2Jhot\\\\k" in screen and "\\\\x1b" not in screen
                assert "\x1b" not in screen
            finally:
                stop.set()
                with contextlib.suppress(Exception):
                    await load
