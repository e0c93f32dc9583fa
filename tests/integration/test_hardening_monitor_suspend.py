"""Ctrl-Z / SIGTSTP on the long-running commands (issue 12): the daemon and the dashboard end their
MONITOR before they stop, and sample again after SIGCONT. The guardian's stall bound is set far
beyond the test (10 s), so whatever ends the MONITOR within a second is the signal handler."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_py

from cachetop.servers import LocalServer
from tests.conftest import wait_until
from tests.integration.test_hardening_monitor import alive, children, commandstat, stopped
from tests.integration.test_hotkeys_redis import monitor_clients
from tests.monitoring import one_instance_toml

CACHETOP = str(Path(sys.executable).with_name("cachetop"))
# One long MONITOR phase, so a MONITOR that goes away was ended, not finished; a guardian that
# would wait 10 s; after SIGCONT the next phase comes soon (rest in proportion to the on-time).
HOTKEYS = '\n[hotkeys]\nmonitor_on = "30s"\nmonitor_off = "1s"\nmonitor_stall = "10s"\nbig_keys = false\n'


def write_config(tmp_path: Path, redis: LocalServer) -> Path:
    path = tmp_path / "cachetop.toml"
    path.write_text(one_instance_toml(tmp_path, redis.url) + HOTKEYS)
    return path


def suspend_and_resume(pid: int, redis: LocalServer) -> None:
    """SIGTSTP: MONITOR gone while stopped, and not by the guardian; SIGCONT: MONITOR again."""
    r = redis_py.Redis(port=redis.port)
    [mon] = wait_until(lambda: monitor_clients(redis.port), 20, "the MONITOR client")
    os.kill(pid, signal.SIGTSTP)
    wait_until(lambda: stopped(pid), 5, "the process to stop")
    wait_until(lambda: not monitor_clients(redis.port), 1, "MONITOR to end before the stop")
    assert stopped(pid)
    assert commandstat(r, "client|kill") == 0
    os.kill(pid, signal.SIGCONT)
    [again] = wait_until(lambda: monitor_clients(redis.port), 8, "sampling to resume")
    assert again[b"id"] != mon[b"id"]


def test_daemon_ends_monitor_on_sigtstp(tmp_path: Path, redis: LocalServer) -> None:
    config = write_config(tmp_path, redis)
    proc = subprocess.Popen(
        [CACHETOP, "daemon", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        process_group=0,  # not orphaned: Linux discards SIGTSTP for orphaned process groups
    )
    try:
        suspend_and_resume(proc.pid, redis)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    wait_until(lambda: not monitor_clients(redis.port), 5, "no MONITOR left")


@pytest.fixture
def session() -> Iterator[str]:
    name = f"cachetop-suspend-{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_dashboard_ends_monitor_on_sigtstp(tmp_path: Path, session: str, redis: LocalServer) -> None:
    # The real dashboard in a real terminal: Textual's driver has a SIGTSTP handler of its own
    # (it restores the terminal, then SIGSTOPs); ours ends MONITOR first and then calls it.
    # Not the pane's own process: tmux sends SIGCONT to a pane process that stops. Under a shell,
    # the way a user runs it, it stays stopped.
    config = write_config(tmp_path, redis)
    pid_file = tmp_path / "pid"
    command = f"echo $$ > {pid_file}; env TERM=xterm-256color {CACHETOP} -c {config}; true"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30", "sh", "-c", command], check=True
    )
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), 10, "the shell's pid")
    [pid] = wait_until(lambda: children(int(pid_file.read_text())), 10, "cachetop's pid")
    try:
        suspend_and_resume(pid, redis)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)

    def quit_sent() -> bool:
        # Textual restarts its input thread after SIGCONT; a key sent before that is lost.
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        return wait_until_gone(pid, 1.0)

    wait_until(quit_sent, 15, "the dashboard to quit on q")
    wait_until(lambda: not monitor_clients(redis.port), 5, "no MONITOR left")


def wait_until_gone(pid: int, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def log_watchers(server: LocalServer) -> int:
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as sock:
        sock.sendall(b"stats\r\n")
        reply = b""
        while not reply.endswith(b"END\r\n"):
            reply += sock.recv(65536)
    return int(reply.split(b"STAT log_watchers ")[1].split(b"\r\n")[0])


def test_hotkeys_on_memcached_ends_watch_on_sigtstp(memcached: LocalServer) -> None:
    # memcached bounds what a stalled watcher costs (256 KiB, then it skips lines), but it still
    # formats every line for it: a suspended cachetop ends its watch first.
    proc = subprocess.Popen(
        [CACHETOP, "hotkeys", memcached.url, "--duration", "20", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        process_group=0,
    )
    try:
        wait_until(lambda: log_watchers(memcached) == 1, 15, "the watch connection")
        os.kill(proc.pid, signal.SIGTSTP)
        wait_until(lambda: stopped(proc.pid), 5, "the process to stop")
        wait_until(lambda: log_watchers(memcached) == 0, 2, "watch to end before the stop")
        assert stopped(proc.pid)
        os.kill(proc.pid, signal.SIGCONT)
        wait_until(lambda: log_watchers(memcached) == 1, 8, "watch to start again")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    [inst] = json.loads(out)["instances"]
    assert (inst["source"], inst["error"]) == ("watch", None)
