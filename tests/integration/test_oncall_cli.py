"""Command-line output as an on-call engineer pipes it: `cachetop snapshot > file`, `| less`, `| grep`.

Real subprocesses with stdout on a pipe or a file: plain text, one row per line however long the
names, no escape codes and no box-drawing rules. On a terminal (a pty) the rich table stays."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import redis as redis_py
from redis.crc import key_slot

from cachetop.servers import LocalServer, free_port
from tests.cluster_fixture import cli, running_cluster
from tests.conftest import wait_until
from tests.integration.test_hotkeys_redis import monitor_clients

CACHETOP = str(Path(sys.executable).with_name("cachetop"))
LONG_NAME = "production-eu-west-1-session-cache-primary-replica-group-a-node-17-of-a-very-large-fleet"
NOT_PLAIN = ("\x1b", "─", "━", "│")  # escape codes and the rich table's rules


def run(*args: str, stdout: object = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS", "TTY_COMPATIBLE")}
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [CACHETOP, *args], stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=30, env=env
    )


def assert_plain(text: str) -> None:
    for bad in NOT_PLAIN:
        assert bad not in text, repr(text)


def _config(tmp_path: Path, *instances: tuple[str, str]) -> Path:
    path = tmp_path / "cachetop.toml"
    body = f'[settings]\nstate_dir = "{tmp_path / "state"}"\n'
    for name, url in instances:
        body += f'[[instance]]\nname = "{name}"\nurl = "{url}"\ntags = ["web"]\n'
    path.write_text(body)
    return path


def test_snapshot_to_a_pipe_is_plain_full_width_text(tmp_path: Path) -> None:
    # Two instances nobody answers: every value is known ("–"), so every line is exact.
    config = _config(
        tmp_path,
        (LONG_NAME, f"redis://127.0.0.1:{free_port()}"),
        ("gone", f"memcached://127.0.0.1:{free_port()}"),
    )
    result = run("snapshot", "-c", str(config), "--window", "0.2", "--timeout", "0.5")
    assert result.returncode == 1, result.stderr
    assert_plain(result.stdout)
    pad = " " * (len(LONG_NAME) - len("instance"))
    assert result.stdout.splitlines() == [
        "cachetop snapshot · window 0.2s",
        f"instance{pad}  status  hit  ops/s  p50  p99  mem  err  evict/s  conn",
        f"{LONG_NAME}  down      –      –    –    –    –    –        –     –",
        f"gone{' ' * (len(LONG_NAME) - 4)}  down      –      –    –    –    –    –        –     –",
        f"{LONG_NAME}: down: connection refused",
        "gone: down: connection refused",
    ]


def test_snapshot_to_a_file_keeps_a_live_row_on_one_line(redis: LocalServer, tmp_path: Path) -> None:
    config = _config(tmp_path, (LONG_NAME, redis.url))
    out = tmp_path / "snapshot.txt"
    with out.open("w") as file:
        result = run("snapshot", "-c", str(config), "--window", "0.2", stdout=file)
    assert result.returncode == 0
    text = out.read_text()
    assert_plain(text)
    lines = text.splitlines()
    assert lines[0] == "cachetop snapshot · window 0.2s"
    assert lines[1].split() == [
        "instance",
        "status",
        "hit",
        "ops/s",
        "p50",
        "p99",
        "mem",
        "err",
        "evict/s",
        "conn",
    ]
    # One row, whole: the name, up, no reads yet, no traffic and no client (ours are not counted).
    assert re.fullmatch(
        rf"{LONG_NAME}  up        –      0  \d+µs  \d+µs  0\.0%\*  0\.00%        0     0", lines[2]
    ), lines[2]
    assert lines[3:] == ["* no maxmemory set: memory is shown against the host's total memory"]


def test_snapshot_on_a_terminal_is_still_the_rich_table(redis: LocalServer) -> None:
    primary, secondary = os.openpty()
    try:
        proc = subprocess.Popen(
            [CACHETOP, "snapshot", "--window", "0.2", redis.url],
            stdout=secondary,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "COLUMNS": "120", "TERM": "xterm-256color"},
        )
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=20) == 0
    finally:
        os.close(primary)
    shown = b"".join(chunks).decode()
    assert "─" in shown and "\x1b[" in shown  # the rule under the header, and colour
    assert redis.address in shown


def test_config_check_prints_one_line_per_fact(tmp_path: Path) -> None:
    config = _config(tmp_path, (LONG_NAME, "redis://127.0.0.1:6390"), ("b", "memcached://127.0.0.1:11299"))
    result = run("config", "check", str(config))
    assert result.returncode == 0, result.stderr
    assert_plain(result.stdout)
    assert result.stdout.splitlines() == [
        f"{config}: OK",
        f"settings: interval 1s, window 10s, timeout 2s, state_dir {tmp_path / 'state'}",
        "2 instance(s):",
        f"  {LONG_NAME} redis://127.0.0.1:6390  tags: web",
        f"  {'b':<20} memcached://127.0.0.1:11299  tags: web",
    ]


def test_alerts_list_is_plain_text(tmp_path: Path) -> None:
    config = _config(tmp_path, ("a", "redis://127.0.0.1:6390"))
    result = run("alerts", "list", "-c", str(config))
    assert result.returncode == 0, result.stderr
    assert_plain(result.stdout)
    assert result.stdout.splitlines()[0] == (
        "instance_down        status != up  for 10s  cooldown 3600s  critical  -> no channel  [builtin]"
    )


def test_hotkeys_table_in_a_pipe_keeps_long_keys_on_one_line(redis: LocalServer) -> None:
    long_key = "tenant:" + "x" * 60 + ":profile"  # keys are cut at 80; the row is wider than 80
    proc = subprocess.Popen(
        [CACHETOP, "hotkeys", "--duration", "30", redis.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: monitor_clients(redis.port), 30, "the MONITOR client")
        r = redis_py.Redis(port=redis.port)
        for key, n in ((long_key, 5), ("short", 3)):
            for _ in range(n):
                r.get(key)
        proc.send_signal(signal.SIGINT)  # stops and prints what was sampled
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert_plain(out)
    lines = out.splitlines()
    assert re.fullmatch(rf"{redis.address}  source: monitor  sampled \d+\.\ds, 8 events", lines[0]), out
    assert re.sub(r" +", " ", lines[1]) == "# key count ops/s share reads/writes", out
    assert re.fullmatch(rf"1  {long_key} +5 +[\d,]+  62\.5% +5/0", lines[2]), out
    assert re.fullmatch(rf"2  short {{{len(long_key) - 5}}} +3 +[\d,]+  37\.5% +3/0", lines[3]), out


def test_evict_report_in_a_pipe_is_whole_lines(redis: LocalServer, tmp_path: Path) -> None:
    r = redis_py.Redis(port=redis.port)
    r.mset({f"sess:{i}": "v" for i in range(3)} | {"keep": "v"})
    config = _config(tmp_path, (LONG_NAME, redis.url))
    result = run("evict", "-c", str(config), "--pattern", "sess:*", "--yes")
    assert result.returncode == 0, result.stderr
    assert_plain(result.stdout)
    assert result.stdout.splitlines() == [f"evicted 3 of 3 matched keys from {LONG_NAME[:59]}…"]
    assert r.dbsize() == 1


SQUARES = """\
from cachetop.plugins import WarmItem


