"""Issue 19: a real Prometheus scrapes two real daemons; `--source prometheus://` shows every
instance of both, with the hit ratios the daemons computed themselves.

Two daemons with disjoint configs (FLEET entries in all, several entries per real server,
addressed different ways), each exporting /metrics; Prometheus scrapes both every second. Known
traffic gives each server an exact hit ratio; the Source's Snapshot must carry exactly that
ratio for every entry, equal to what the owning daemon's own /metrics says, and name that daemon.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import pymemcache.client.base
import pytest
import redis as redis_py
from prometheus_client.parser import text_string_to_metric_families

from cachetop.engine.config import Config, Settings
from cachetop.engine.shards import owner
from cachetop.metrics.totals import COUNTERS
from cachetop.model import METRICS, Status
from cachetop.servers import LocalServer, free_port
from cachetop.sources.prom_snapshot import LIVE_FACT
from cachetop.sources.prometheus import PrometheusSource
from cachetop.sources.promql import PromError
from tests.conftest import until, wait_until
from tests.prom_fixture import EXE, Processes, procs, prom_query, scrape_config  # noqa: F401 - fixture
from tests.shard_daemons import ShardDaemon, fleet_entries, write_fleet
from tests.tmux import kill, screen, send_keys, start

pytestmark = pytest.mark.slow

PER_SERVER = 8  # entries per server: 3 servers, 2 daemons, 24 instances
# server -> (hits, misses): exact hit ratios 90%, 30%, 75%
TRAFFIC = {"redis": (900, 100), "valkey": (300, 700), "memcached": (750, 250)}


def entries(prefix: str, server: LocalServer, kind: str) -> list[tuple[str, str]]:
    """PER_SERVER names for one server, its address written different ways."""
    scheme = "memcached" if kind == "memcached" else "redis"
    hosts = ["127.0.0.1", "localhost"]
    out = []
    for n in range(PER_SERVER):
        db = "" if kind == "memcached" else f"/{n % 4}"
        out.append((f"{prefix}/{kind}-{n:02d}", f"{scheme}://{hosts[n % 2]}:{server.port}{db}"))
    return out


def daemon_config(path: Path, state: Path, fleet: list[tuple[str, str]]) -> Path:
    lines = [
        "[settings]",
        'interval = "500ms"',
        'window = "60s"',
        'profile = "light"',
        f'state_dir = "{state}"',
        "[alerts]",
        "instance_down = false",
    ]
    for name, url in fleet:
        lines += [
            "[[instance]]",
            f'name = "{name}"',
            f'url = "{url}"',
            'tags = ["' + name.split("/")[0] + '"]',
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def own_ratios(port: int) -> dict[str, float]:
    """The daemon's own hit ratios, straight from its /metrics (0..1)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    found = {}
    for family in text_string_to_metric_families(text):
        if family.name == "cachetop_hit_ratio":
            found.update({s.labels["cache_instance"]: s.value for s in family.samples})
    return found


def drive(servers: dict[str, LocalServer], dbs: int = 4) -> None:
    for kind, (hits, misses) in TRAFFIC.items():
        port = servers[kind].port
        if kind == "memcached":
            client = pymemcache.client.base.Client(("127.0.0.1", port))
            client.set("present", b"x")
            for _ in range(hits):
                client.get("present")
            for n in range(misses):
                client.get(f"absent{n}")
            client.close()
            continue
        for db in range(dbs):  # a hit or a miss counts server-wide, whichever db asks
            redis_py.Redis(port=port, db=db).set("present", "x")
        client = redis_py.Redis(port=port)
        pipe = client.pipeline(transaction=False)
        for _ in range(hits):
            pipe.get("present")
        for n in range(misses):
            pipe.get(f"absent:{n}")
        pipe.execute()
        client.close()


