"""Windowed numbers from real servers, and proof that watching does not move the counters."""

from __future__ import annotations

import socket

import pymemcache
import redis as redis_py

from cachetop.engine.monitor import Monitor
from cachetop.model import Status
from cachetop.servers import LocalServer
from tests.monitoring import fast_config


def redis_client(server: LocalServer) -> redis_py.Redis:
    # driver_info=None: no CLIENT SETINFO, which Redis 7.0 answers with an error reply.
    return redis_py.Redis(port=server.port, driver_info=None)


def _ask(server: LocalServer, request: bytes, end: bytes) -> bytes:
    """One raw request on a fresh socket: the test's own reads must not touch what they measure."""
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(request)
        data = b""
        while not data.endswith(end):
            data += s.recv(65536)
    return data


def redis_counters(server: LocalServer) -> dict[str, int]:
    data = _ask(server, b"INFO stats\r\n", b"\r\n\r\n")
    info = dict(line.split(b":", 1) for line in data.split(b"\r\n") if b":" in line)
    return {k: int(info[k.encode()]) for k in ("keyspace_hits", "keyspace_misses", "total_error_replies")}


def memcached_counters(server: LocalServer) -> dict[str, int]:
    data = _ask(server, b"stats\r\n", b"END\r\n")
    stats = dict(line.split(b" ")[1:3] for line in data.split(b"\r\n") if line.startswith(b"STAT "))
    names = ("get_hits", "get_misses", "cmd_get", "cmd_set", "cmd_touch")
    return {k: int(stats[k.encode()]) for k in names}


async def test_redis_900_hits_100_misses_is_90(redis_or_valkey: LocalServer) -> None:
    redis = redis_or_valkey
    client = redis_client(redis)
    client.mset({f"k{i}": "v" for i in range(900)})
    async with Monitor(fast_config(redis.url, window=60)) as mon:
        await mon.wait_polls(1)
        for i in range(900):
            client.get(f"k{i}")
        for i in range(100):
            client.get(f"missing{i}")
        await mon.wait_polls(mon.pollers[0].polls + 1)
        inst = mon.snapshot().instances[0]
    assert inst.status == Status.UP
    assert inst.kind == inst.facts["server"] == redis.flavour  # type: ignore[attr-defined]
    assert inst.facts["version"].startswith("9." if redis.flavour == "valkey" else "7.")  # type: ignore[attr-defined]
    assert inst.metrics["hit_ratio"] == 90.0
    assert inst.metrics["error_rate"] == 0.0


async def test_redis_without_reads_has_null_hit_ratio(redis: LocalServer) -> None:
    client = redis_client(redis)
    async with Monitor(fast_config(redis.url)) as mon:
        await mon.wait_polls(1)
        client.mset({f"k{i}": "v" for i in range(50)})
        await mon.wait_polls(mon.pollers[0].polls + 1)
        metrics = mon.snapshot().instances[0].metrics
    assert metrics["hit_ratio"] is None
    assert metrics["ops_per_sec"] is not None and metrics["ops_per_sec"] > 0


async def test_memcached_900_hits_100_misses_is_90(memcached: LocalServer) -> None:
    client = pymemcache.Client(("127.0.0.1", memcached.port))
    for i in range(900):
        client.set(f"k{i}", b"v")
    async with Monitor(fast_config(memcached.url, window=60)) as mon:
        await mon.wait_polls(1)
        for i in range(900):
            client.get(f"k{i}")
        for i in range(100):
            client.get(f"missing{i}")
        await mon.wait_polls(mon.pollers[0].polls + 1)
        inst = mon.snapshot().instances[0]
    assert inst.status == Status.UP
    assert inst.kind == "memcached"
    assert inst.metrics["hit_ratio"] == 90.0


