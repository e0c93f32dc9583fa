"""`cachetop keyspace` as a person runs it: the JSON of the issue (hostile key names escaped as in
`hotkeys --json`), plain tables in a pipe, the report kept in the state dir, mistakes as one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis as redispy

from cachetop.analysis.keyspace import load_report
from cachetop.servers import LocalServer

HOSTILE = b"evil:\x1b[31m[bold]\xff"


def keyspace(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg"), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    return subprocess.run(
        [sys.executable, "-m", "cachetop", "keyspace", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )


def fill(server: LocalServer) -> None:
    client = redispy.Redis(port=server.port)
    pipe = client.pipeline(transaction=False)
    for i in range(3000):
        pipe.set(f"sess:{i}", "x" * 40, ex=3600)
    for i in range(200):
        pipe.hset(f"cart:{i}", mapping={"a": 1, "b": 2})
    pipe.set(HOSTILE, "v")
    pipe.execute()
    client.close()


def test_json_has_the_issue_shape_with_escaped_keys(redis: LocalServer, tmp_path: Path) -> None:
    fill(redis)
    done = keyspace(tmp_path, "--json", "--sample", "500", "--rate", "0", "--seed", "3", redis.url)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar in a pipe
    (inst,) = json.loads(done.stdout)["instances"]
    for field in (
        "name",
        "kind",
        "source",
        "keys_total",
        "keys_sampled",
        "prefixes",
        "cliffs",
        "idle",
        "big_keys",
    ):
        assert field in inst
    assert (inst["kind"], inst["source"], inst["keys_total"], inst["keys_sampled"]) == (
        "redis",
        "scan",
        3201,
        500,
    )
    by = {p["prefix"]: p for p in inst["prefixes"]}
    assert set(by) == {"sess:*", "cart:*", "evil:\\x1b[31m[bold]\\xff"}  # escaped, never raw
    for p in by.values():
        for field in ("keys_est", "bytes_est", "bytes_ci95", "ttl", "idle", "compress"):
            assert field in p
    assert by["sess:*"]["keys_est"] == 3000 and by["sess:*"]["ttl"]["lt_1h"] == 3000
    assert set(by["sess:*"]["compress"]) >= {
        "zstd_ratio",
        "lz4_ratio",
        "gzip_ratio",
        "saved_bytes_est",
        "recommend",
    }
    assert [i["over_s"] for i in inst["idle"]] == [3600, 86400, 604800]
    assert all(set(b) == {"key", "bytes", "type"} for b in inst["big_keys"])
    saved = load_report(tmp_path / "xdg" / "cachetop", inst["name"])
    assert saved is not None and saved[0] == inst


def test_plain_tables_in_a_pipe_say_what_was_sampled(redis: LocalServer, tmp_path: Path) -> None:
    fill(redis)
    done = keyspace(tmp_path, "--sample", "400", "--rate", "0", "--values", "0", redis.url)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout
    assert "3,201 names counted, 400 keys sampled, in" in done.stdout
    assert "sess:*" in done.stdout and "evil:\\x1b[31m[bold]\\xff" in done.stdout


def test_mistakes_are_one_line(tmp_path: Path) -> None:
    done = keyspace(tmp_path, "--sample", "0", "redis://127.0.0.1:1")
    assert (done.returncode, done.stderr.strip()) == (2, "cachetop: --sample: must be at least 1")
    down = keyspace(tmp_path, "--json", "redis://127.0.0.1:1")
    assert down.returncode == 1
    (inst,) = json.loads(down.stdout)["instances"]
    assert "cannot connect" in inst["error"] and "Traceback" not in down.stderr