async def test_two_daemons_through_prometheus(
    tmp_path: Path,
    redis: LocalServer,
    valkey: LocalServer,
    memcached: LocalServer,
    procs: Processes,  # noqa: F811 - the fixture
) -> None:
    servers = {"redis": redis, "valkey": valkey, "memcached": memcached}
    fleet_a = entries("a", redis, "redis") + entries("a", memcached, "memcached")
    fleet_b = entries("b", valkey, "valkey")
    ports = {"a": free_port(), "b": free_port()}
    for name, fleet in (("a", fleet_a), ("b", fleet_b)):
        config = daemon_config(tmp_path / f"{name}.toml", tmp_path / f"state-{name}", fleet)
        procs.daemon(config, ports[name], log_name=f"daemon-{name}.log")
    prom = procs.prometheus(scrape_config([ports["a"], ports["b"]]))
    total = len(fleet_a) + len(fleet_b)
    wait_until(
        lambda: len(prom_query(prom, "cachetop_up == 1")) == total, 60, f"{total} instances up in Prometheus"
    )
    drive(servers)
    expected = {}
    for name, _ in fleet_a + fleet_b:
        kind = name.split("/")[1].rsplit("-", 1)[0]
        expected[name] = 100.0 * TRAFFIC[kind][0] / sum(TRAFFIC[kind])

    source = PrometheusSource(f"prometheus://127.0.0.1:{prom}", interval=1.0, history=False)

    async def settled() -> object:
        snap = await source.read()
        got = {i.name: i.metrics.get("hit_ratio") for i in snap.instances}
        return snap if got == pytest.approx(expected, abs=1e-9) else None

    end = time.monotonic() + 60
    snap = None
    while snap is None:
        snap = await settled()
        assert time.monotonic() < end, "the Source never showed the known hit ratios"
        await asyncio.sleep(0.25)  # the pace of a deadline-bounded poll, not a wait for something
    assert len(snap.instances) == total
    assert all(i.status == Status.UP for i in snap.instances)
    # One instant query per metric (plus five about the daemons), whatever the fleet's size.
    before = source.client.queries
    snap = await source.read()
    assert source.client.queries - before == len(METRICS) + len(COUNTERS) + 5
    # The daemons' own numbers, at their latest scrape: the same.
    own = {**own_ratios(ports["a"]), **own_ratios(ports["b"])}
    assert {i.name: i.metrics["hit_ratio"] / 100 for i in snap.instances} == pytest.approx(own, abs=1e-12)
    for inst in snap.instances:
        owner = ports[inst.name[0]]
        assert inst.facts["daemon"] == f"127.0.0.1:{owner} (job cachetop)"
        assert inst.facts[LIVE_FACT] == f"cachetop --attach http://127.0.0.1:{owner}"
        assert inst.tags == (inst.name[0],)
        assert inst.kind == inst.name.split("/")[1].rsplit("-", 1)[0]  # redis, valkey, memcached
    # The running totals come through too: redis's 900 hits on each of its entries.
    assert snap.by_name("a/redis-00").counters["hits"] == 900  # type: ignore[union-attr]
    assert snap.by_name("b/valkey-03").counters["misses"] == 700  # type: ignore[union-attr]

    # A match that selects nothing is said before the dashboard opens.
    with pytest.raises(PromError, match='holds no cachetop_up series matching job="nope": does it scrape'):
        await PrometheusSource(f'prometheus://127.0.0.1:{prom}?match=job="nope"').start()
    # ?match narrows the fleet to one daemon's instances.
    only_b = PrometheusSource(f'prometheus://127.0.0.1:{prom}?match=instance="127.0.0.1:{ports["b"]}"')
    assert {i.name for i in (await only_b.read()).instances} == {n for n, _ in fleet_b}

    # The dashboard on it: every row, the ratio, the owning daemon in the detail view.
    from cachetop.tui.app import CachetopApp
    from tests.tui.helpers import cell, keys, open_tab, text

    app = CachetopApp(
        Config(path=None, settings=Settings(interval=1.0, window=10.0), instances=()), monitor=source
    )
    async with source, app.run_test(size=(160, 60)):
        await until(lambda: cell(app, "b/valkey-07", "hit") == "30.0%", 20, "valkey's row")
        assert cell(app, "a/redis-03", "hit") == "90.0%"
        assert cell(app, "a/memcached-05", "hit") == "75.0%"
        assert f"{total}/{total} up" in text(app)
        # The charts' past came from query_range before the first live frame.
        await until(lambda: len(app.history.of("a/redis-00").times) >= 3, 20, "the charts' past")
        table = app.screen.query_one("FleetTable")
        table.move_cursor(row=list(table.row_keys).index("a/redis-00"))
        await keys(app, "enter")
        await open_tab(app, "tab-server")
        attach = f"cachetop --attach http://127.0.0.1:{ports['a']}"
        await until(lambda: attach in text(app), 20, "the owning daemon in the Server tab")
        assert app.read_only
        # What needs a live server says where to get it.
        await open_tab(app, "tab-slowlog")
        slowlog = f"the slowlog comes from the daemon that polls this instance: {attach}"
        await until(lambda: slowlog in text(app), 20, "the slowlog tab's pointer to the daemon")
        await open_tab(app, "tab-hotkeys")
        hot = f"hot keys come from the daemon that polls this instance: {attach}"
        await until(lambda: hot in text(app), 20, "the hot keys tab's pointer to the daemon")

    # The command itself, in a real terminal; then Prometheus goes away under it.
    session = f"cachetop-prom-{uuid.uuid4().hex[:8]}"
    status = tmp_path / "status"
    command = f"{EXE} --source prometheus://127.0.0.1:{prom} --interval 1s; echo $? > {status}"
    start(session, f"env TERM=xterm-256color {command}", (120, 40))
    try:
        wait_until(lambda: f"{total}/{total} up" in screen(session), 30, "the fleet in tmux")
        wait_until(lambda: "90.0%" in screen(session) and "30.0%" in screen(session), 30, "the rows in tmux")
        prometheus = next(p for p in procs.procs if "prometheus.yml" in " ".join(map(str, p.args)))
        prometheus.terminate()
        prometheus.wait(10)
        wait_until(lambda: "stale" in screen(session), 20, "the rows marked stale once Prometheus is gone")
        send_keys(session, "q")
        wait_until(lambda: status.exists() and status.read_text().strip(), 15, "the exit status")
        assert status.read_text().strip() == "0"
    finally:
        kill(session)


