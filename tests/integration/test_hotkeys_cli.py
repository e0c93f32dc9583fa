"""`cachetop hotkeys` as a user runs it: the installed script in a subprocess, a real server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis as redis_py

from cachetop.servers import LocalServer
from tests.conftest import wait_until
from tests.integration.test_hotkeys_redis import monitor_clients, sigkill_leaves_no_monitor

CACHETOP = str(Path(sys.executable).with_name("cachetop"))


def start(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([CACHETOP, "hotkeys", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_normal_exit_prints_json_and_leaves_no_monitor(redis: LocalServer) -> None:
    proc = start(redis.url, "--duration", "30", "--json", "--top", "3")
    try:
        wait_until(lambda: monitor_clients(redis.port), 30, "the MONITOR client")
        r = redis_py.Redis(port=redis.port)
        hostile = [b"[bold red]x[/]", b"\x1b[2J\x1b]0;pwn\x07", b"bin\xff\xfe\x00"]
        for key, n in zip(hostile, (5, 4, 3), strict=True):
            for _ in range(n):
                r.get(key)
        proc.send_signal(signal.SIGINT)  # stops early and prints what was sampled
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    doc = json.loads(out)
    [inst] = doc["instances"]
    assert (inst["name"], inst["source"]) == (redis.address, "monitor")
    assert [(k["key"], k["count"]) for k in inst["keys"]] == [
        ("[bold red]x[/]", 5),
        ("\\x1b[2J\\x1b]0;pwn\\x07", 4),
        ("bin\\xff\\xfe\\x00", 3),
    ]
    assert inst["keys"][0]["share"] == pytest.approx(5 / 12, abs=1e-4)
    wait_until(lambda: not monitor_clients(redis.port), 5, "MONITOR client to go")


def test_duration_ends_the_run_and_the_monitor_connection(redis: LocalServer) -> None:
    proc = start(redis.url, "--duration", "1")
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert b"source: monitor" in out
    wait_until(lambda: not monitor_clients(redis.port), 5, "MONITOR client to go")


def test_sigkill_leaves_no_monitor_client(redis: LocalServer) -> None:
    sigkill_leaves_no_monitor(start(redis.url, "--duration", "60"), redis.port)


def test_unreachable_target_is_one_line_and_status_1() -> None:
    proc = start("redis://:s3cret@127.0.0.1:1", "--duration", "0.5", "--json")
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    [inst] = json.loads(out)["instances"]
    assert inst["status"] == "error"
    assert inst["error"] == "Error 111 connecting to 127.0.0.1:1. Connect call failed ('127.0.0.1', 1)."
    assert b"s3cret" not in out + err
