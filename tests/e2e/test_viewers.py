"""Several cachetop processes on one fleet: a daemon and two dashboards (real TUIs in tmux, hot-key
sampling at its defaults) watch one idle Redis 7.0 and one idle memcached, each with one
application connection. The daemon must read 0 ops/s and 1 connection on both: the other
processes' polls, probes and MONITOR phases are theirs, not the application's."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_py

import cachetop
from cachetop.servers import LocalServer, free_port
from tests.conftest import wait_until
from tests.integration.test_daemon_outputs import scrape

CACHETOP = Path(sys.executable).parent / "cachetop"
SOURCE = Path(cachetop.__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


@pytest.fixture
def sessions() -> Iterator[list[str]]:
    names = [f"cachetop-viewers-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    yield names
    for name in names:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def _monitor_phases(client: redis_py.Redis) -> set[str]:
    """The hot-key MONITOR connections open right now (a new one per phase), by client id."""
    return {c["id"] for c in client.client_list() if c["name"].startswith("cachetop-hotkeys-monitor")}


def test_daemon_reads_zero_with_two_dashboards_watching(
    tmp_path: Path, sessions: list[str], redis: LocalServer, memcached: LocalServer
) -> None:
    config = tmp_path / "cachetop.toml"
    config.write_text(
        f"""
[settings]
interval = "500ms"
window = "2s"
state_dir = "{tmp_path / "state"}"

[[instance]]
name = "redis"
url = "{redis.url}"

[[instance]]
name = "mc"
url = "{memcached.url}"

[alerts]
instance_down = false

[hotkeys]
k = 20
"""
    )
    # The application: one connection on each server, idle.
    app = redis_py.Redis(port=redis.port)
    app.ping()
    mc_app = socket.create_connection(("127.0.0.1", memcached.port))
    port = free_port()
    daemon = subprocess.Popen(
        [
            str(CACHETOP),
            "daemon",
            "-c",
            str(config),
            "--metrics-port",
            str(port),
            "--metrics-addr",
            "127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SOURCE)},
    )
    try:
        for session in sessions:  # two dashboards, as a person starts them, with the same config
            # This checkout's cachetop, whatever PYTHONPATH the tmux server was started with.
            command = f"env PYTHONPATH={SOURCE} TERM=xterm-256color {CACHETOP} -c {config}"
            subprocess.run(
                ["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "48", "sh", "-c", command],
                check=True,
            )
        # Every process is at work: MONITOR phases (dashboards and daemon: one per process in
        # the first 10 s) have been seen.
        phases: set[str] = set()

        def three_phases() -> bool:
            phases.update(_monitor_phases(app))
            return len(phases) >= 3

        wait_until(three_phases, deadline_s=40, what="three MONITOR phases")

        def zero_and_one() -> bool:
            m = scrape(port)
            return all(
                m.get(("cachetop_ops_per_second", name)) == 0.0
                and m.get(("cachetop_connections", name)) == 1.0
                for name in ("redis", "mc")
            )

        wait_until(zero_and_one, deadline_s=30, what="0 ops/s and 1 connection on both")
        # ...and it stays so through another MONITOR phase of every process (10 s duty cycles).
        # (The test no longer lists clients itself: that would be the application's traffic.)
        end = time.monotonic() + 12
        while time.monotonic() < end:
            m = scrape(port)
            readings = {
                name: (m.get(("cachetop_ops_per_second", name)), m.get(("cachetop_connections", name)))
                for name in ("redis", "mc")
            }
            if readings != {"redis": (0.0, 1.0), "mc": (0.0, 1.0)}:
                stats = app.info("commandstats")  # what ran, to tell who leaked
                pytest.fail(f"{readings}; {sorted((k, v['calls']) for k, v in stats.items())}")
            time.sleep(0.2)  # pacing the scrapes, not waiting for a condition
        assert daemon.poll() is None, daemon.stderr.read() if daemon.stderr else ""
    finally:
        daemon.terminate()
        daemon.wait(10)
        app.close()
        mc_app.close()
