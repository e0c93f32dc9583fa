"""The instance view's Clients and Commands tabs, as rows, with data from real servers while
cachetop's poll, probe and hot-key sampler are connected: every connection of ours is marked, an
application's is not; memcached says it has no ages and no per-command figures."""

from __future__ import annotations

import socket
from dataclasses import replace

import redis as redis_py

from cachetop.engine.live import LiveSources
from cachetop.engine.monitor import Monitor
from cachetop.hotkeys.config import HotKeySettings
from cachetop.servers import LocalServer
from cachetop.tui.detail_rows import client_rows, clients_note, commands_note
from cachetop.tui.inspect import fetch_details
from tests.conftest import until
from tests.monitoring import fast_config

# A slow test machine must not have the guardian end our MONITOR (that is tested elsewhere).
CONTINUOUS = replace(
    HotKeySettings(), monitor_on=600, monitor_off=1, watch_on=600, watch_off=0, monitor_stall=10.0
)


def marked(rows: list) -> dict[str, str]:  # type: ignore[type-arg]
    """address -> the name cell, for every row."""
    return {row.cells["addr"][0]: row.cells["name"][0] for row in rows}


async def test_redis_clients_tab_marks_every_connection_of_ours(redis: LocalServer) -> None:
    app = redis_py.Redis(port=redis.port, driver_info=None)
    app.ping()
    app_addr = next(c["addr"] for c in app.client_list() if c["cmd"] == "client|list")
    config = fast_config(redis.url, interval=0.2, window=2.0)
    config = replace(config, sections={**config.sections, "hotkeys": CONTINUOUS})
    try:
        async with Monitor(config) as mon, LiveSources(config, mon, alerts=False) as live:
            collector = live.collectors[mon.pollers[0].inst.name]
            await until(lambda: collector.sampler is not None and collector.sampler.phase == "sampling")
            await mon.wait_polls(3, timeout=10)  # the probe has connected by then
            # As the detail view asks: on the poll connection, which the live poller lends.
            side = mon.pollers[0].backend.side_commands
            details = await fetch_details(config.instances[0], 2.0, side=side)
            # The look's commands are ours: the idle server still reads 0 ops/s after it.
            await mon.wait_polls(mon.pollers[0].polls + 2, timeout=10)
            assert mon.snapshot().instances[0].metrics["ops_per_sec"] == 0.0
    finally:
        app.close()
    cells = marked(client_rows(details))
    ours = {addr: name for addr, name in cells.items() if name.endswith(" (us)")}
    # poll (which also carries the MONITOR watchdog's checks and this very look), probe and
    # MONITOR: all ours, named without their counts; the footprint while a sample runs is 3
    assert set(ours.values()) == {
        "cachetop (us)",
        "cachetop-probe (us)",
        "cachetop-hotkeys-monitor (us)",
    }
    assert len(ours) == 3, [(c.addr, c.name, c.cmd, c.age_s) for c in details.clients]
    assert set(cells) - set(ours) == {app_addr}, cells
    assert cells[app_addr] == ""
    assert clients_note(details) == f"{len(cells)} connection(s), {len(ours)} of them this cachetop's"


async def test_memcached_clients_and_commands_tabs(memcached: LocalServer) -> None:
    app = socket.create_connection(("127.0.0.1", memcached.port))
    host, port = app.getsockname()[:2]
    config = fast_config(memcached.url, interval=0.2, window=2.0)
    config = replace(config, sections={**config.sections, "hotkeys": CONTINUOUS})
    try:
        async with Monitor(config) as mon, LiveSources(config, mon, alerts=False) as live:
            collector = live.collectors[mon.pollers[0].inst.name]
            await until(lambda: collector.sampler is not None and collector.sampler.phase == "sampling")
            await mon.wait_polls(3, timeout=10)
            details = await fetch_details(config.instances[0], 2.0)
            inst = mon.snapshot().instances[0]
    finally:
        app.close()
    rows = client_rows(details)
    cells = marked(rows)
    by_state = {row.cells["addr"][0]: row.cells["cmd"][0] for row in rows}
    assert cells.pop(f"{host}:{port}") == ""  # the application
    # poll (whose `stats` also gives the watch's drop count), probe, watch and this look: all ours
    assert set(cells.values()) == {"cachetop (us)"} and len(cells) == 4, (cells, by_state)
    assert "watch" in {by_state[a] for a in cells}
    assert {row.cells["age"][0] for row in rows} == {"–"}  # memcached reports no age, not 0s
    assert clients_note(details).endswith("memcached does not report connection ages")
    assert commands_note(inst).startswith("memcached keeps no per-command statistics")
    assert inst.metrics["connections"] == 1
