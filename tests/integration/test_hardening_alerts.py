"""Hardening of the alerting daemon against its own environment, with real processes: a state
dir whose lock file is deleted under a running daemon, a state dir on a full filesystem, and
a /metrics port flooded with idle connections."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from cachetop.servers import LocalServer
from tests.alert_servers import SlackStandIn
from tests.conftest import wait_until
from tests.integration.test_alert_daemon import Daemon, outbox_rows, write_config

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
