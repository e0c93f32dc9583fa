"""Warm against a real Redis: the file strategy, stampede safety, and the example plugins."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import redis as redis_py

from cachetop.actions.warm import LOCK_PREFIX, RedisWarmer
from cachetop.engine.config import InstanceConfig, parse_target
from cachetop.plugins import WarmItem, discover
from cachetop.servers import LocalServer

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
SHOP_DB = PLUGINS / "data" / "shop.db"


def instance(url: str) -> InstanceConfig:
    return InstanceConfig(name="cache-1", target=parse_target(url))


def cachetop(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "cachetop", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def test_file_of_50000_lines_every_key_present_with_its_ttl(redis: LocalServer, tmp_path: Path) -> None:
    path = tmp_path / "warm.jsonl"
    with path.open("w") as fh:
        for i in range(50_000):
            ttl = 3600 if i % 2 else 600
            fh.write(json.dumps({"key": f"page:{i}", "value": f"<html>{i}</html>", "ttl": ttl}) + "\n")
    out = cachetop(
        "warm", redis.url, "--strategy", "file", "--file", str(path), "--rate", "0", "--json", state=tmp_path
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert (result["planned"], result["written"], result["present"], result["fetched"]) == (
        50_000,
        50_000,
        0,
        0,
    )
    client = redis_py.Redis(port=redis.port)
    assert client.dbsize() == 50_000  # no lock left behind
    pipe = client.pipeline(transaction=False)
    for i in range(50_000):
        pipe.pttl(f"page:{i}")
    ttls = pipe.execute()
    for i, pttl in enumerate(ttls):
        want = 3600_000 if i % 2 else 600_000
        assert want - 60_000 < pttl <= want, (i, pttl)
    assert client.get("page:49999") == b"<html>49999</html>"

    again = cachetop(
        "warm", redis.url, "--strategy", "file", "--file", str(path), "--rate", "0", "--json", state=tmp_path
    )
    assert json.loads(again.stdout)["present"] == 50_000  # already warm: nothing rewritten
    entries = [json.loads(x) for x in (tmp_path / "cachetop" / "audit.jsonl").read_text().splitlines()]
    assert [(e["action"], e["outcome"], e["written"]) for e in entries] == [
        ("warm", "done", 50_000),
        ("warm", "done", 0),
    ]


class CountingLoader:
    """The test's loader: counts every fetch per key; a fetch takes a little time, like a query."""

    name: ClassVar[str] = "counting"
    description: ClassVar[str] = "test loader"

    def __init__(self, keys: list[bytes], counts: Counter[bytes], lock: threading.Lock) -> None:
        self.keys = keys
        self.counts = counts
        self.lock = lock

    def plan(self) -> Iterator[WarmItem]:
        return (WarmItem(k, 300) for k in self.keys)

    def fetch(self, item: WarmItem) -> bytes:
        with self.lock:
            self.counts[item.key] += 1
        time.sleep(0.0002)  # lets the other warmer's thread run: the two really interleave
        return b"value of " + item.key


