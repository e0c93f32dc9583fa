"""The dashboard and the demo in a real terminal (tmux), as an on-call engineer starts them:
`cachetop -c FILE 2>err.log` draws on the terminal and logs to the file; the demo lets `e` evict."""

from __future__ import annotations

import asyncio
import re
import shutil
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
from tests.tmux import kill, screen, send_keys, start

CACHETOP = Path(sys.executable).parent / "cachetop"
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


@pytest.fixture
def session() -> Iterator[str]:
    name = f"cachetop-oncall-{uuid.uuid4().hex[:8]}"
    yield name
    kill(name)


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
    start(
        session,
        f"env TERM=xterm-256color CACHETOP_LOG=info {CACHETOP} -c {config} --interval 0.5 2>{log};"
        f" echo $? > {status}",
        (80, 24),
    )
    wait_until(
        lambda: "cache-up" in screen(session) and "DOWN" in screen(session),
        deadline_s=20,
        what="the overview on the terminal",
    )
    shown = screen(session)
    assert "instance" in shown and "status" in shown and " up " in shown
    send_keys(session, "q")
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
    start(
        session,
        f"env TERM=xterm-256color {CACHETOP} demo --rate 300 2>{tmp_path / 'err.log'}; echo $? > {status}",
        (120, 32),
    )
    wait_until(lambda: "cache-main" in screen(session), deadline_s=30, what="the demo's overview")
    send_keys(session, "/")
    # Typed once the box has the focus: keys typed with "/" in one burst go to the table.
    wait_until(lambda: "filter by name" in screen(session), deadline_s=10, what="the filter box")
    send_keys(session, "cache-main", literal=True)
    send_keys(session, "Enter")
    wait_until(lambda: "▾ sessions" not in screen(session), deadline_s=10, what="the filter applied")
    # The filtered list is the fleet row, cache-main's group row and cache-main: End selects it
    # wherever the cursor was (a fixed number of Downs depended on where the cursor started).
    wait_until(lambda: screen(session).count("cache-main") >= 1, deadline_s=10, what="cache-main's row")
    send_keys(session, "End", "Enter")
    # The detail view: its tab bar, and cache-main named on the header line. (Not "› cache-main":
    # a crowded header drops the breadcrumb before the name, e.g. once the demo's alert fires.)
    shown: list[str] = []

    def detail_open() -> bool:
        shown[:] = [screen(session)]
        return "Hot keys" in shown[0] and "cache-main" in shown[0].splitlines()[0]

    try:
        wait_until(detail_open, deadline_s=10, what="cache-main's detail")
    except pytest.fail.Exception:
        pytest.fail("cache-main's detail did not open; the screen was:\n" + shown[0])
    send_keys(session, *["Right"] * 5)
    wait_until(lambda: "hot:cart:1" in screen(session), deadline_s=30, what="the Hot keys tab's keys")
    if "Evict key" not in screen(session):  # the key table does not have the focus yet
        send_keys(session, "Tab")
    wait_until(lambda: "e Evict key" in screen(session), deadline_s=10, what="e offered in the footer")
    send_keys(session, "e")
    wait_until(
        lambda: "Evict from cache-main" in screen(session) and "would evict" in screen(session),
        deadline_s=15,
        what="the dry run and confirmation dialog",
    )
    dialog = screen(session)
    assert "read-only" not in dialog and "Cancel" in dialog
    send_keys(session, "Escape")
    wait_until(lambda: "Evict from" not in screen(session), deadline_s=10, what="the dialog closed")
    send_keys(session, "q")
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
    start(
        session,
        f"env TERM=xterm-256color {CACHETOP} replay --paused {recording} 2>{log}; echo $? > {status}",
        (80, 24),
    )
    wait_until(lambda: "cache-recorded" in screen(session), deadline_s=20, what="the replayed overview")
    send_keys(session, "q")
    wait_until(lambda: status.exists() and status.read_text().strip(), deadline_s=15, what="exit status")
    assert status.read_text().strip() == "0"
    assert b"\x1b" not in log.read_bytes()
