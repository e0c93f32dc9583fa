"""The dashboard and the demo in a real terminal (tmux), as an on-call engineer starts them:
`cachetop -c FILE 2>err.log` draws on the terminal and logs to the file; the demo lets `e` evict."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cachetop.engine.config import Config, InstanceConfig, Settings, parse_target
from cachetop.engine.monitor import Monitor
from cachetop.exporters.outputs import attach_outputs
from cachetop.servers import LocalServer, free_port
from tests.conftest import wait_until

CACHETOP = Path(sys.executable).parent / "cachetop"
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


@pytest.fixture
def session() -> Iterator[str]:
    name = f"cachetop-oncall-{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def _start(session: str, command: str, size: tuple[int, int]) -> None:
    width, height = size
    subprocess.run(
        [
            "tmux",
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            str(width),
            "-y",
            str(height),
            "sh",
            "-c",
            command,
        ],
        check=True,
    )


def _screen(session: str) -> str:
    out = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True)
    return out.stdout


def _keys(session: str, *keys: str, literal: bool = False) -> None:
    subprocess.run(["tmux", "send-keys", "-t", session, *(["-l"] if literal else []), *keys], check=True)


def test_dashboard_with_stderr_in_a_file_draws_on_the_terminal(
    tmp_path: Path, session: str, redis: LocalServer
) -> None:
    config = tmp_path / "cachetop.toml"
    config.write_text(
        f'[settings]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[[instance]]\nname = "cache-up"\nurl = "{redis.url}"\n'
        f'[[instance]]\nname = "cache-gone"\nurl = "redis://127.0.0.1:{free_port()}"\n'
    )
    log, status = tmp_path / "err.log", tmp_path / "status"
    _start(
        session,
        f"env TERM=xterm-256color CACHETOP_LOG=info {CACHETOP} -c {config} --interval 0.5 2>{log};"
        f" echo $? > {status}",
        (80, 24),
    )
    wait_until(
        lambda: "cache-up" in _screen(session) and "DOWN" in _screen(session),
        deadline_s=20,
        what="the overview on the terminal",
    )
    screen = _screen(session)
    assert "instance" in screen and "status" in screen and " up " in screen
    _keys(session, "q")
    wait_until(lambda: status.exists() and status.read_text().strip(), deadline_s=15, what="exit status")
    assert status.read_text().strip() == "0"
    logged = log.read_bytes()
    assert b"\x1b" not in logged, logged[:200]  # no screen in the log
    lines = logged.decode().splitlines()
    assert "INFO cachetop.poller: cache-gone: down (connection refused)" in lines, lines
    assert all(re.match(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) cachetop[\w.]*: ", line) for line in lines), (
        lines
    )


def test_evict_works_in_the_demo(tmp_path: Path, session: str) -> None:
    status = tmp_path / "status"
    _start(
        session,
        f"env TERM=xterm-256color {CACHETOP} demo --rate 300 2>{tmp_path / 'err.log'}; echo $? > {status}",
        (120, 32),
    )
    wait_until(lambda: "cache-main" in _screen(session), deadline_s=30, what="the demo's overview")
    _keys(session, "/")
    # Typed once the box has the focus: keys typed with "/" in one burst go to the table.
    wait_until(lambda: "filter by name" in _screen(session), deadline_s=10, what="the filter box")
    _keys(session, "cache-main", literal=True)
    _keys(session, "Enter")
    wait_until(lambda: "▾ sessions" not in _screen(session), deadline_s=10, what="the filter applied")
    # The filtered list is the fleet row, cache-main's group row and cache-main: End selects it
    # wherever the cursor was (a fixed number of Downs depended on where the cursor started).
    wait_until(lambda: _screen(session).count("cache-main") >= 1, deadline_s=10, what="cache-main's row")
    _keys(session, "End", "Enter")
    # The detail view: its tab bar, and cache-main named on the header line. (Not "› cache-main":
    # a crowded header drops the breadcrumb before the name, e.g. once the demo's alert fires.)
    shown: list[str] = []

    def detail_open() -> bool:
        shown[:] = [_screen(session)]
        return "Hot keys" in shown[0] and "cache-main" in shown[0].splitlines()[0]

    try:
        wait_until(detail_open, deadline_s=10, what="cache-main's detail")
    except pytest.fail.Exception:
        pytest.fail("cache-main's detail did not open; the screen was:\n" + shown[0])
    _keys(session, *["Right"] * 5)
    wait_until(lambda: "hot:cart:1" in _screen(session), deadline_s=30, what="the Hot keys tab's keys")
    if "Evict key" not in _screen(session):  # the key table does not have the focus yet
        _keys(session, "Tab")
    wait_until(lambda: "e Evict key" in _screen(session), deadline_s=10, what="e offered in the footer")
    _keys(session, "e")
    wait_until(
        lambda: "Evict from cache-main" in _screen(session) and "would evict" in _screen(session),
        deadline_s=15,
        what="the dry run and confirmation dialog",
    )
    screen = _screen(session)
    assert "read-only" not in screen and "Cancel" in screen
    _keys(session, "Escape")
    wait_until(lambda: "Evict from" not in _screen(session), deadline_s=10, what="the dialog closed")
    _keys(session, "q")
    wait_until(lambda: status.exists() and status.read_text().strip(), deadline_s=30, what="exit status")


def test_replay_with_stderr_in_a_file_draws_on_the_terminal(
    tmp_path: Path, session: str, redis: LocalServer
) -> None:
    recording = tmp_path / "fleet.ctrec"

    async def record() -> None:
        config = Config(
            path=None,
            settings=Settings(interval=0.1, window=1.0, state_dir=tmp_path / "state"),
            instances=(InstanceConfig(name="cache-recorded", target=parse_target(redis.url)),),
        )
        async with Monitor(config) as monitor, attach_outputs(monitor, record=str(recording)):
            await monitor.wait_polls(3, timeout=10)

    asyncio.run(record())
    log, status = tmp_path / "err.log", tmp_path / "status"
    _start(
        session,
        f"env TERM=xterm-256color {CACHETOP} replay --paused {recording} 2>{log}; echo $? > {status}",
        (80, 24),
    )
    wait_until(lambda: "cache-recorded" in _screen(session), deadline_s=20, what="the replayed overview")
    _keys(session, "q")
    wait_until(lambda: status.exists() and status.read_text().strip(), deadline_s=15, what="exit status")
    assert status.read_text().strip() == "0"
    assert b"\x1b" not in log.read_bytes()
