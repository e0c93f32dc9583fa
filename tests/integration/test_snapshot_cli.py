"""`cachetop snapshot` as a user runs it: the installed console script, its output and exit status."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import redis as redis_py

from cachetop.model import CORE_METRICS
from cachetop.servers import LocalServer, free_port

SECRET = "Sup3r-Secret-Pa55"


def cachetop(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("cachetop", path=str(Path(sys.executable).parent)) or "cachetop"
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, env=full_env)


def test_json_shape_is_the_documented_one(redis: LocalServer, memcached: LocalServer) -> None:
    redis_py.Redis(port=redis.port, driver_info=None).set("k", "v")
    result = cachetop("snapshot", "--json", "--window", "0.5", redis.url, memcached.url)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {"time", "window_s", "instances"}
    assert doc["window_s"] == 0.5
    by_name = {i["name"]: i for i in doc["instances"]}
    assert list(by_name) == [redis.address, memcached.address]
    for inst, kind in ((by_name[redis.address], "redis"), (by_name[memcached.address], "memcached")):
        assert inst["kind"] == kind
        assert inst["address"] == inst["name"]
        assert inst["status"] == "up"
        assert inst["error"] is None
        assert list(inst["metrics"])[: len(CORE_METRICS)] == list(CORE_METRICS)
        assert inst["metrics"]["hit_ratio"] is None  # nobody read anything
        assert inst["metrics"]["ops_per_sec"] == 0.0  # and cachetop's own polls are not counted
        assert inst["metrics"]["latency_p50_ms"] > 0


def test_count_prints_json_lines_and_a_down_instance_exits_1(redis: LocalServer) -> None:
    dead = f"redis://127.0.0.1:{free_port()}"
    result = cachetop("snapshot", "--json", "--window", "0.3", "--count", "3", redis.url, dead)
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3
    docs = [json.loads(line) for line in lines]
    assert [d["instances"][1]["status"] for d in docs] == ["down"] * 3
    assert docs[0]["instances"][1]["error"] == "connection refused"
    assert docs[0]["time"] < docs[1]["time"] < docs[2]["time"]


def test_table_output_and_usage_errors(redis: LocalServer) -> None:
    result = cachetop("snapshot", "--window", "0.3", redis.url)
    assert result.returncode == 0
    assert redis.address in result.stdout and " up " in result.stdout
    bad = cachetop("snapshot", "ftp://nowhere")
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "cachetop: target: unknown scheme 'ftp' in 'ftp://nowhere' (allowed: redis://[user:password@]host:port[/db],"
        " rediss://…, valkey://…, memcached://host:port)"
    )
    assert "Traceback" not in bad.stderr


def test_passwords_appear_in_no_output(make_redis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = make_redis("--requirepass", SECRET)
    ok = cachetop(
        "snapshot",
        "--json",
        "--window",
        "0.3",
        f"redis://:{SECRET}@127.0.0.1:{server.port}",
        env={"CACHETOP_LOG": "debug"},
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["instances"][0]["status"] == "up"

    wrong = cachetop(
        "snapshot",
        "--json",
        "--window",
        "0.3",
        f"redis://:wrong-{SECRET}@127.0.0.1:{server.port}",
        env={"CACHETOP_LOG": "debug"},
    )
    assert wrong.returncode == 1
    inst = json.loads(wrong.stdout)["instances"][0]
    assert (inst["status"], inst["error"]) == ("auth_failed", "auth failed (check username and password)")

    missing = cachetop("snapshot", "--json", "--window", "0.3", server.url)
    assert json.loads(missing.stdout)["instances"][0]["status"] == "auth_failed"

    config = tmp_path / "cachetop.toml"
    config.write_text(
        f'[[instance]]\nname = "prod"\nurl = "redis://127.0.0.1:{server.port}"\npassword = "${{CACHE_PW}}"\n'
        f'[[instance]]\nname = "typo"\nurl = "redis://:{SECRET}@127.0.0.1:{server.port}/x"\n'
    )
    bad_config = cachetop("snapshot", "-c", str(config), env={"CACHE_PW": SECRET})
    assert bad_config.returncode == 2
    config.write_text(
        f'[[instance]]\nname = "prod"\nurl = "redis://127.0.0.1:{server.port}"\npassword = "${{CACHE_PW}}"\n'
    )
    from_config = cachetop("snapshot", "-c", str(config), "--window", "0.3", env={"CACHE_PW": SECRET})
    checked = cachetop("config", "check", str(config), env={"CACHE_PW": SECRET})
    assert from_config.returncode == 0 and checked.returncode == 0
    for result in (ok, wrong, missing, bad_config, from_config, checked):
        everything = result.stdout + result.stderr
        assert SECRET not in everything, everything
