"""The dashboard against real redis-server and memcached processes (Pilot, no mocks)."""

from __future__ import annotations

from collections.abc import Callable

import redis as redis_py
from pymemcache.client.base import Client as Memcached

from cachetop.engine.config import Config, InstanceConfig, Settings, parse_target
from cachetop.engine.monitor import Monitor
from cachetop.model import Status
from cachetop.servers import LocalServer
from cachetop.tui.app import CachetopApp
from cachetop.tui.screens.detail import DetailScreen
from cachetop.tui.screens.help import HelpScreen
from cachetop.tui.widgets.chart import Chart
from tests.tui.helpers import cell, keys, open_detail, open_tab, row_order, text, until


def _config(*servers: tuple[str, LocalServer], interval: float = 0.2) -> Config:
    instances = tuple(InstanceConfig(name=name, target=parse_target(s.url)) for name, s in servers)
    return Config(
        path=None, settings=Settings(interval=interval, window=30.0, timeout=1.0), instances=instances
    )


def _redis_traffic(server: LocalServer, hits: int, misses: int) -> None:
    client = redis_py.Redis(port=server.port)
    client.set("k", "v")
    for _ in range(hits):
        client.get("k")
    for i in range(misses):
        client.get(f"absent:{i}")
    client.close()


def _memcached_traffic(server: LocalServer, hits: int, misses: int) -> None:
    client = Memcached(("127.0.0.1", server.port))
    client.set("k", b"v")
    for _ in range(hits):
        client.get("k")
    for i in range(misses):
        client.get(f"absent:{i}")
    client.close()


async def test_overview_values_sort_filter_help_pause(redis: LocalServer, memcached: LocalServer) -> None:
    config = _config(("r1", redis), ("m1", memcached))
    async with Monitor(config) as mon:
        app = CachetopApp(config, monitor=mon)
        async with app.run_test(size=(120, 30)):
            await until(
                lambda: app.snapshots_seen >= 2 and mon.latest and mon.latest.by_name("r1").status == "up"
            )
            await mon.wait_polls(2)
            _redis_traffic(redis, hits=30, misses=10)
            _memcached_traffic(memcached, hits=20, misses=20)
            # Exact ratios from known traffic: 30/(30+10) and 20/(20+20).
            await until(lambda: cell(app, "r1", "hit") == "75.0%", what="redis hit 75.0%")
            await until(lambda: cell(app, "m1", "hit") == "50.0%", what="memcached hit 50.0%")
            assert cell(app, "r1", "status") == "up"
            assert cell(app, "m1", "kind") == "memcached"
            # The fleet row weights by traffic; both appear under it.
            assert row_order(app) == ["__fleet__", "r1", "m1"]

            # Sort by hit ratio: worst first; `s`-cycling and reversing keep the fleet row on top.
            app.screen.sort_by("hit")
            await until(lambda: row_order(app) == ["__fleet__", "m1", "r1"], what="sorted by hit")
            await keys(app, "S")
            await until(lambda: row_order(app) == ["__fleet__", "r1", "m1"], what="reverse sort")

            # `/` filter by name.
            await keys(app, "slash")
            await until(lambda: app.focused is not None and app.focused.id == "filter", what="filter focused")
            await keys(app, "m", "1")
            await until(lambda: row_order(app) == ["__fleet__", "m1"], what="filter m1")
            await keys(app, "escape")
            await until(lambda: set(row_order(app)) == {"__fleet__", "m1", "r1"}, what="filter cleared")

            # Help opens and closes.
            await keys(app, "question_mark")
            await until(lambda: isinstance(app.screen, HelpScreen), what="help")
            await until(lambda: "pause / resume polling" in text(app), what="help text")
            await keys(app, "escape")
            await until(lambda: not isinstance(app.screen, HelpScreen), what="help closed")

            # Pause: no snapshot arrives, even on a refresh request; resume brings them back.
            await keys(app, "p")
            await until(lambda: mon.paused, what="paused")
            await until(lambda: "PAUSED" in text(app), what="PAUSED badge")
            seen = app.snapshots_seen
            mon.refresh_now()
            import asyncio

            await asyncio.sleep(0.4)  # two intervals: a paused monitor must not publish
            assert app.snapshots_seen == seen
            await keys(app, "p")
            await until(lambda: app.snapshots_seen > seen, what="snapshots after resume")
            await until(lambda: "PAUSED" not in text(app), what="PAUSED badge gone")
            assert app.return_code is None and app._exception is None


async def test_detail_opens_with_charts_and_clients(redis: LocalServer) -> None:
    config = _config(("r1", redis))
    async with Monitor(config) as mon:
        app = CachetopApp(config, monitor=mon)
        async with app.run_test(size=(120, 40)):
            await mon.wait_polls(2)
            _redis_traffic(redis, hits=9, misses=1)
            await until(lambda: cell(app, "r1", "hit") == "90.0%", what="hit 90%")
            await open_detail(app, "r1")
            charts = {c.id: c for c in app.screen.query(Chart)}
            assert set(charts) == {
                "chart-hit",
                "chart-ops",
                "chart-latency",
                "chart-memory",
                "chart-evictions",
            }
            hit = charts["chart-hit"]
            await until(lambda: hit.series and 90.0 in hit.series[0].values, what="hit series has 90.0")
            assert [s.label for s in charts["chart-latency"].series][:3] == ["p99", "p95", "p50"]
            await until(lambda: "hit 90.0%" in text(app), what="summary line")
            # Clients, fetched on demand: our own poll connection is there and marked.
            await open_tab(app, "tab-clients")
            await until(lambda: app.screen.details is not None, what="details fetched")
            names = [
                r.get_row_at(i)[1].plain
                for r in [app.screen.query_one("#clients")]
                for i in range(r.row_count)
            ]
            assert "cachetop (us)" in names
            # Our look is not the application's traffic: the fetch's commands are not counted.
            await mon.wait_polls(mon.pollers[0].polls + 2)
            commands = mon.latest.by_name("r1").commands
            assert "client|list" not in commands and "slowlog|get" not in commands
            assert set(commands) == {"get", "set", "hello"}  # hello: the test client (RESP3)
            await keys(app, "escape")
            await until(lambda: not isinstance(app.screen, DetailScreen), what="back")


async def test_killed_server_goes_down_with_reason_and_comes_back(
    make_redis: Callable[..., LocalServer], redis: LocalServer
) -> None:
    victim = make_redis()
    config = _config(("stays", redis), ("victim", victim))
    async with Monitor(config) as mon:
        app = CachetopApp(config, monitor=mon)
        async with app.run_test(size=(120, 30)):
            await until(lambda: cell(app, "victim", "status") == "up", what="victim up")
            victim.kill()
            await until(lambda: cell(app, "victim", "status") == "DOWN", what="victim DOWN")
            await until(lambda: "victim down: connection refused" in text(app), what="reason shown")
            assert cell(app, "stays", "status") == "up"
            messages = lambda: [n.message for n in app._notifications]  # noqa: E731
            await until(lambda: "victim: down: connection refused" in messages(), what="down toast")
            assert mon.latest.by_name("victim").status == Status.DOWN
            victim.start()
            await until(lambda: cell(app, "victim", "status") == "up", deadline_s=15, what="victim back up")
            await until(lambda: "connection refused" not in text(app), what="reason cleared")
            await until(lambda: "victim is back up" in messages(), what="up toast")
            assert app._exception is None
