"""Hardening of the alerting daemon against its own environment, with real processes: a state
dir whose lock file is deleted under a running daemon, a state dir on a full filesystem, and
a /metrics port flooded with idle connections."""

from __future__ import annotations

import resource
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from cachetop.exporters.prometheus import MAX_CONNECTIONS
from cachetop.servers import LocalServer, free_port
from tests.alert_servers import SlackStandIn
from tests.conftest import TinyFs, wait_until
from tests.integration.test_alert_daemon import Daemon, outbox_rows, write_config
from tests.monitoring import one_instance_toml

pytestmark = pytest.mark.slow


def test_deleting_the_lock_file_does_not_let_a_second_daemon_start(
    tmp_path: Path, redis: LocalServer, slack: SlackStandIn
) -> None:
    config = write_config(tmp_path, redis)
    first = Daemon(config, tmp_path / "first.log", slack.webhook_url)
    try:
        wait_until(lambda: "started: pid" in first.text(), 20, "the first daemon to start")
        lock = tmp_path / "state" / "alerts.lock"
        assert lock.read_text() == str(first.proc.pid)
        lock.unlink()  # a tidy-up script, a careless rm
        second = Daemon(config, tmp_path / "second.log", slack.webhook_url)
        try:
            assert second.proc.wait(20) == 1
        finally:
            second.stop()
        assert (
            "ERROR cachetop.daemon: alerts are already handled by another cachetop process (pid unknown)"
            f" using {tmp_path / 'state'}" in second.text()
        )
        assert "Traceback" not in second.text()
        wait_until(lambda: "delivered message #1 (firing)" in first.text(), 20, "the firing notice")
        first.proc.send_signal(signal.SIGTERM)
        assert first.proc.wait(10) == 0
    finally:
        first.stop()
    assert len(slack.delivered) == 1  # one daemon, one page
    assert [(kind, state) for _, kind, state, _ in outbox_rows(tmp_path)] == [("firing", "delivered")]


def scrape(port: int) -> dict[str, float]:
    """The unlabelled samples of /metrics, by name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    samples = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if line and not line.startswith("#") and "{" not in name:
            samples[name] = float(value)
    return samples


def test_a_full_state_dir_loses_no_notice_and_saves_it_when_space_comes_back(
    tmp_path: Path, redis: LocalServer, slack: SlackStandIn, tiny_fs: TinyFs
) -> None:
    # Room for a fresh outbox (its WAL and shared-memory files take ~64 KiB), so the disk fills
    # while the daemon runs, as in the report; the fixture's 64 KiB would fail it at start-up.
    subprocess.run(["mount", "-o", "remount,size=1m", str(tiny_fs.path)], check=True, timeout=10)
    state = tiny_fs.path / "state"
    config = tmp_path / "cachetop.toml"
    config.write_text(
        one_instance_toml(tmp_path, redis.url).replace(str(tmp_path / "state"), str(state))
        + """
[[rule]]
name = "many-clients"
metric = "connections"
op = ">="
threshold = 20
channels = ["ops-slack"]

[channel.ops-slack]
type = "slack"
webhook_url = "${SLACK_WEBHOOK_URL}"
"""
    )
    port = free_port()
    daemon = Daemon(
        config, tmp_path / "daemon.log", slack.webhook_url, "--metrics-port", str(port), "--metrics-addr",
        "127.0.0.1",
    )  # fmt: skip
    clients: list[socket.socket] = []
    try:
        wait_until(lambda: "Prometheus metrics on" in daemon.text(), 20, "the daemon to start")
        tiny_fs.fill()  # the state dir's file system is now full
        clients = [socket.create_connection(("127.0.0.1", redis.port)) for _ in range(25)]
        # The notice does not wait for the disk: it is delivered from memory.
        wait_until(lambda: "delivered message #1 (firing)" in daemon.text(), 20, "the firing notice")
        assert len(slack.delivered) == 1
        log = daemon.text()
        assert (
            f"ERROR cachetop.alerts: cannot write the alert outbox {state / 'alerts.sqlite3'}"
            " (database or disk is full): alert state is kept in memory" in log
        )
        metrics = scrape(port)
        assert metrics["cachetop_alert_state_write_errors_total"] >= 1
        # The message, the engine's firing state, sending, delivered: all in memory only.
        assert metrics["cachetop_alert_unpersisted_changes"] == 4
        assert outbox_rows(state.parent) == []  # nothing reached the file (yet)

        tiny_fs.free()
        wait_until(lambda: "change(s) kept in memory" in daemon.text(), 20, "the write-back")
        assert f"alert outbox {state / 'alerts.sqlite3'} written again: 4 change(s)" in daemon.text()
        assert scrape(port)["cachetop_alert_unpersisted_changes"] == 0
        assert outbox_rows(state.parent) == [(1, "firing", "delivered", 1)]
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(10) == 0
    finally:
        for client in clients:
            client.close()
        daemon.stop()
    assert len(slack.delivered) == 1
    assert "Traceback" not in daemon.text()


def test_a_thousand_idle_connections_to_metrics_cost_no_threads_and_a_scrape_still_answers(
    tmp_path: Path, redis: LocalServer, slack: SlackStandIn
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:  # this test's own sockets
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    port = free_port()
    daemon = Daemon(
        write_config(tmp_path, redis), tmp_path / "daemon.log", slack.webhook_url,
        "--metrics-port", str(port), "--metrics-addr", "127.0.0.1",
    )  # fmt: skip
    idle: list[socket.socket] = []
    try:
        wait_until(lambda: "Prometheus metrics on" in daemon.text(), 20, "the daemon to start")
        process = psutil.Process(daemon.proc.pid)
        threads_before = process.num_threads()
        for _ in range(1000):  # connect, say nothing
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        started = time.monotonic()
        samples = scrape(port)
        assert time.monotonic() - started < 2.0
        assert samples["cachetop_snapshots_total"] >= 1
        # Idle connections hold no thread, and at most MAX_CONNECTIONS sockets stay open.
        assert process.num_threads() <= threads_before + 1
        open_sockets = [c for c in process.net_connections("tcp") if c.laddr.port == port]
        assert len(open_sockets) <= MAX_CONNECTIONS + 1  # + the listening socket
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(10) == 0
    finally:
        for sock in idle:
            sock.close()
        daemon.stop()
