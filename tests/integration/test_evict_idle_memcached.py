"""`evict --idle-over` on a memcached pool: every server's items listed by the LRU crawler (metadump),
the idle ones removed on the server that holds them, exactly."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pymemcache.client.base import Client

from cachetop.servers import LocalServer
from tests.integration.test_evict_idle import kept_in_use, wait_for
from tests.integration.test_evict_redis import audit_lines, cachetop

KEYS = [f"idle:{i}" for i in range(100)]
FRESH = KEYS[::2]  # written again after the delay: their last access moves to now
STALE = KEYS[1::2]
OTHERS = [f"other:{i}" for i in range(20)]


def server_time(client: Client) -> int:
    return int(client.stats()[b"time"])


def present(servers: list[Client], keys: list[str]) -> int:
    return sum(1 for key in keys for c in servers if c.get(key) is not None)


def test_idle_over_lists_every_server_and_removes_exactly_the_idle_items(
    make_memcached: Callable[..., LocalServer], tmp_path: Path
) -> None:
    servers = [make_memcached() for _ in range(2)]
    clients = [Client(("127.0.0.1", s.port)) for s in servers]
    # Half the keys on each server, whatever a pool would hash them to: each is found where it is.
    for i, key in enumerate(KEYS + OTHERS):
        clients[i // 2 % 2].set(key, b"v" * 50)
    written = [server_time(c) for c in clients]
    wait_for(
        lambda: all(server_time(c) >= t + 3 for c, t in zip(clients, written, strict=True)),
        10.0,
        "3 s on both servers' clocks",
    )
    writers = [Client(("127.0.0.1", s.port)) for s in servers]  # the application's own (one per thread)

    def rewrite_fresh() -> None:  # it keeps writing them (a read refreshes `la` at most once a minute)
        for i, key in enumerate(KEYS):
            if key in FRESH:
                writers[i // 2 % 2].set(key, b"v" * 50)

    rewrite_fresh()
    with kept_in_use(rewrite_fresh):
        urls = [s.url for s in servers]
        args = ("evict", *urls, "--idle-over", "3s", "--pattern", "idle:*", "--rate", "0")
        dry = cachetop(*args, "--dry-run", "--json", state=tmp_path)
        assert dry.returncode == 0, dry.stderr
        out = json.loads(dry.stdout)
        assert out["matched"] == 50 and out["evicted"] == 0
        assert {node["state"] for node in out["nodes"].values()} == {"done"}

        ro = cachetop(*args, "--yes", "--read-only", state=tmp_path)
        assert ro.returncode == 3 and "refused: cachetop runs with --read-only" in ro.stderr

        done = cachetop(*args, "--yes", "--json", state=tmp_path)
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        assert (out["matched"], out["evicted"], out["complete"]) == (50, 50, True)
        assert sorted(n["evicted"] for n in out["nodes"].values()) == [25, 25]
        assert present(clients, STALE) == 0
        assert present(clients, FRESH) == 50 and present(clients, OTHERS) == 20

    entries = audit_lines(tmp_path)
    assert [(e["outcome"], e.get("matched"), e.get("evicted")) for e in entries] == [
        ("dry-run", 50, 0),
        ("refused", None, None),
        ("intent", None, None),
        ("done", 50, 50),
    ]
    assert entries[-1]["what"] == {"pattern": "idle:*", "idle_over_s": 3, "mode": "delete"}
    for c in clients + writers:
        c.close()


def test_memcached_idle_refuses_a_prefix(memcached: LocalServer, tmp_path: Path) -> None:
    out = cachetop("evict", memcached.url, "--idle-over", "1h", "--prefix", "a:*", state=tmp_path)
    assert out.returncode == 2
    assert "--prefix is for Redis/Valkey; on memcached give a glob with --pattern" in out.stderr


def test_an_item_written_now_is_not_idle_for_an_hour(memcached: LocalServer, tmp_path: Path) -> None:
    client = Client(("127.0.0.1", memcached.port))
    client.set("a", b"v")
    out = cachetop("evict", memcached.url, "--idle-over", "1h", "--dry-run", "--json", state=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["matched"] == 0
    client.close()
