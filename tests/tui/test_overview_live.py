"""The overview against real servers: a real cluster's node rows, worst first with a real alert."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import redis as redis_py

from cachetop.alerts.rules import Rule
from cachetop.engine.config import Config, InstanceConfig, Settings, config_from_targets, parse_target
from cachetop.engine.live import LiveSources
from cachetop.engine.monitor import Monitor
from cachetop.model import Status
from cachetop.servers import LocalServer
from cachetop.tui.app import CachetopApp
from tests.cluster_fixtures import Cluster, make_cluster  # noqa: F401
from tests.tui.helpers import cell, keys, row_order, text, until


def _node_rows(app: CachetopApp) -> list[str]:
    return [key for key in row_order(app) if "/" in key]


async def test_cluster_nodes_are_told_apart_at_80_and_160_columns_and_a_dead_one_says_down(
    make_cluster: Callable[..., Cluster],  # noqa: F811
) -> None:
    cluster = make_cluster(3)
    config = config_from_targets([f"redis-cluster://{cluster.nodes[0].address},{cluster.nodes[1].address}"])
    config = replace(config, settings=replace(config.settings, interval=0.2, window=5.0, timeout=0.5))
    ports = sorted(str(n.port) for n in cluster.nodes)
    async with Monitor(config) as mon:
        app = CachetopApp(config, monitor=mon)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(
                lambda: (
                    len(_node_rows(app)) == 3 and all(cell(app, k, "status") == "up" for k in _node_rows(app))
                ),
                deadline_s=15,
                what="three nodes up",
            )
            names80 = [cell(app, key, "name") for key in _node_rows(app)]
            # Every node row shows its own port and shard number, the shared host elided.
            assert names80 == [f"…:{port} s{n}" for n, port in enumerate(ports_by_shard(app), 1)]
            assert sorted(name.split(":")[1].split()[0] for name in names80) == ports
            groups = [cell(app, key, "name") for key in row_order(app) if key.startswith("__group__:")]
            assert groups == ["▾ s1 0-5460 (1)", "▾ s2 5461-10922 (1)", "▾ s3 10923-16383 (1)"]
            screen = text(app)
            assert all(f"…:{port}" in screen for port in ports)

            await pilot.resize_terminal(160, 48)
            await until(lambda: app.screen.query_one("FleetTable").layout_columns[0].width == 36, what="wide")
            names160 = [cell(app, key, "name") for key in _node_rows(app)]
            assert names160 == [f"127.0.0.1:{port} s{n}" for n, port in enumerate(ports_by_shard(app), 1)]

            # A node dies: its own row says DOWN, and its shard's group moves to the top.
            victim = cluster.nodes[2]
            victim_key = next(k for k in _node_rows(app) if k.endswith(f":{victim.port}"))
            victim.kill()
            await until(lambda: cell(app, victim_key, "status") == "DOWN", deadline_s=10, what="DOWN row")
            assert cell(app, victim_key, "name").startswith(f"127.0.0.1:{victim.port} s")
            await until(lambda: row_order(app)[2] == victim_key, what="the dead node's group first")
            assert row_order(app)[1].startswith("__group__:")
            # The notes line names it by its own address too (its full name was cut before the port).
            await until(
                lambda: re.search(rf"127\.0\.0\.1:{victim.port} s\d down: connection refused", text(app)),
                what="the dead node named in the notes",
            )


def ports_by_shard(app: CachetopApp) -> list[int]:
    """Node ports in slot order (the shard numbers s1, s2, s3 follow the slots)."""
    snap = app.latest
    assert snap is not None
    nodes = sorted((i for i in snap.instances if i.shard), key=lambda i: int(i.shard.split("-")[0]))
    return [int(i.address.rsplit(":", 1)[1]) for i in nodes]


def _traffic(server: LocalServer, hits: int, misses: int) -> None:
    client = redis_py.Redis(port=server.port)
    client.set("k", "v")
    for _ in range(hits):
        client.get("k")
    for i in range(misses):
        client.get(f"absent:{i}")
    client.close()


async def test_worst_first_down_then_alerting_whatever_the_sort(
    make_redis: Callable[..., LocalServer], tmp_path: Path
) -> None:
    servers = {name: make_redis() for name in ("r1", "r2", "r3", "r4")}
    rule = Rule(name="low-hit", metric="hit_ratio", op="<", threshold=50.0, severity="critical", channels=())
    config = Config(
        path=None,
        settings=Settings(interval=0.2, window=30.0, timeout=0.5, state_dir=tmp_path / "state"),
        instances=tuple(InstanceConfig(name=n, target=parse_target(s.url)) for n, s in servers.items()),
        sections={"rule": (rule,)},
    )
    async with Monitor(config) as mon:
        app = CachetopApp(config, monitor=mon)
        async with LiveSources(config, mon, hotkeys=False) as live, app.run_test(size=(120, 30)):
            app.alerts = live.alert_service
            await mon.wait_polls(2)
            _traffic(servers["r1"], hits=10, misses=0)  # 100%
            _traffic(servers["r2"], hits=9, misses=1)  # 90%
            _traffic(servers["r3"], hits=0, misses=10)  # 0%: the rule fires
            _traffic(servers["r4"], hits=5, misses=5)  # 50%, then killed
            await until(lambda: cell(app, "r2", "hit") == "90.0%", what="hit ratios")
            # Three application connections held open: conn is a whole number (it read 3.0).
            held = [redis_py.Redis(port=servers["r2"].port) for _ in range(3)]
            for client in held:
                client.ping()
            await until(
                lambda: re.fullmatch(r"\d+", cell(app, "r2", "conn")) and int(cell(app, "r2", "conn")) >= 3,
                what="conn",
            )
            for client in held:
                client.close()
            servers["r4"].kill()
            await until(lambda: mon.latest.by_name("r4").status == Status.DOWN, what="r4 down")
            await until(lambda: cell(app, "r3", "status") == "▲ up", deadline_s=10, what="alert marker")

            # `N` sorts by the Nth column on screen: hit ratio, worst (lowest) first.
            table = app.screen.query_one("FleetTable")
            number = [c.key for c in table.layout_columns if c.key != "note"].index("hit") + 1
            await keys(app, str(number))
            await until(lambda: app.view.sort_key == "hit", what="sorted by hit")
            # Down first, then the firing one, then the rest by hit ratio.
            await until(lambda: row_order(app) == ["__fleet__", "r4", "r3", "r2", "r1"], what="worst first")
            hit_column = next(c for c in table.layout_columns if c.key == "hit")
            assert table.header_text(hit_column) == "hit▲"
            assert [cell(app, k, "status") for k in ("r3", "r2", "r1")] == ["▲ up", "up", "up"]
            assert cell(app, "r4", "status").endswith("DOWN")  # with the down preset's marker, when pending
            # The same key again reverses; the pinned rows stay on top.
            await keys(app, str(number))
            await until(lambda: row_order(app) == ["__fleet__", "r4", "r3", "r1", "r2"], what="reversed")
            assert table.header_text(hit_column) == "hit▼"
            # `w` turns pinning off: the plain sort, no value last.
            await keys(app, "w")
            await until(lambda: row_order(app) == ["__fleet__", "r1", "r2", "r3", "r4"], what="pinning off")