class Squares:
    name = "squares"

    def __init__(self, options):
        self.n = int(options.get("n", "3"))

    def plan(self):
        return (WarmItem(b"sq:%d" % i) for i in range(1, self.n + 1))

    def fetch(self, item):
        if item.key == b"sq:2":
            raise RuntimeError("the catalogue service answered 503 Service Unavailable " + "retry later " * 9)
        return str(int(item.key[3:]) ** 2)


WARMERS = {"squares": Squares}
"""


def test_warm_takes_plugin_path_as_plugins_does(redis: LocalServer, tmp_path: Path) -> None:
    folder = tmp_path / "warmers"
    folder.mkdir()
    (folder / "squares.py").write_text(SQUARES)
    listed = run("plugins", "--plugin-path", str(folder))
    assert "squares" in listed.stdout, listed.stderr
    config = _config(tmp_path, ("cache-1", redis.url))
    result = run(
        "warm", "-c", str(config), "--plugin-path", str(folder), "--strategy", "squares", "-o", "n=3"
    )
    assert result.returncode == 1, result.stderr  # one key's loader failed
    r = redis_py.Redis(port=redis.port)
    assert (r.get("sq:1"), r.get("sq:2"), r.get("sq:3")) == (b"1", None, b"9")
    # The loader's long message is cut at a word, with an ellipsis, on the one summary line.
    [line] = result.stdout.splitlines()
    head = (
        "warmed 2 keys on cache-1: 3 planned, 0 already there, 0 left to another warmer, 3 fetched, "
        "0 with no value, 1 failed (first error: "
    )
    assert line.startswith(head), line
    assert line.removeprefix(head) == (
        "fetch sq:2: RuntimeError: the catalogue service answered 503 Service Unavailable retry later retry"
        " later retry later retry later retry later…)"
    )


def test_warm_file_error_is_whole(redis: LocalServer, tmp_path: Path) -> None:
    path = tmp_path / "warm.jsonl"
    path.write_text('{"key": "a", "value": "x", "ttl": 60}\n{key: "b", "value": "y"}\n')
    result = run("warm", redis.url, "--strategy", "file", "--file", str(path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"cachetop: --strategy file: warmer 'file' (built-in): {path}:2: not JSON (Expecting property name"
        ' enclosed in double quotes at column 2; each line is {"key": "...", "value": "..." | "value_b64":'
        ' "...", "ttl": seconds | null})'
    ]
    assert redis_py.Redis(port=redis.port).dbsize() == 0  # a bad line writes nothing


def test_cluster_evict_report_names_every_master(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "cluster") as cluster:
        seed, *others = cluster.masters
        ranges = cluster.slot_ranges()
        # Keys on the two masters that are not the seed: the report used to name the seed only.
        on_others = [
            k
            for k in (b"sess:%d" % i for i in range(200))
            if not ranges[seed.port][0] <= key_slot(k) <= ranges[seed.port][1]
        ][:40]
        cluster.load(on_others)
        held = {m.address: int(cli(m.port, "dbsize")) for m in cluster.masters}
        assert held[seed.address] == 0 and all(held[m.address] > 0 for m in others)
        dry = run("evict", cluster.url, "--pattern", "sess:*", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        first, nodes = dry.stdout.splitlines()
        assert first.startswith(f"would evict 40 keys from 3 masters of {seed.address}, e.g. sess:")
        assert sorted(nodes.removeprefix("  on ").split(", ")) == sorted(held)
        done = run("evict", cluster.url, "--pattern", "sess:*", "--yes")
        assert done.returncode == 0, done.stderr
        first, *per_node = done.stdout.splitlines()
        assert first == f"evicted 40 of 40 matched keys from 3 masters of {seed.address}"
        width = max(len(a) for a in held)
        assert sorted(per_node) == sorted(f"  {a:<{width}}  {n} evicted" for a, n in held.items())
        assert cluster.dbsize() == 0
