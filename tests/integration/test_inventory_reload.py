"""Issue 19: a running daemon follows its [inventory] files, without a restart (real servers)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cachetop.servers import LocalServer
from tests.shard_daemons import ShardDaemon

INTERVAL_S = 1.0


def write_atomically(path: Path, text: str) -> None:
    """As a deployment tool writes (a temporary file renamed over the old one)."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def groups(*targets: tuple[str, str, dict[str, str]]) -> str:
    return json.dumps(
        [{"targets": [url], "labels": {"name": name, **labels}} for name, url, labels in targets], indent=2
    )


def wait_for(daemon: ShardDaemon, condition: Callable[[dict[str, dict[str, str]]], bool], what: str) -> float:
    """Seconds until the daemon's /metrics satisfies `condition` (polled every 20 ms)."""
    started = time.monotonic()
    last: Any = None
    while time.monotonic() - started < 15:
        assert daemon.proc is not None and daemon.proc.poll() is None, daemon.stderr.read_text()[-3000:]
        try:
            last = daemon.up()
        except OSError:
            last = None
        if last is not None and condition(last):
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}: {last}")


def test_added_target_is_polled_within_two_intervals_and_removed_one_vanishes(
    tmp_path: Path, make_redis: Callable[..., LocalServer], memcached: LocalServer
) -> None:
    redis_a, redis_b = make_redis(), make_redis()
    targets = tmp_path / "targets.json"
    first = [("sessions", f"127.0.0.1:{redis_a.port}", {"group": "web"})]
    write_atomically(targets, groups(*first))
    config = tmp_path / "cachetop.toml"
    config.write_text(
        f'[settings]\ninterval = "{INTERVAL_S:g}s"\nwindow = "4s"\nstate_dir = "{tmp_path / "state"}"\n'
        '[alerts]\ninstance_down = false\n[inventory]\nfiles = ["targets.json"]\n'
    )
    daemon = ShardDaemon(config, None, tmp_path).start()
    try:
        daemon.wait_up({"sessions"})
        # Added: a memcached and a second Redis, by URL and by kind label.
        added = [
            ("mc", f"localhost:{memcached.port}", {"kind": "memcached"}),
            ("carts", f"redis://localhost:{redis_b.port}/3", {"group": "shop", "region": "eu"}),
        ]
        write_atomically(targets, groups(*first, *added))
        took_add = wait_for(
            daemon,
            lambda up: {"sessions", "mc", "carts"} <= {n for n, s in up.items() if s["value"] == "1.0"},
            "add",
        )
        up = daemon.up()
        assert up["mc"]["kind"] == "memcached" and up["mc"]["address"] == f"localhost:{memcached.port}"
        assert up["carts"]["address"] == f"localhost:{redis_b.port}"
        assert daemon.proc is not None and daemon.proc.poll() is None  # no restart: the same process
        # A broken file keeps the last good inventory, and says where it is broken.
        broken = (  # a comma missing at the end of line 2
            f'[\n  {{"targets": ["127.0.0.1:{redis_a.port}"], "labels": {{"name": "sessions"}}}}\n'
            f'  {{"targets": ["localhost:{memcached.port}"], "labels": {{"name": "mc"}}}}\n]\n'
        )
        write_atomically(targets, broken)
        broken_at = time.monotonic()
        while "targets.json:" not in daemon.stderr.read_text() and time.monotonic() - broken_at < 10:
            time.sleep(0.02)
        log = daemon.stderr.read_text()
        assert f"{targets}:3: invalid JSON: Expecting ',' delimiter" in log, log[-2000:]
        assert "keeping its last good targets" in log
        time.sleep(2 * INTERVAL_S)  # nothing to wait for: checks that nothing changes meanwhile
        assert set(daemon.up()) == {"sessions", "mc", "carts"}
        # Removed (and the file fixed): the target stops and vanishes from /metrics.
        write_atomically(targets, groups(*first, added[1]))
        took_remove = wait_for(daemon, lambda up: set(up) == {"sessions", "carts"}, "remove")
        # Changed: same name, another server: the instance restarts on its new address.
        write_atomically(targets, groups(*first, ("carts", f"127.0.0.1:{redis_a.port}", {"group": "shop"})))
        wait_for(
            daemon, lambda up: up.get("carts", {}).get("address") == f"127.0.0.1:{redis_a.port}", "change"
        )
    finally:
        daemon.stop()
    assert took_add <= 2 * INTERVAL_S, took_add
    assert took_remove <= 2 * INTERVAL_S, (took_remove, daemon.stderr.read_text()[-1500:])
    print(f"added in {took_add:.2f}s, removed in {took_remove:.2f}s (interval {INTERVAL_S:g}s)")
    assert (
        "inventory: 2 added, 0 removed, 0 changed (3 target(s) now): +mc, +carts" in daemon.stderr.read_text()
    )
