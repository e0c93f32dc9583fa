"""Issue 19: two `cachetop daemon --shard I/2` processes split 400 targets on real servers."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from cachetop.engine.shards import owner
from cachetop.servers import LocalServer
from tests.shard_daemons import CACHETOP, ShardDaemon, fleet_entries, write_fleet


def ours_on_redis(port: int) -> int:
    """cachetop's connections to a Redis server, from CLIENT LIST (redis-cli is not one)."""
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "client", "list"], capture_output=True, text=True, check=True
    )
    return sum("name=cachetop" in line for line in out.stdout.splitlines())


def memcached_connections(port: int) -> int:
    """curr_connections less the listening socket and this one."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"stats\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            data += conn.recv(65536)
    stats = dict(line.split()[1:3] for line in data.decode().splitlines() if line.startswith("STAT "))
    return int(stats["curr_connections"]) - 2


def listed(config: Path, shard: str) -> set[str]:
    """`cachetop daemon --shard I/N --list`: the names that shard would poll."""
    out = subprocess.run(
        [str(CACHETOP), "daemon", "-c", str(config), "--shard", shard, "--list"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return {line.split("  ")[0] for line in out.stdout.splitlines()}


def test_two_shards_poll_disjoint_sets_covering_400_and_a_third_moves_at_most_40_percent(
    tmp_path: Path,
    make_redis: Callable[..., LocalServer],
    make_memcached: Callable[..., LocalServer],
) -> None:
    redis_a, redis_b = make_redis("--databases", "16"), make_redis("--databases", "16")
    memcached = make_memcached()
    config, names = write_fleet(tmp_path, redis_a, redis_b, memcached, count=400)
    assert len(set(names)) == 400
    expected = [{n for n in names if owner(n, 2) == i} for i in range(2)]
    daemons = [ShardDaemon(config, f"{i}/2", tmp_path).start() for i in range(2)]
    try:
        started = time.monotonic()
        seen = [d.wait_up(expected[i]) for i, d in enumerate(daemons)]
        elapsed = time.monotonic() - started
        # The footprint: at most 2 connections per instance per process, counted on the servers.
        entries = fleet_entries(redis_a, redis_b, memcached, 400)
        footprint = []
        for server in (redis_a, redis_b):
            on_it = sum(f":{server.port}" in url for _, url in entries)
            footprint.append((ours_on_redis(server.port), on_it))
        on_memcached = sum(f":{memcached.port}" in url for _, url in entries)
        footprint.append((memcached_connections(memcached.port), on_memcached))
        assert all(0 < connections <= 2 * on_it for connections, on_it in footprint), footprint
    finally:
        for daemon in daemons:
            daemon.stop()
    polled = [set(s) for s in seen]
    assert polled[0] & polled[1] == set()
    assert polled[0] | polled[1] == set(names)
    # Near-even (the hash is fixed, so these are exact for these names).
    assert sorted(len(p) for p in polled) == sorted(len(e) for e in expected)
    assert min(len(p) for p in polled) >= 170
    # Every series of a sharded daemon says which shard it came from.
    for i, series in enumerate(seen):
        assert {s["daemon_shard"] for s in series.values()} == {f"{i}/2"}
    # Both ways of addressing survive: inventory targets (JSON and YAML) and [[instance]] tables.
    assert seen[owner("eu-cache-201", 2)]["eu-cache-201"]["cache_instance"] == "eu-cache-201"
    # A third shard: what `--list` says each of 3 daemons would poll.
    three = [listed(config, f"{i}/3") for i in range(3)]
    assert three[0] | three[1] | three[2] == set(names)
    moved = {n for n in names if n not in (three[0] if n in polled[0] else three[1])}
    assert moved == three[2]  # only the new shard's share moves; 0 and 1 never trade targets
    assert len(moved) <= 0.40 * 400
    print(f"2 shards: {len(polled[0])}+{len(polled[1])} up in {elapsed:.1f}s; 3 shards move {len(moved)}/400")
    print(f"connections (ours, entries) on redis A, redis B, memcached: {footprint}")


def test_shard_label_on_every_series_and_bad_values(
    tmp_path: Path, make_redis: Callable[..., LocalServer], make_memcached: Callable[..., LocalServer]
) -> None:
    config, names = write_fleet(tmp_path, make_redis(), make_redis(), make_memcached(), count=6)
    daemon = ShardDaemon(config, "1/3", tmp_path).start()
    try:
        daemon.wait_up({n for n in names if owner(n, 3) == 1})
        text = daemon.metrics()
    finally:
        daemon.stop()
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert samples and all('daemon_shard="1/3"' in line for line in samples)
    assert any(line.startswith("cachetop_snapshots_total{") for line in samples)
    for bad, says in (
        ("2/2", "the shard number I must be 0 to 1 for N=2, not 2"),
        ("0/0", "the number of shards N must be 1 to 4096, not 0"),
        ("a/b", "is not a shard (allowed: I/N"),
        ("-1/2", "the shard number I must be 0 to 1 for N=2, not -1"),
    ):
        out = subprocess.run(
            [str(CACHETOP), "daemon", "-c", str(config), f"--shard={bad}", "--list"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 2, out
        assert f"--shard '{bad}'" in out.stderr and says in out.stderr, out.stderr
        assert "Traceback" not in out.stderr