async def test_memcached_without_reads_has_null_hit_ratio(memcached: LocalServer) -> None:
    client = pymemcache.Client(("127.0.0.1", memcached.port))
    async with Monitor(fast_config(memcached.url)) as mon:
        await mon.wait_polls(1)
        for i in range(20):
            client.set(f"k{i}", b"v")
        await mon.wait_polls(mon.pollers[0].polls + 1)
        metrics = mon.snapshot().instances[0].metrics
    assert metrics["hit_ratio"] is None
    assert metrics["ops_per_sec"] is not None and metrics["ops_per_sec"] > 0


async def test_polls_and_probes_leave_the_counters_alone(redis: LocalServer, memcached: LocalServer) -> None:
    before_redis, before_mc = redis_counters(redis), memcached_counters(memcached)
    config = fast_config(redis.url, memcached.url, interval=0.1, window=1.0)
    async with Monitor(config) as mon:
        await mon.wait_polls(12)
        snap = mon.snapshot()
        probes = [p.latency.count(p.clock()) for p in mon.pollers]
    after_redis, after_mc = redis_counters(redis), memcached_counters(memcached)
    assert all(n >= 10 for n in probes), probes  # the probes really ran
    assert after_redis == before_redis
    assert after_mc == before_mc
    # Our own INFO, PING, LATENCY and handshake commands are not reported as traffic.
    for inst in snap.instances:
        assert inst.metrics["ops_per_sec"] == 0.0, inst
        assert inst.metrics["hit_ratio"] is None
        assert inst.metrics["connections"] == 0, inst


async def test_connections_count_the_applications_not_cachetop(
    redis: LocalServer, memcached: LocalServer
) -> None:
    # 3 application connections each; cachetop's poll and probe connections are left out, and
    # so is memcached's listening socket (its curr_connections already leaves out one).
    apps = [socket.create_connection(("127.0.0.1", s.port)) for s in (redis, memcached) for _ in range(3)]
    try:
        async with Monitor(fast_config(redis.url, memcached.url, interval=0.1)) as mon:
            await mon.wait_polls(3)
            snap = mon.snapshot()
    finally:
        for sock in apps:
            sock.close()
    assert [i.metrics["connections"] for i in snap.instances] == [3, 3]


async def test_memory_and_evictions_under_maxmemory(make_redis) -> None:  # type: ignore[no-untyped-def]
    server = make_redis("--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru")
    client = redis_client(server)
    async with Monitor(fast_config(server.url, window=60)) as mon:
        await mon.wait_polls(1)
        pipe = client.pipeline(transaction=False)
        for i in range(3000):
            pipe.set(f"big:{i}", "x" * 1000)
        pipe.execute()
        await mon.wait_polls(mon.pollers[0].polls + 1)
        inst = mon.snapshot().instances[0]
    evicted = int(client.info("stats")["evicted_keys"])
    assert evicted > 0
    assert inst.memory_max_from == "maxmemory"
    assert inst.metrics["memory_max_bytes"] == 2 * 1024 * 1024
    assert inst.metrics["evictions_per_sec"] is not None
    window = mon.pollers[0].window
    in_window = round(inst.metrics["evictions_per_sec"] * window.span)
    assert in_window == window.delta("evictions")
    # Every command after the last poll (even this test's INFO) may evict a few more keys.
    assert evicted - 20 <= in_window <= evicted
    assert inst.facts["maxmemory_policy"] == "allkeys-lru"


async def test_local_process_figures(redis: LocalServer, memcached: LocalServer) -> None:
    import psutil

    async with Monitor(fast_config(redis.url, memcached.url)) as mon:
        await mon.wait_polls(3)
        snap = mon.snapshot()
    by_kind = {i.kind: i for i in snap.instances}
    # Memcached does not report its RSS: psutil reads it, since the server runs on this host.
    mc_rss = psutil.Process(memcached.pid).memory_info().rss
    assert abs(by_kind["memcached"].metrics["rss_bytes"] - mc_rss) <= 1 << 20
    assert by_kind["memcached"].facts["pid"] == str(memcached.pid)
    assert by_kind["redis"].facts["pid"] == str(redis.pid)
    for inst in snap.instances:
        assert inst.metrics["cpu_pct"] is not None and 0 <= inst.metrics["cpu_pct"] <= 200
