"""Helpers for driving the dashboard in tests without waiting for an idle that never comes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual import events

from cachetop.engine.config import Config, InstanceConfig, Settings, parse_target
from cachetop.hotkeys.config import HotKeySettings
from cachetop.tui.screen_text import screen_text
from tests.conftest import until

CHARS = {"question_mark": "?", "slash": "/", "space": " ", "plus": "+", "minus": "-", "enter": "\r"}


async def keys(app: Any, *names: str) -> None:
    """Posts key presses (Pilot.press would wait for an idle a polling app never reaches)."""
    for name in names:
        char = CHARS.get(name, name if len(name) == 1 else None)
        app.post_message(events.Key(name, char))
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)


def cell(app: Any, row: str, column: str) -> str:
    tables = app.screen.query("FleetTable")
    return tables.first().cell_text(row, column) if tables else ""


def row_order(app: Any) -> list[str]:
    return list(app.screen.query_one("FleetTable").row_keys)


def text(app: Any) -> str:
    return screen_text(app)


async def open_tab(app: Any, tab_id: str) -> None:
    """Switches the detail view's tab once its tabs exist (detail_mounted)."""
    from textual.widgets import ContentSwitcher, TabbedContent

    await detail_mounted(app)
    switcher = app.screen.query_one(ContentSwitcher)
    tabs = app.screen.query_one(TabbedContent)
    tabs.active = tab_id
    await until(lambda: switcher.current == tab_id, what=f"tab {tab_id} shown")


async def hot_reads(port: int, stop: asyncio.Event, key: bytes | str = "hot:1") -> None:
    """Only GETs until `stop`, 30 of every 50 on `key` (the rest on cold:N): a hot key, and a hit
    ratio of 0 where nothing was written."""
    import redis as redis_py

    client = redis_py.asyncio.Redis(port=port, protocol=2)
    try:
        while not stop.is_set():
            pipe = client.pipeline(transaction=False)
            for i in range(50):
                pipe.get(key if i % 5 < 3 else f"cold:{i}")
            await pipe.execute()
            await asyncio.sleep(0.01)
    finally:
        await client.aclose()


async def open_detail(app: Any, name: str) -> None:
    """From the overview, Enter on `name`'s row; returns once the detail view is the screen."""
    from cachetop.tui.screens.detail import DetailScreen

    table = app.screen.query_one("FleetTable")
    await until(lambda: name in table.row_keys, what=f"{name}'s overview row")
    table.move_cursor(row=table.get_row_index(name))
    await keys(app, "enter")
    await until(lambda: isinstance(app.screen, DetailScreen), what="the detail view")
    await detail_mounted(app)


async def detail_mounted(app: Any) -> None:
    """The detail screen is pushed before its widgets are composed and mounted: until its tabs
    exist and show their first tab (TabbedContent picks it on mount, undoing an earlier switch)."""
    from textual.widgets import ContentSwitcher

    await until(lambda: app.screen.query(ContentSwitcher), what="detail tabs mounted")
    switcher = app.screen.query_one(ContentSwitcher)
    await until(lambda: switcher.current is not None, what="first tab shown")


def sampled_config(url: str, state_dir: Path, **sections: Any) -> Config:
    """One Redis, r1, polled every 0.25 s, its hot keys sampled by MONITOR 0.5 s on / 0.5 s off;
    `sections` adds others ("rule": (...) and so on)."""
    return Config(
        path=None,
        settings=Settings(interval=0.25, window=4.0, timeout=1.0, state_dir=state_dir),
        instances=(InstanceConfig(name="r1", target=parse_target(url)),),
        sections={"hotkeys": HotKeySettings(monitor_on=0.5, monitor_off=0.5, big_keys=False), **sections},
    )