def test_two_concurrent_warmers_fetch_each_key_once(redis: LocalServer) -> None:
    keys = [b"item:%d" % i for i in range(4000)]
    counts: Counter[bytes] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(2)
    results = []

    def warm(order: list[bytes]) -> None:
        warmer = RedisWarmer(instance(redis.url), CountingLoader(order, counts, lock), rate=0, batch=50)
        start.wait()
        results.append(warmer.run(dry_run=False))

    # Opposite orders, so each warmer reaches keys the other one is holding.
    threads = [threading.Thread(target=warm, args=(o,)) for o in (keys, keys[::-1])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 2
    assert set(counts) == set(keys) and set(counts.values()) == {1}
    assert sum(r.fetched for r in results) == 4000
    assert sum(r.written for r in results) == 4000
    assert all(r.fetched > 0 for r in results)  # both did part of the work
    assert sum(r.locked + r.present for r in results) == 4000  # each key skipped once by the other
    client = redis_py.Redis(port=redis.port)
    assert client.dbsize() == 4000
    assert client.get(b"item:7") == b"value of item:7"


def test_a_held_lock_means_no_fetch(redis: LocalServer) -> None:
    client = redis_py.Redis(port=redis.port)
    client.set(LOCK_PREFIX + b"item:1", b"someone-else", px=30_000)
    counts: Counter[bytes] = Counter()
    loader = CountingLoader([b"item:1", b"item:2"], counts, threading.Lock())
    result = RedisWarmer(instance(redis.url), loader, rate=0).run(dry_run=False)
    assert (result.locked, result.fetched, result.written) == (1, 1, 1)
    assert counts == Counter({b"item:2": 1})
    assert client.get(LOCK_PREFIX + b"item:1") == b"someone-else"  # never removes another's lock
    assert client.exists(LOCK_PREFIX + b"item:2") == 0


def test_dry_run_writes_nothing(redis: LocalServer) -> None:
    client = redis_py.Redis(port=redis.port)
    client.set(b"item:1", b"old")
    counts: Counter[bytes] = Counter()
    loader = CountingLoader([b"item:1", b"item:2", b"item:3"], counts, threading.Lock())
    result = RedisWarmer(instance(redis.url), loader, rate=0).run(dry_run=True)
    assert (result.planned, result.present, result.written, result.fetched) == (3, 1, 0, 0)
    assert not counts and client.dbsize() == 1


def test_read_only_refuses_warm(redis: LocalServer, tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text('{"key": "a", "value": "1", "ttl": 60}\n')
    out = cachetop(
        "warm", redis.url, "--strategy", "file", "--file", str(path), "--read-only", state=tmp_path
    )
    assert out.returncode == 3
    assert "refused: cachetop runs with --read-only, so warm on" in out.stderr
    assert redis_py.Redis(port=redis.port).dbsize() == 0


def shop(sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(SHOP_DB) as db:
        return db.execute(sql, args).fetchall()


def test_ecommerce_catalog_plugin_warms_its_catalog(redis: LocalServer, tmp_path: Path) -> None:
    conf = tmp_path / "cachetop.toml"
    conf.write_text(f'plugin_paths = ["{PLUGINS}"]\n\n[[instance]]\nname = "shop"\nurl = "{redis.url}"\n')
    out = cachetop(
        "warm", "-c", str(conf), "--strategy", "ecommerce-catalog", "--rate", "0", "--json", state=tmp_path
    )
    assert out.returncode == 0, out.stderr
    (products,) = shop("SELECT COUNT(*) FROM products")[0]
    (categories,) = shop("SELECT COUNT(*) FROM categories")[0]
    (searches,) = shop("SELECT COUNT(*) FROM popular_searches")[0]
    expected = products + categories + searches
    assert json.loads(out.stdout)["written"] == expected == 264
    client = redis_py.Redis(port=redis.port)
    assert client.dbsize() == expected
    pid, name, price = shop("SELECT id, name, price_cents FROM products ORDER BY popularity DESC LIMIT 1")[0]
    doc = json.loads(client.get(f"product:{pid}"))
    assert (doc["id"], doc["name"], doc["price_cents"]) == (pid, name, price)
    shoes = [r[0] for r in shop("SELECT id FROM products WHERE category_id = 1 ORDER BY popularity DESC")]
    assert json.loads(client.get("category:shoes")) == shoes
    assert 3500_000 < client.pttl("category:shoes") <= 3600_000
    assert 1700_000 < client.pttl("search:running shoes") <= 1800_000
    assert all(
        name.split()[1] == "shoe"
        for name in [
            json.loads(client.get(f"product:{i}"))["name"]
            for i in json.loads(client.get("search:running shoes"))
        ]
    )


def test_popular_content_and_recommendations_plugins(redis: LocalServer) -> None:
    registry = discover([PLUGINS], use_entry_points=False)
    assert not registry.errors
    client = redis_py.Redis(port=redis.port)
    top = registry.create_warmer("popular-content", {"top": "5"})
    result = RedisWarmer(instance(redis.url), top, rate=0).run(dry_run=False)
    assert result.written == 5
    best = shop("SELECT slug, title FROM articles ORDER BY views DESC LIMIT 5")
    assert json.loads(client.get(f"content:article:{best[0][0]}"))["title"] == best[0][1]
    assert sorted(k.decode() for k in client.keys("content:*")) == sorted(
        f"content:article:{s}" for s, _ in best
    )

    recs = registry.create_warmer("user-recommendations", {"count": "3"})
    result = RedisWarmer(instance(redis.url), recs, rate=0).run(dry_run=False)
    (active,) = shop("SELECT COUNT(*) FROM users WHERE active = 1")[0]
    assert result.written == active == 40
    bought = {r[0] for r in shop("SELECT product_id FROM purchases WHERE user_id = 1")}
    user1 = json.loads(client.get("recs:user:1"))
    assert len(user1) == 3 and not bought & set(user1)


def test_hotkeys_replay_refetches_through_a_loader(redis: LocalServer, tmp_path: Path) -> None:
    hot = tmp_path / "hot.json"
    slugs = [r[0] for r in shop("SELECT slug FROM articles ORDER BY id LIMIT 3")]
    keys = [{"key": f"content:article:{s}", "count": 10} for s in slugs] + [{"key": "x\\x1b", "count": 1}]
    hot.write_text(json.dumps({"instances": [{"name": "r", "keys": keys}]}))
    conf = tmp_path / "c.toml"
    conf.write_text(f'plugin_paths = ["{PLUGINS}"]\n[[instance]]\nname = "r"\nurl = "{redis.url}"\n')
    options = ["-o", f"from={hot}", "-o", "loader=popular-content", "-o", "ttl=2m"]
    out = cachetop(
        "warm", "-c", str(conf), "--strategy", "hotkeys-replay", *options, "--json", state=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["written"] == 3  # the escaped key cannot be recovered: skipped
    client = redis_py.Redis(port=redis.port)
    assert json.loads(client.get(f"content:article:{slugs[0]}"))["slug"] == slugs[0]
    assert 110_000 < client.pttl(f"content:article:{slugs[0]}") <= 120_000


def test_unknown_strategy_and_bad_file_are_clear(redis: LocalServer, tmp_path: Path) -> None:
    out = cachetop("warm", redis.url, "--strategy", "nope", state=tmp_path)
    assert out.returncode == 2
    assert (
        out.stderr.strip()
        == "cachetop: --strategy nope: no warmer named 'nope' (installed: file, hotkeys-replay)"
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"key": "a", "value": "1"}\n{"key": "b", "value": 2}\n')
    out = cachetop("warm", redis.url, "--strategy", "file", "--file", str(bad), state=tmp_path)
    assert out.returncode == 2
    assert f'{bad}:2: needs a string "value" or "value_b64"' in out.stderr
    assert redis_py.Redis(port=redis.port).dbsize() == 0