async def test_400_instances_of_two_shard_daemons_through_prometheus(
    tmp_path: Path,
    make_redis: Callable[..., LocalServer],
    make_memcached: Callable[..., LocalServer],
    procs: Processes,  # noqa: F811 - the fixture
) -> None:
    """J1's fleet: 400 entries on three real servers, split by `--shard 0/2` and `1/2`."""
    redis_a, redis_b = make_redis("--databases", "16"), make_redis("--databases", "16")
    memcached = make_memcached()
    config, names = write_fleet(tmp_path, redis_a, redis_b, memcached, count=400, interval="2s")
    # A window long enough for one burst of known traffic to stay the whole window.
    config.write_text(config.read_text().replace('window = "4s"', 'window = "60s"'))
    daemons = [ShardDaemon(config, f"{i}/2", tmp_path).start() for i in range(2)]
    try:
        # 2 s: a 200-instance /metrics on a busy 2-core box can take longer than a 1 s scrape timeout
        prom = procs.prometheus(scrape_config([d.port for d in daemons], interval="2s"))
        wait_until(
            lambda: len(prom_query(prom, "cachetop_up == 1")) == 400, 90, "400 instances up in Prometheus"
        )
        server_of = {redis_a.port: "redis", redis_b.port: "valkey", memcached.port: "memcached"}
        drive({"redis": redis_a, "valkey": redis_b, "memcached": memcached}, dbs=16)
        targets = dict(fleet_entries(redis_a, redis_b, memcached, 400))
        expected = {}
        for name in names:
            kind = server_of[int(targets[name].rsplit(":", 1)[1].split("/")[0])]
            expected[name] = 100.0 * TRAFFIC[kind][0] / sum(TRAFFIC[kind])
        source = PrometheusSource(f"prometheus://127.0.0.1:{prom}", history=False)

        async def ratios() -> dict[str, float | None]:
            snap = await source.read()
            return {i.name: i.metrics.get("hit_ratio") for i in snap.instances}

        # A poll that fails on a busy box starts its instance's window again, empty of reads (hit
        # ratio null): the same burst again then fills it. A window that holds whole bursts of one
        # ratio has exactly that ratio, so the expected values stand.
        end = time.monotonic() + 90
        history = []
        while (got := await ratios()) != pytest.approx(expected, abs=1e-9):
            wrong = sorted((n, got.get(n), v) for n, v in expected.items() if got.get(n) != pytest.approx(v))
            history.append((round(time.monotonic() - end + 90, 1), len(wrong), wrong[:12]))
            if len(history) % 20 == 0 and any(value is None for _, value, _ in wrong):
                drive({"redis": redis_a, "valkey": redis_b, "memcached": memcached}, dbs=16)
            # the deadline loop's pace (about a dashboard's): a tight loop would starve the polls
            await asyncio.sleep(0.4)
            if time.monotonic() > end:
                best = min(history, key=lambda h: h[1])
                raise AssertionError(f"best {best}; {[h[:2] for h in history[::10]]}")
        started = time.perf_counter()
        snap = await source.read()
        took = time.perf_counter() - started
        own: dict[str, float] = {}
        for daemon in daemons:
            own.update(own_ratios(daemon.port))
        assert len(own) == 400, sorted(set(expected) - set(own))[:10]
        assert {i.name: i.metrics["hit_ratio"] / 100 for i in snap.instances} == pytest.approx(own, abs=1e-12)
        for inst in snap.instances:
            shard = owner(inst.name, 2)
            assert inst.facts["daemon_shard"] == f"{shard}/2"
            assert inst.facts[LIVE_FACT] == f"cachetop --attach http://127.0.0.1:{daemons[shard].port}"
        print(
            f"400 instances: one read of the fleet took {took * 1000:.0f} ms, {source.client.queries} queries"
        )
        # And on screen: every one of the 400, in the overview's header count.
        from cachetop.tui.app import CachetopApp
        from tests.tui.helpers import text

        live = PrometheusSource(f"prometheus://127.0.0.1:{prom}", interval=2.0, history=False)
        app = CachetopApp(
            Config(path=None, settings=Settings(interval=2.0, window=60.0), instances=()), monitor=live
        )
        async with live, app.run_test(size=(160, 50)):
            await until(lambda: "400/400 up" in text(app), 30, "400/400 up in the dashboard")
    finally:
        for daemon in daemons:
            daemon.stop()
