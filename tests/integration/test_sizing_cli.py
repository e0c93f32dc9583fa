"""`cachetop sizing` as a user runs it: the installed script in a subprocess, a real Redis under a
cache-aside workload. The profile's MONITOR never outlives it (normal end, Ctrl-C, SIGKILL, a
stopped process), its output buffer stays under the guard's limit, and the JSON is the issue's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from cachetop.servers import LocalServer
from tests.conftest import SIZING_MAXMEMORY as MAXMEMORY
from tests.conftest import wait_until
from tests.integration.test_hotkeys_redis import monitor_clients, sigkill_leaves_no_monitor

CACHETOP = str(Path(sys.executable).with_name("cachetop"))


def start(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([CACHETOP, "sizing", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_normal_end_prints_the_issues_json_and_leaves_no_monitor(sizing_redis: LocalServer) -> None:
    proc = start(sizing_redis.url, "--duration", "3s", "--sample-rate", "0.2", "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert b"MONITOR for 3 s" in err and b"55-63% fewer commands" in err  # the cost, said first
    [inst] = json.loads(out)["instances"]
    assert (inst["name"], inst["policy"], inst["memory_max_bytes"]) == (
        sizing_redis.address,
        "allkeys-lru",
        MAXMEMORY,
    )
    assert 0 < inst["hit_ratio_now"] < 100
    assert [c["policy"] for c in inst["curves"]] == ["redis-lru", "redis-lfu", "s3fifo"]
    points = inst["curves"][0]["points"]
    assert [p["memory_bytes"] for p in points] == [
        int(MAXMEMORY * f) for f in (0.25, 0.35, 0.5, 0.71, 1.0, 1.41, 2.0, 2.83, 4.0)
    ]
    assert all(0 <= p["hit_ratio"] <= 100 for p in points)
    cost = inst["cost"]
    assert cost["monitor_lines"] > 0 and cost["omem_limit_bytes"] == MAXMEMORY // 8
    assert cost["max_omem_bytes"] < cost["omem_limit_bytes"]  # the guard kept it under the limit
    assert not monitor_clients(sizing_redis.port)


def test_ctrl_c_ends_monitor_at_once_and_still_draws_the_curve(sizing_redis: LocalServer) -> None:
    proc = start(sizing_redis.url, "--duration", "60s", "--json")
    try:
        wait_until(lambda: monitor_clients(sizing_redis.port), 30, "the MONITOR client")
        proc.send_signal(signal.SIGINT)
        wait_until(lambda: not monitor_clients(sizing_redis.port), 5, "MONITOR client to go")
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    [inst] = json.loads(out)["instances"]
    assert inst["curves"] and "the profile ended early: cancelled" in inst["notes"]


def test_sigkill_leaves_no_monitor_client(sizing_redis: LocalServer) -> None:
    sigkill_leaves_no_monitor(start(sizing_redis.url, "--duration", "60s"), sizing_redis.port)


def test_a_stopped_process_has_its_monitor_ended_by_the_guardian(sizing_redis: LocalServer) -> None:
    proc = start(sizing_redis.url, "--duration", "60s")
    try:
        wait_until(lambda: monitor_clients(sizing_redis.port), 30, "the MONITOR client")
        os.kill(proc.pid, signal.SIGSTOP)  # cannot be caught: only the guardian process can act
        wait_until(lambda: not monitor_clients(sizing_redis.port), 10, "the guardian to end the MONITOR")
        os.kill(proc.pid, signal.SIGCONT)
    finally:
        proc.kill()
        proc.wait(timeout=5)


def test_trace_file_offline(tmp_path: Path) -> None:
    trace = tmp_path / "loop.txt"
    trace.write_text("".join(f"k{i % 100}\n" for i in range(2000)))  # 100 keys in a loop, 20 times
    proc = subprocess.run(
        [CACHETOP, "sizing", "--trace", str(trace), "--memory", "100", "--sample-rate", "1", "--json"],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    [inst] = json.loads(proc.stdout)["instances"]
    lru = inst["curves"][0]
    assert lru["policy"] == "lru"
    # LRU on a loop: all misses below the loop's length, all hits from it on.
    assert [(p["memory_bytes"], p["hit_ratio"]) for p in lru["points"]][3:5] == [(71, 0.0), (100, 100.0)]
    bad = tmp_path / "bad.txt"
    bad.write_text("a 10\nb x\n")
    proc = subprocess.run([CACHETOP, "sizing", "--trace", str(bad)], capture_output=True, timeout=60)
    assert proc.returncode == 2
    assert (
        proc.stderr.decode()
        .strip()
        .endswith(f"{bad}:2: SIZE must be a whole number of bytes and TIME a number of seconds")
    )


def test_a_cache_too_small_for_s3fifo_is_a_lower_bound_not_an_abort(tmp_path: Path) -> None:
    # S3-FIFO's small queue is 10% of the cache: below 10 objects libCacheSim aborted the whole
    # process (exit 134, nothing printed). A 4-key loop at --memory 8 puts every point under 10.
    trace = tmp_path / "small.txt"
    trace.write_text("".join(f"k{i % 4}\n" for i in range(400)))
    proc = subprocess.run(
        [CACHETOP, "sizing", "--trace", str(trace), "--memory", "8", "--sample-rate", "1", "--json"],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    [inst] = json.loads(proc.stdout)["instances"]
    curves = {c["policy"]: c["points"] for c in inst["curves"]}
    small = [p for p in curves["s3fifo"] if p["objects"] < 10]
    assert small and all(not p["filled"] and p["hit_ratio"] == 0.0 for p in small)
    # LRU is still simulated there: the 4-key loop fits from 4 objects on.
    assert next(p["hit_ratio"] for p in curves["lru"] if p["objects"] >= 4) == 100.0
