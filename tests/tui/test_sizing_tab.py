"""The Sizing tab (Pilot, real Redis, 80x24): nothing runs until `m`; the profile shows its progress,
holds at most 3 connections to the instance, leaves no MONITOR client, and ends in a chart of hit
ratio against memory with the calibration line; leaving the tab cancels a running profile."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from cachetop.engine.config import Config, InstanceConfig, Settings, parse_target
from cachetop.engine.live import LiveSources
from cachetop.engine.monitor import Monitor
from cachetop.hotkeys.config import HotKeySettings
from cachetop.servers import LocalServer
from cachetop.tui.app import CachetopApp
from cachetop.tui.widgets.sizing_panel import SizingPanel
from tests.conftest import SIZING_MAXMEMORY as MAXMEMORY
from tests.tui.helpers import keys, open_detail, open_tab, text, until


def _config(server: LocalServer, state: Path, hotkeys: str = "auto") -> Config:
    return Config(
        path=None,
        settings=Settings(interval=0.25, window=4.0, timeout=1.0, state_dir=state),
        instances=(InstanceConfig(name="r1", target=parse_target(server.url), hotkeys=hotkeys),),
        sections={"hotkeys": HotKeySettings(monitor_on=0.5, monitor_off=0.3, big_keys=False)},
    )


@contextlib.asynccontextmanager
async def dashboard(config: Config) -> AsyncIterator[CachetopApp]:
    async with Monitor(config) as mon:
        app = CachetopApp(config, monitor=mon)
        async with LiveSources(config, mon, alerts=False) as live, app.run_test(size=(80, 24)):
            app.live = live  # type: ignore[attr-defined]  # as tui/run.py does
            yield app


async def _open_sizing(app: CachetopApp) -> SizingPanel:
    await open_detail(app, "r1")
    await open_tab(app, "tab-sizing")
    panel = app.screen.query_one("#sizing", SizingPanel)
    await until(lambda: panel.is_mounted and panel.query("#sizing-status"), what="the Sizing tab mounted")
    return panel


async def _ours(counter: aioredis.Redis) -> tuple[list[str], int]:
    clients = await counter.client_list()
    ours = sorted(c["name"].split(":")[0] for c in clients if c["name"].startswith("cachetop"))
    monitors = sum(1 for c in clients if "O" in c.get("flags", "") or c.get("cmd") == "monitor")
    return ours, monitors


def _with_chart(screen: str) -> str | None:
    return screen if "hit ratio (0-100%) against memory" in screen and "▶" in screen else None


async def test_profile_on_demand_draws_the_curve_within_three_connections(
    sizing_redis: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SizingPanel, "OPTIONS", {"duration": 3.0, "rate": 0.2})
    counter = aioredis.Redis(port=sizing_redis.port, client_name="counter", driver_info=None)
    try:
        async with dashboard(_config(sizing_redis, tmp_path / "state")) as app:
            panel = await _open_sizing(app)
            await until(lambda: "m: profile this instance" in text(app), what="the tab's hint")
            assert not panel.running and panel.report is None  # nothing runs by itself
            await keys(app, "m")
            await until(lambda: "MONITOR on:" in text(app), what="the progress line")
            while panel.running:
                ours, _ = await _ours(counter)
                assert len(ours) <= 3, ours
                await asyncio.sleep(0.05)
            await until(lambda: "m: profile again" in text(app), deadline_s=60, what="the report")
            report = panel.report
            assert report is not None and report["memory_max_bytes"] == MAXMEMORY
            assert [c["policy"] for c in report["curves"]] == ["redis-lru", "redis-lfu", "s3fifo"]
            assert [p["memory_bytes"] for p in report["curves"][0]["points"]][4] == MAXMEMORY
            # The status line and the report's text change in one step; the chart gets its height
            # at the screen's next layout pass (a loaded machine's event loop may not have run it
            # yet), and a toast fades: the chart must be drawn, with its current-size mark, soon.
            screen = await until(lambda: _with_chart(text(app)), what="the chart drawn")
            assert "measured" in screen and "predicted" in screen
    finally:
        await counter.aclose()


async def test_leaving_the_tab_cancels_the_profile_and_ends_monitor(
    sizing_redis: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SizingPanel, "OPTIONS", {"duration": 60.0})
    counter = aioredis.Redis(port=sizing_redis.port, client_name="counter", driver_info=None)
    try:
        # No hot-key sampler: the profile's MONITOR is the only one there can be.
        async with dashboard(_config(sizing_redis, tmp_path / "state", hotkeys="off")) as app:
            panel = await _open_sizing(app)
            await keys(app, "m")
            await until(lambda: "MONITOR on:" in text(app), what="the profile running")

            async def monitors() -> int:
                return (await _ours(counter))[1]

            for _ in range(100):  # the MONITOR connection is open while the line says so
                if await monitors() == 1:
                    break
                await asyncio.sleep(0.05)
            assert await monitors() == 1
            await open_tab(app, "tab-charts")
            await until(lambda: not panel.running, what="the profile cancelled")
            for _ in range(100):
                if await monitors() == 0:
                    break
                await asyncio.sleep(0.05)
            assert await monitors() == 0
    finally:
        await counter.aclose()
