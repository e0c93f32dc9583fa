"""End to end: the installed `cachetop` console script in a real terminal (tmux, 80x24)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_py

from cachetop.servers import LocalServer, free_port
from tests.conftest import wait_until

CACHETOP = Path(sys.executable).parent / "cachetop"
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


@pytest.fixture
def session() -> Iterator[str]:
    name = f"cachetop-e2e-{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def _screen(session: str) -> str:
    out = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True)
    return out.stdout


def _keys(session: str, *keys: str) -> None:
    subprocess.run(["tmux", "send-keys", "-t", session, *keys], check=True)


def _cachetop_clients(server: LocalServer) -> list[str]:
    client = redis_py.Redis(port=server.port)
    try:
        return [c["name"] for c in client.client_list() if c["name"].startswith("cachetop")]
    finally:
        client.close()


def test_dashboard_in_tmux_80x24(
    tmp_path: Path, session: str, redis: LocalServer, memcached: LocalServer
) -> None:
    status_file = tmp_path / "status"
    targets = f"{redis.url} {memcached.url}"
    command = f"env TERM=xterm-256color {CACHETOP} --interval 0.5 {targets}; echo $? > {status_file}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", "sh", "-c", command], check=True
    )
    # The overview, with both instances up and their names, at 80 columns.
    wait_until(
        lambda: _screen(session).count(" up ") >= 2 and redis.address in _screen(session),
        deadline_s=20,
        what="both instances up on screen",
    )
    screen = _screen(session)
    assert memcached.address in screen
    assert "instance" in screen and "hit" in screen and "ops/s" in screen
    assert len(_cachetop_clients(redis)) >= 1  # while running, cachetop is connected
    _keys(session, "?")
    wait_until(lambda: "pause / resume polling" in _screen(session), deadline_s=10, what="help on screen")
    _keys(session, "q")
    wait_until(
        lambda: status_file.exists() and status_file.read_text().strip(), deadline_s=15, what="exit status"
    )
    assert status_file.read_text().strip() == "0"
    wait_until(lambda: _cachetop_clients(redis) == [], deadline_s=5, what="no cachetop connection left")


def test_terminal_closing_ends_the_process(tmp_path: Path, session: str, redis: LocalServer) -> None:
    pid_file = tmp_path / "pid"
    command = f"echo $$ > {pid_file}; exec env TERM=xterm-256color {CACHETOP} --interval 0.5 {redis.url}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", "sh", "-c", command], check=True
    )
    wait_until(lambda: " up " in _screen(session), deadline_s=20, what="instance up")
    pid = int(pid_file.read_text())
    subprocess.run(["tmux", "kill-session", "-t", session], check=True)  # the terminal goes away: SIGHUP
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), deadline_s=10, what="cachetop exited")
    wait_until(lambda: _cachetop_clients(redis) == [], deadline_s=5, what="no cachetop connection left")


# --- a fleet of 10,000 (issue 12: "large fleets stay responsive") ---------------------------------

FLEET = 10_000
# Instances on the real servers: 2 connections each (poll and probe), well inside redis'
# maxclients (10,000) and memcached's 1,024; the rest point at a closed port and are DOWN.
ON_SERVERS = 200
# Generous: measured at 0.4-0.9 s on 2 busy cores (bench/fleet_tui.py); the old code took 38 s
# for 3,000 instances and ignored signals for over 90 s at 10,000.
QUIT_DEADLINE_S = 3.0
ROWS_DEADLINE_S = 20.0  # the old code drew nothing for 25 s


def _fleet_config(tmp_path: Path, redis: LocalServer, memcached: LocalServer) -> Path:
    closed = free_port()
    parts = ['[settings]\ninterval = "1s"\n']
    for i in range(FLEET):
        if i < ON_SERVERS:
            url = f"{redis.url}/{i % 16}" if i % 2 == 0 else memcached.url
        else:
            url = f"redis://127.0.0.1:{closed}/0"
        parts.append(f'[[instance]]\nname = "node-{i:05d}"\nurl = "{url}"\n')
    path = tmp_path / "fleet.toml"
    path.write_text("\n".join(parts))
    return path


def _start(session: str, command: str) -> None:
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", "sh", "-c", command], check=True
    )


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] == "Z"
    except OSError:
        return True


def test_ten_thousand_instances_show_rows_scroll_to_the_end_and_quit_with_q(
    tmp_path: Path, session: str, redis: LocalServer, memcached: LocalServer
) -> None:
    config = _fleet_config(tmp_path, redis, memcached)
    status_file = tmp_path / "status"
    _start(session, f"env TERM=xterm-256color {CACHETOP} -c {config}; echo $? > {status_file}")
    # Rows and the fleet's size, within the deadline, while most instances have not answered.
    wait_until(
        lambda: "Σ fleet (10,000)" in _screen(session), deadline_s=ROWS_DEADLINE_S, what="the fleet row"
    )
    # Worst first would move the 9,800 DOWN instances above node-00000 as they answer: `w` turns
    # it off, so rows stay in config order and End reaches node-09999.
    _keys(session, "w")
    wait_until(lambda: "node-00000" in _screen(session), deadline_s=10, what="the first row")
    # PageDown shows the next rows, End the last instance: rows are virtual, not missing.
    first_page = set(re.findall(r"node-\d{5}", _screen(session)))
    _keys(session, "PageDown")
    wait_until(
        lambda: set(re.findall(r"node-\d{5}", _screen(session))) - first_page,
        deadline_s=10,
        what="rows below the first page",
    )
    _keys(session, "End")
    wait_until(lambda: "node-09999" in _screen(session), deadline_s=10, what="the last instance's row")
    quit_at = time.monotonic()
    _keys(session, "q")
    wait_until(
        lambda: status_file.exists() and status_file.read_text().strip(),
        deadline_s=QUIT_DEADLINE_S,
        what=f"exit within {QUIT_DEADLINE_S:g}s of q",
    )
    assert status_file.read_text().strip() == "0"
    assert time.monotonic() - quit_at < QUIT_DEADLINE_S


@pytest.mark.parametrize(
    ("sig", "when"),
    [(signal.SIGTERM, "rows shown"), (signal.SIGHUP, "first frame")],
    ids=["sigterm-with-rows", "sighup-while-starting"],
)
def test_ten_thousand_instances_end_on_a_signal_within_the_deadline(
    tmp_path: Path, session: str, redis: LocalServer, memcached: LocalServer, sig: int, when: str
) -> None:
    config = _fleet_config(tmp_path, redis, memcached)
    pid_file = tmp_path / "pid"
    _start(session, f"echo $$ > {pid_file}; exec env TERM=xterm-256color {CACHETOP} -c {config}")
    shown = "Σ fleet (10,000)" if when == "rows shown" else "cachetop"
    wait_until(lambda: shown in _screen(session), deadline_s=ROWS_DEADLINE_S, what=when)
    pid = int(pid_file.read_text())
    os.kill(pid, sig)
    wait_until(
        lambda: _gone(pid), deadline_s=QUIT_DEADLINE_S, what=f"exit within {QUIT_DEADLINE_S:g}s of {sig!r}"
    )
