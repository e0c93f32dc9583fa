"""Evict through a 3-server memcached pool, hashed the way the application hashes (HashClient)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient

from cachetop.actions.memcached_evict import MemcachedEvictor
from cachetop.actions.redis_nodes import ActionError
from cachetop.engine.config import parse_target
from cachetop.servers import LocalServer


@pytest.fixture
def pool(make_memcached: Callable[..., LocalServer]) -> list[LocalServer]:
    return [make_memcached() for _ in range(3)]


def app_client(servers: list[LocalServer]) -> HashClient:
    """What the application uses: pymemcache's HashClient with its defaults."""
    return HashClient([("127.0.0.1", s.port) for s in servers])


def holders(servers: list[LocalServer], key: str) -> list[int]:
    found = []
    for s in servers:
        direct = Client(("127.0.0.1", s.port))
        if direct.get(key) is not None:
            found.append(s.port)
        direct.close()
    return found


def stats(server: LocalServer) -> dict[bytes, bytes]:
    direct = Client(("127.0.0.1", server.port))
    try:
        return direct.stats()
    finally:
        direct.close()


def test_delete_through_the_pool_removes_the_key_from_its_server(pool: list[LocalServer]) -> None:
    app = app_client(pool)
    keys = [f"user:{i}" for i in range(60)]
    for k in keys:
        app.set(k, b"v", noreply=False)
    owner = holders(pool, "user:7")
    assert len(owner) == 1  # one copy, on the server the hash picked
    spread = {holders(pool, k)[0] for k in keys}
    assert len(spread) == 3  # the keys really are spread over the pool

    targets = [parse_target(s.url) for s in pool]
    hits_before = [stats(s)[b"get_hits"] for s in pool]
    dry = MemcachedEvictor(targets).run([b"user:7", b"missing"], dry_run=True)
    assert (dry.matched, dry.evicted, dry.examples) == (1, 0, [b"user:7"])
    assert [stats(s)[b"get_hits"] for s in pool] == hits_before  # `me` moves no hit counter

    result = MemcachedEvictor(targets).run([b"user:7", b"missing"], dry_run=False)
    assert (result.matched, result.evicted) == (1, 1)
    assert result.evicted_by_node == {f"127.0.0.1:{owner[0]}": 1}
    assert holders(pool, "user:7") == []
    assert app.get("user:7") is None
    assert all(app.get(k) == b"v" for k in keys if k != "user:7")


def test_invalidate_marks_stale_so_the_next_reader_refills(pool: list[LocalServer]) -> None:
    app = app_client(pool)
    app.set("page:home", b"old", noreply=False)
    targets = [parse_target(s.url) for s in pool]
    result = MemcachedEvictor(targets, mode="invalidate").run([b"page:home"], dry_run=False)
    assert result.evicted == 1
    port = holders(pool, "page:home")[0]
    direct = Client(("127.0.0.1", port))
    # The item is still there, marked stale (X) and handed to this reader to refill (W).
    reply = direct.raw_command(b"mg page:home v", b"\r\n")
    direct.close()
    assert reply.split()[:4] == [b"VA", b"3", b"X", b"W"]


def test_bad_keys_are_refused_with_an_escaped_name(pool: list[LocalServer]) -> None:
    targets = [parse_target(s.url) for s in pool]
    with pytest.raises(ActionError) as err:
        MemcachedEvictor(targets).run([b"bad key\x1b[31m"], dry_run=False)
    assert str(err.value).startswith("bad key\\x1b[31m is not a memcached key")


def test_cli_pool_json_and_audit(pool: list[LocalServer], tmp_path: Path) -> None:
    app = app_client(pool)
    app.set("sess:1", b"x", noreply=False)
    app.set("sess:2", b"x", noreply=False)
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path)}
    urls = [s.url for s in pool]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cachetop",
            "evict",
            *urls,
            "--key",
            "sess:1",
            "--key",
            "sess:2",
            "--yes",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert (report["matched"], report["evicted"], report["dry_run"], report["complete"]) == (
        2,
        2,
        False,
        True,
    )
    assert sorted(report["nodes"]) == sorted(f"127.0.0.1:{s.port}" for s in pool)
    assert {n["state"] for n in report["nodes"].values()} == {"done"}
    assert sum(n["evicted"] for n in report["nodes"].values()) == 2
    assert app.get("sess:1") is None and app.get("sess:2") is None
    entry = json.loads((tmp_path / "cachetop" / "audit.jsonl").read_text().splitlines()[-1])
    assert entry["what"] == {"keys": ["sess:1", "sess:2"], "key_count": 2, "mode": "delete"}
    assert entry["instances"] == [f"127.0.0.1:{s.port}" for s in pool]
