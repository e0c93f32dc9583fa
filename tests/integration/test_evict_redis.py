"""Evict against real Redis servers and a real 3-master cluster: exact counts, nothing else touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_py

from cachetop.actions.evict import EvictRequest, RedisEvictor, summary
from cachetop.actions.redis_nodes import ActionError
from cachetop.engine.config import InstanceConfig, parse_target
from cachetop.servers import LocalServer
from tests.cluster_fixture import RedisCluster, cli, load_keys, running_cluster

SESSIONS = [b"sess:%d" % i for i in range(100_000)]
USERS = [b"user:%d" % i for i in range(10_000)]


def instance(url: str, **kw: object) -> InstanceConfig:
    return InstanceConfig(name="cache-1", target=parse_target(url), **kw)  # type: ignore[arg-type]


def cachetop(
    *args: str, state: Path, stdin: int | None = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_STATE_HOME": str(state), "COLUMNS": "100"}
    return subprocess.run(
        [sys.executable, "-m", "cachetop", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=stdin,
        timeout=60,
    )


def audit_lines(state: Path) -> list[dict[str, object]]:
    path = state / "cachetop" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    with running_cluster(tmp_path / "cluster") as cluster:
        yield cluster


@pytest.fixture
def loaded(redis: LocalServer) -> LocalServer:
    load_keys(redis.port, SESSIONS)
    load_keys(redis.port, USERS)
    assert int(cli(redis.port, "dbsize")) == 110_000
    return redis


def test_pattern_dry_run_then_evict_exactly_the_matches(loaded: LocalServer, tmp_path: Path) -> None:
    dry = cachetop(
        "evict", loaded.url, "--pattern", "sess:*", "--dry-run", "--rate", "0", "--json", state=tmp_path
    )
    assert dry.returncode == 0, dry.stderr
    node = f"127.0.0.1:{loaded.port}"
    assert json.loads(dry.stdout) == {
        "matched": 100_000,
        "evicted": 0,
        "dry_run": True,
        "complete": True,
        "cancelled": False,
        "nodes": {node: {"state": "done", "evicted": 0}},
    }
    assert int(cli(loaded.port, "dbsize")) == 110_000

    done = cachetop(
        "evict", loaded.url, "--pattern", "sess:*", "--yes", "--rate", "0", "--json", state=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "matched": 100_000,
        "evicted": 100_000,
        "dry_run": False,
        "complete": True,
        "cancelled": False,
        "nodes": {node: {"state": "done", "evicted": 100_000}},
    }
    client = redis_py.Redis(port=loaded.port)
    assert client.dbsize() == 10_000
    assert client.exists(*USERS[:5000]) == 5000 and client.exists(*USERS[5000:]) == 5000

    entries = audit_lines(tmp_path)
    assert [(e["outcome"], e["dry_run"], e["matched"], e.get("evicted")) for e in entries] == [
        ("dry-run", True, 100_000, 0),
        ("intent", False, None, None),  # before the first UNLINK (no preview with --yes off a terminal)
        ("done", False, 100_000, 100_000),
    ]
    assert entries[1]["run"] == entries[2]["run"] != entries[0]["run"]
    assert entries[2]["what"] == {"pattern": "sess:*"}
    assert entries[2]["user"] and entries[2]["time"] and entries[2]["action"] == "evict"


def test_human_dry_run_line_names_count_and_examples(redis: LocalServer, tmp_path: Path) -> None:
    load_keys(redis.port, [b"sess:1", b"sess:17", b"other"])
    out = cachetop("evict", redis.url, "--pattern", "sess:*", "--dry-run", state=tmp_path)
    assert out.returncode == 0
    line = out.stdout.strip()
    assert line.startswith(f"would evict 2 keys from 127.0.0.1:{redis.port}, e.g. ")
    assert sorted(line.split("e.g. ")[1].split(", ")) == ["sess:1", "sess:17"]


def test_without_yes_and_without_terminal_refuses(loaded: LocalServer, tmp_path: Path) -> None:
    out = cachetop("evict", loaded.url, "--pattern", "sess:*", "--rate", "0", state=tmp_path)
    assert out.returncode == 3
    assert "refusing to evict 100,000 keys without --yes: stdin is not a terminal" in out.stderr
    assert int(cli(loaded.port, "dbsize")) == 110_000
    assert audit_lines(tmp_path)[-1]["outcome"] == "refused"


def test_read_only_refuses_from_flag_and_from_config(loaded: LocalServer, tmp_path: Path) -> None:
    out = cachetop("evict", loaded.url, "--pattern", "sess:*", "--yes", "--read-only", state=tmp_path)
    assert out.returncode == 3
    assert "refused: cachetop runs with --read-only" in out.stderr
    conf = tmp_path / "c.toml"
    conf.write_text(f'[[instance]]\nname = "prod"\nurl = "{loaded.url}"\nread_only = true\n')
    out = cachetop("evict", "-c", str(conf), "--pattern", "sess:*", "--yes", state=tmp_path)
    assert out.returncode == 3
    assert f"refused: instance prod is read_only = true in {conf}" in out.stderr
    assert int(cli(loaded.port, "dbsize")) == 110_000
    assert [e["outcome"] for e in audit_lines(tmp_path)] == ["refused", "refused"]


def test_cancel_reports_exactly_what_was_removed(loaded: LocalServer) -> None:
    cancel = threading.Event()

    def progress(result: object) -> None:
        if result.evicted >= 20_000:  # type: ignore[attr-defined]
            cancel.set()

    evictor = RedisEvictor(instance(loaded.url), rate=0, batch=1000, cancel=cancel, progress=progress)
    result = evictor.run(EvictRequest(pattern=b"sess:*"), dry_run=False)
    assert result.cancelled
    remaining = int(cli(loaded.port, "dbsize"))
    assert result.evicted == 110_000 - remaining
    assert 20_000 <= result.evicted < 100_000
    assert summary(result, "cache-1") == (
        f"cancelled: removed exactly {result.evicted:,} keys from cache-1 (of {result.matched:,} matched)"
    )


def test_rate_budget_paces_the_run(redis: LocalServer) -> None:
    load_keys(redis.port, [b"k:%d" % i for i in range(3000)])
    result = RedisEvictor(instance(redis.url), rate=10_000).run(EvictRequest(pattern=b"k:*"), dry_run=False)
    assert result.evicted == 3000
    # 3,000 keys at 10,000/s with a 1,000-key burst: at least 0.2 s.
    assert result.elapsed_s >= 0.19


def test_prefix_node_evicts_only_its_namespace(redis: LocalServer) -> None:
    keys = [b"user:%d:cart" % i for i in range(300)] + [b"user:%d:profile" % i for i in range(300)]
    load_keys(redis.port, [*keys, b"user:admin:cart", b"user:1:cart:old"])
    result = RedisEvictor(instance(redis.url), rate=0).run(EvictRequest(prefix=b"user:*:cart"), dry_run=False)
    assert (result.matched, result.evicted) == (300, 300)
    client = redis_py.Redis(port=redis.port)
    assert client.dbsize() == 302
    assert client.exists(b"user:admin:cart", b"user:1:cart:old", b"user:7:profile") == 3


def test_named_keys(redis: LocalServer) -> None:
    load_keys(redis.port, [b"a", b"b", b"c"])
    dry = RedisEvictor(instance(redis.url)).run(EvictRequest(keys=(b"a", b"b", b"zz")), dry_run=True)
    assert (dry.matched, dry.evicted, dry.examples) == (2, 0, [b"a", b"b"])
    info_before = redis_py.Redis(port=redis.port).info("stats")
    done = RedisEvictor(instance(redis.url)).run(EvictRequest(keys=(b"a", b"b", b"zz")), dry_run=False)
    assert (done.matched, done.evicted) == (2, 2)
    stats = redis_py.Redis(port=redis.port).info("stats")
    # MEMORY USAGE (the existence check) is no keyspace hit or miss: the hit ratio stays clean.
    assert stats["keyspace_hits"] == info_before["keyspace_hits"]
    assert stats["keyspace_misses"] == info_before["keyspace_misses"]
    assert redis_py.Redis(port=redis.port).exists(b"c") == 1


def test_cluster_pattern_evict_runs_on_every_master(redis_cluster: RedisCluster, tmp_path: Path) -> None:
    redis_cluster.load(SESSIONS)
    redis_cluster.load(USERS)
    assert redis_cluster.dbsize() == 110_000
    dry = cachetop(
        "evict",
        redis_cluster.url,
        "--pattern",
        "sess:*",
        "--dry-run",
        "--rate",
        "0",
        "--json",
        state=tmp_path,
    )
    dry_report = json.loads(dry.stdout)
    assert (dry_report["matched"], dry_report["evicted"], dry_report["complete"]) == (100_000, 0, True)
    assert redis_cluster.dbsize() == 110_000

    done = cachetop(
        "evict", redis_cluster.url, "--pattern", "sess:*", "--yes", "--rate", "0", "--json", state=tmp_path
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["matched"], report["evicted"], report["complete"]) == (100_000, 100_000, True)
    assert {n["state"] for n in report["nodes"].values()} == {"done"}
    assert sum(n["evicted"] for n in report["nodes"].values()) == 100_000
    assert redis_cluster.dbsize() == 10_000
    assert redis_cluster.count("user:*") == 10_000
    by_node = audit_lines(tmp_path)[-1]["evicted_by_node"]
    assert sorted(by_node) == sorted(m.address for m in redis_cluster.masters)  # type: ignore[arg-type]
    assert all(n > 25_000 for n in by_node.values())  # type: ignore[union-attr]


def test_cluster_named_keys_are_routed_to_their_master(redis_cluster: RedisCluster) -> None:
    keys = [b"k%d" % i for i in range(50)]
    redis_cluster.load([*keys, b"keep"])
    result = RedisEvictor(instance(redis_cluster.url)).run(EvictRequest(keys=tuple(keys)), dry_run=False)
    assert (result.matched, result.evicted) == (50, 50)
    assert redis_cluster.dbsize() == 1
    assert len(result.evicted_by_node) == 3


def test_unreachable_instance_is_one_clear_line(tmp_path: Path) -> None:
    from cachetop.servers import free_port

    port = free_port()
    with pytest.raises(ActionError, match=f"redis://127.0.0.1:{port}: "):
        RedisEvictor(instance(f"redis://127.0.0.1:{port}"), timeout=1).run(
            EvictRequest(pattern=b"*"), dry_run=True
        )
    out = cachetop(
        "evict", f"redis://:hunter2secret@127.0.0.1:{port}", "--pattern", "x", "--dry-run", state=tmp_path
    )
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and "hunter2secret" not in out.stderr
    assert out.stderr.startswith("cachetop: redis://:***@127.0.0.1:")
