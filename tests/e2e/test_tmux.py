"""End to end: the installed `cachetop` console script in a real terminal (tmux, 80x24)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_py

from cachetop.servers import LocalServer
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
