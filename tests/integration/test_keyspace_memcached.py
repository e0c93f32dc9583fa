"""Keyspace analysis of a real memcached: `lru_crawler metadump all` gives the same report as for
Redis, exact (every item listed), without touching the counters the dashboard reports."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest

from cachetop.analysis.keyspace import analyse_instance
from cachetop.engine.config import InstanceConfig
from cachetop.engine.targets import parse_target
from cachetop.servers import LocalServer
from tests.keyspace_data import memcached_load


def mc_stats(port: int) -> dict[str, int]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"stats\r\n")
        buf = b""
        while not buf.endswith(b"END\r\n"):
            buf += sock.recv(65536)
    out = {}
    for line in buf.decode().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "STAT" and parts[2].isdigit():
            out[parts[1]] = int(parts[2])
    return out


@pytest.mark.slow
async def test_metadump_report_of_200k_items_is_exact(make_memcached: Callable[..., LocalServer]) -> None:
    server = make_memcached(memory_mb=256)
    promo_at = int(time.time()) + 300  # an absolute exptime (over 30 days is read as a Unix time)
    items = [(b"sess:%d" % i, b"s" * 20, 600 + i % 2900) for i in range(100_000)]
    items += [(b"user:%d:profile" % i, b"u" * 200, 0) for i in range(50_000)]
    items += [(b"tmp:%d" % i, b"t" * 10, 30 + i % 20) for i in range(30_000)]
    items += [(b"promo:%d" % i, b"p" * 5, promo_at) for i in range(20_000)]
    memcached_load(server.port, items)
    before = mc_stats(server.port)

    report = (await analyse_instance(InstanceConfig("mc", parse_target(server.url)))).to_json()

    after = mc_stats(server.port)
    assert report["error"] is None
    assert (report["source"], report["kind"], report["complete"]) == ("metadump", "memcached", True)
    assert report["keys_total"] == report["keys_sampled"] == report["keys_scanned"] == 200_000
    by = {p["prefix"]: p for p in report["prefixes"]}
    assert {k: v["keys_est"] for k, v in by.items()} == {
        "sess:*": 100_000,
        "user:*:profile": 50_000,
        "tmp:*": 30_000,
        "promo:*": 20_000,
    }
    assert all(p["exact"] and p["bytes_ci95"][0] == p["bytes_ci95"][1] for p in by.values())
    assert sum(p["bytes_est"] for p in by.values()) == before["bytes"]  # every item's footprint
    assert by["user:*:profile"]["ttl"]["none"] == 50_000
    assert by["tmp:*"]["ttl"]["lt_1m"] == 30_000
    assert by["sess:*"]["ttl"]["lt_1h"] == 100_000
    assert by["promo:*"]["ttl"]["lt_1h"] == 20_000
    assert by["user:*:profile"]["idle"]["lt_1m"] == 50_000
    # The largest cliff is promo:*; tmp:* (30,000 items due within a minute) makes smaller ones.
    cliff = report["cliffs"][0]
    assert (cliff["at"], cliff["keys_est"], cliff["prefixes"]) == (promo_at, 20_000, ["promo:*"])
    assert {tuple(c["prefixes"]) for c in report["cliffs"][1:]} <= {("tmp:*",)}
    assert report["big_keys"][0]["key"].startswith("user:")
    assert report["values"]["read"] == 0  # no read leaves memcached's LRU alone
    # Nothing the dashboard reports moved: no get, hit, miss or touch.
    for counter in ("cmd_get", "get_hits", "get_misses", "cmd_touch", "cmd_set", "get_expired"):
        assert after[counter] == before[counter], counter
