"""Hostile names (Rich markup, terminal escapes, invalid UTF-8) show literally and break nothing."""

from __future__ import annotations

import redis as redis_py

from cachetop.config import Config, InstanceConfig, Settings, parse_target
from cachetop.monitor import Monitor
from cachetop.servers import LocalServer
from cachetop.tui.app import CachetopApp
from cachetop.tui.detail_rows import client_rows, slowlog_rows
from cachetop.tui.inspect import ClientInfo, Details, SlowEntry
from cachetop.tui.screens.detail import DetailScreen
from tests.tui.helpers import cell, keys, open_tab, text, until

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
            table = app.screen.query_one("FleetTable")
            table.move_cursor(row=table.get_row_index(name))
            await keys(app, "enter")
            await until(lambda: isinstance(app.screen, DetailScreen), what="detail")
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
