"""Hot keys from a real redis-server 7.0: MONITOR sampling, its safety limits, source detection."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import Counter
from collections.abc import Callable

import pytest
import redis as redis_py

from cachetop.engine.config import InstanceConfig, parse_target
from cachetop.hotkeys.collector import HotKeyCollector
from cachetop.hotkeys.config import HotKeySettings
from cachetop.hotkeys.conn import HotKeysError, parse_client_list
from cachetop.hotkeys.monitor_parser import WRITE, ParseResult
from cachetop.hotkeys.redis_monitor import MonitorSampler
from cachetop.servers import LocalServer
from cachetop.util.aio import cancel_and_wait
from tests.conftest import until, wait_until
from tests.integration.hotkeys_workload import precision_at, workload

CONTINUOUS = HotKeySettings(monitor_on=600, monitor_off=1, big_keys=False)


def inst_for(server: LocalServer, hotkeys: str = "auto") -> InstanceConfig:
    return InstanceConfig(name="r", target=parse_target(server.url), hotkeys=hotkeys)


def monitor_clients(port: int) -> list[dict[bytes, bytes]]:
    raw = redis_py.Redis(port=port).execute_command("CLIENT", "LIST")
    raw = raw if isinstance(raw, bytes) else raw.encode()
    return [c for c in parse_client_list(raw) if b"O" in c.get(b"flags", b"") or c.get(b"cmd") == b"monitor"]


def sigkill_leaves_no_monitor(proc: subprocess.Popen[bytes], port: int) -> None:
    """Once `proc` has a MONITOR client on the server, SIGKILL it (no cleanup code of its own
    runs): the server must drop the client within 5 s."""
    try:
        wait_until(lambda: monitor_clients(port), 30, "the MONITOR client")
        proc.kill()  # the kernel closes the socket
        proc.wait(timeout=5)
    finally:
        proc.kill()
    wait_until(lambda: not monitor_clients(port), 5, "MONITOR client to go")


def send(port: int, keys: list[bytes], client_name: str | None = None) -> None:
    r = redis_py.Redis(port=port)
    if client_name:
        r.client_setname(client_name)
    pipe = r.pipeline(transaction=False)
    for i, key in enumerate(keys):
        pipe.get(key) if i % 4 else pipe.set(key, b"v")
        if i % 500 == 499:
            pipe.execute()
    pipe.execute()


async def test_monitor_ranks_hot_key_first_with_precision(redis_or_valkey: LocalServer) -> None:
    # Valkey 9.1 has no HOTKEYS command: "auto" falls back to MONITOR there too.
    redis = redis_or_valkey
    collector = HotKeyCollector(inst_for(redis), CONTINUOUS, window_s=600)
    await collector.start()
    try:
        await until(
            lambda: collector.sampler is not None and collector.sampler.phase == "sampling", what="MONITOR"
        )
        keys = workload(30_000)
        await asyncio.to_thread(send, redis.port, keys)
        # cachetop's own connections (named cachetop*) are left out of the counts
        await asyncio.to_thread(send, redis.port, [b"ours"] * 200, "cachetop-probe")
        await until(lambda: collector.snapshot().total_events >= len(keys), what="all events")
        view = collector.snapshot()
    finally:
        await collector.stop()
    assert view.source == "monitor"
    assert view.total_events == len(keys)
    ranked = [k.key for k in view.keys]
    assert ranked[0] == b"hot:1"
    assert precision_at(ranked, Counter(keys)) >= 0.9
    hot = view.keys[0]
    assert hot.count == Counter(keys)[b"hot:1"]
    assert hot.reads + hot.writes == hot.count
    assert hot.share == pytest.approx(hot.count / len(keys))
    assert hot.hot and (hot.hits, hot.misses) == (None, None)
    assert b"ours" not in ranked
    assert view.prefixes[0].pattern == b"item:*"  # the namespace beats hot:1 (70% vs 30%)
    assert not monitor_clients(redis.port)


async def test_throttled_consumer_never_lets_omem_pass_the_limit(redis: LocalServer) -> None:
    limit = 2 * 1024 * 1024
    seen: list[int] = []
    sampler = MonitorSampler(
        inst_for(redis), lambda *_: None, on_s=20, off_s=60, omem_limit=limit, chunk=4096, consumer_delay=0.05
    )
    task = asyncio.create_task(sampler.run())
    bench = subprocess.Popen(
        ["redis-benchmark", "-p", str(redis.port), "-n", "2000000", "-P", "16", "-t", "set,get", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await until(lambda: sampler.phase == "sampling", what="MONITOR on")
        end = time.monotonic() + 15
        while time.monotonic() < end and sampler.stats.stops_for_omem == 0:
            seen.extend(int(c[b"omem"]) for c in await asyncio.to_thread(monitor_clients, redis.port))
        await until(lambda: not sampler.stats.connected, what="the sampler to stop")
    finally:
        bench.kill()
        bench.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert sampler.stats.stops_for_omem == 1
    assert max(seen) > 0  # the buffer did grow: the consumer was slow
    assert max(seen) < limit
    assert sampler.stats.max_omem < limit
    wait_until(lambda: not monitor_clients(redis.port), 5, "MONITOR client to go")


async def test_a_crash_in_the_consumer_closes_the_monitor_connection(redis: LocalServer) -> None:
    def crash(out: ParseResult, covered: float, now: float) -> None:
        if b"x" in out.counts:  # the test's GET, not whatever else the server runs meanwhile
            raise RuntimeError("boom")

    sampler = MonitorSampler(inst_for(redis), crash, on_s=30, off_s=1)
    task = asyncio.create_task(sampler.run())
    await until(lambda: sampler.phase == "sampling", what="MONITOR on")
    assert len(monitor_clients(redis.port)) == 1
    redis_py.Redis(port=redis.port).get("x")
    with pytest.raises(RuntimeError, match="boom"):
        await asyncio.wait_for(task, 5)
    wait_until(lambda: not monitor_clients(redis.port), 5, "MONITOR client to go")


async def test_a_stuck_server_makes_the_watchdog_close_monitor(
    make_redis: Callable[..., LocalServer],
) -> None:
    server = make_redis("--enable-debug-command", "yes")
    sampler = MonitorSampler(inst_for(server), lambda *_: None, on_s=30, off_s=60, timeout=0.3)
    task = asyncio.create_task(sampler.run())
    try:
        await until(lambda: sampler.phase == "sampling", what="MONITOR on")
        sleeper = asyncio.to_thread(redis_py.Redis(port=server.port).execute_command, "DEBUG", "SLEEP", "1.5")
        await sleeper
        await until(lambda: sampler.stats.stops_for_timeout == 1, 5, "the watchdog timeout")
        wait_until(lambda: not monitor_clients(server.port), 5, "MONITOR client to go")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_stampede_seen_in_the_monitor_sample(redis: LocalServer) -> None:
    collector = HotKeyCollector(inst_for(redis), CONTINUOUS, window_s=600)
    await collector.start()
    try:
        await until(
            lambda: collector.sampler is not None and collector.sampler.phase == "sampling", what="MONITOR"
        )
        clients = [redis_py.Redis(port=redis.port) for _ in range(4)]
        for c in clients:
            c.get("page:home")
        for c in clients:
            c.set("page:home", "rebuilt")
        await until(lambda: collector.snapshot().stampede_events == 1, what="a stampede event")
        view = collector.snapshot()
    finally:
        await collector.stop()
    assert [(s.key, s.writers, s.readers) for s in view.stampedes] == [(b"page:home", 3, 4)]


async def test_auto_detection_falls_back_to_monitor_on_redis_7(redis: LocalServer) -> None:
    forced = HotKeyCollector(inst_for(redis, "hotkeys"), CONTINUOUS)
    await forced.start()
    await until(lambda: forced.status == "error", what="an error")
    await forced.stop()
    assert forced.error == "this server has no HOTKEYS command (Redis 8.6+ or Valkey 9.2+ have it)"
    lfu = HotKeyCollector(inst_for(redis, "lfu"), CONTINUOUS)
    await lfu.start()
    await until(lambda: lfu.status == "error", what="an error")
    await lfu.stop()
    assert lfu.error == "OBJECT FREQ needs an LFU maxmemory-policy (allkeys-lfu or volatile-lfu)"
    auto = HotKeyCollector(inst_for(redis), CONTINUOUS)
    await auto.start()
    await until(lambda: auto.source_name != "none", what="a source")
    await auto.stop()
    assert auto.source_name == "monitor"
    off = HotKeyCollector(inst_for(redis, "off"), CONTINUOUS)
    await off.start()
    await until(lambda: off.status == "off", what="off")
    await off.stop()
    assert off.snapshot().source == "off"


async def test_lfu_source_under_an_lfu_policy(make_redis: Callable[..., LocalServer]) -> None:
    server = make_redis("--maxmemory-policy", "allkeys-lfu", "--lfu-log-factor", "0")
    r = redis_py.Redis(port=server.port)
    r.mset({f"k{i}": "v" for i in range(50)})
    for _ in range(100):
        r.get("k7")
    settings = HotKeySettings(big_keys=True, scan_budget=100, k=3)
    collector = HotKeyCollector(inst_for(server), settings)
    await collector.start()
    try:
        await until(
            lambda: collector.snapshot().keys and collector.snapshot().big_keys, what="LFU and big keys"
        )
        view = collector.snapshot()
    finally:
        await collector.stop()
    assert (view.source, view.unit) == ("lfu", "lfu_freq")
    assert view.keys[0].key == b"k7"
    assert collector.own_keyspace_hits == 50  # OBJECT FREQ counts as a keyspace hit: reported
    with pytest.raises(HotKeysError):
        raise HotKeysError("x")


async def test_a_line_cap_ends_the_phase_early_and_keeps_the_ranking(redis: LocalServer) -> None:
    # 60k commands against a 10k-line cap in a 600 s phase: the phase ends after the chunk that
    # passes 10k lines, the MONITOR client is gone at once, and the sample still ranks hot:1
    # first with its 30% share.
    settings = HotKeySettings(monitor_on=600, monitor_off=600, big_keys=False, monitor_max_lines=10_000)
    collector = HotKeyCollector(inst_for(redis), settings, window_s=1200)
    await collector.start()
    try:
        await until(
            lambda: collector.sampler is not None and collector.sampler.phase == "sampling", what="MONITOR"
        )
        keys = workload(60_000)
        await asyncio.to_thread(send, redis.port, keys)
        await until(lambda: collector.sampler.phase == "waiting", what="the phase to end")
        await until(lambda: not monitor_clients(redis.port), 5, what="the MONITOR client to go")
        view = collector.snapshot()
        stats = collector.sampler.stats
    finally:
        await collector.stop()
    assert stats.stops_for_lines == 1
    # One 256 KiB chunk holds at most ~6k of these lines: the cap overshoots by less than that.
    assert 10_000 <= stats.lines < 16_000
    assert view.total_events <= stats.lines
    assert view.keys[0].key == b"hot:1"
    assert view.keys[0].share == pytest.approx(0.3, abs=0.05)


async def test_the_empty_key_is_counted_and_shown_quoted(redis: LocalServer) -> None:
    # `GET ""` is legal and can be the hottest key of a buggy client; MONITOR prints it as "".
    collector = HotKeyCollector(inst_for(redis, "monitor"), CONTINUOUS, window_s=600)
    await collector.start()
    try:
        await until(
            lambda: collector.sampler is not None and collector.sampler.phase == "sampling", what="MONITOR"
        )
        r = redis_py.Redis(port=redis.port)
        for _ in range(7):
            await asyncio.to_thread(r.get, b"")
        for _ in range(2):
            await asyncio.to_thread(r.set, b"", b"v")
        await asyncio.to_thread(r.mget, [b"", b"a"])  # several keys: the line-by-line path
        for _ in range(3):
            await asyncio.to_thread(r.get, b"a")
        await until(lambda: collector.snapshot().total_events == 14, what="all 14 key accesses")
        view = collector.snapshot()
    finally:
        await collector.stop()
    assert [(k.key, k.display, k.count, k.reads, k.writes) for k in view.keys] == [
        (b"", '""', 10, 8, 2),
        (b"a", "a", 4, 4, 0),
    ]
    assert [(p.pattern, p.display, p.count) for p in view.prefixes] == [(b"", '""', 10), (b"a", "a", 4)]
    assert view.to_json()["keys"][0]["key"] == ""


@pytest.mark.parametrize("side", ["poll connection", "own connection"])
async def test_side_commands_read_raw_replies_on_either_connection(
    redis_or_valkey: LocalServer, side: str
) -> None:
    """COMMAND (the key table), CONFIG GET (the server's bound on a MONITOR's buffer) and CLIENT
    LIST come back raw from the poll connection (dashboard, daemon) and from a side connection
    of the sampler's own (`cachetop hotkeys`): both are read the same, and each command is
    counted once, where it was sent."""
    from cachetop.backends.redis import RedisBackend

    server = redis_or_valkey
    config = redis_py.Redis(port=server.port, driver_info=None)
    config.config_set("client-output-buffer-limit", "normal 33554432 0 0")
    config.close()
    inst = inst_for(server)
    backend = RedisBackend(inst, 2.0)
    sampler = MonitorSampler(
        inst,
        lambda *_: None,
        on_s=600,
        off_s=1,
        gate=backend.own_gate,
        side=backend.side_commands if side == "poll connection" else None,
    )
    task = asyncio.create_task(sampler.run())
    try:
        await until(lambda: sampler.phase == "sampling", what="MONITOR on")
        commands = sampler._parser.commands
        assert commands[b"lmove"] == (1, 2, 1, WRITE), commands.get(b"lmove")  # not in the fallback
        assert len(commands) > 100
        assert sampler.server_limit == "32.0M (client-output-buffer-limit normal)"
        assert sampler.open_connections == (1 if side == "poll connection" else 2)
    finally:
        await cancel_and_wait([task])
        await backend.close()
    sent_by_poll = {
        k: v for k, v in backend.own_commands.items() if k in ("command", "config|get", "client|list")
    }
    sent_by_sampler = {
        k: v for k, v in sampler.stats.own_by_command.items() if k in ("command", "config|get", "client|list")
    }
    at_least = {"command": 1, "config|get": 2, "client|list": 2}  # own clients + omem checks
    where, nowhere = (
        (sent_by_poll, sent_by_sampler) if side == "poll connection" else (sent_by_sampler, sent_by_poll)
    )
    assert nowhere == {}, nowhere
    assert where.keys() == at_least.keys() and all(where[k] >= n for k, n in at_least.items()), where
