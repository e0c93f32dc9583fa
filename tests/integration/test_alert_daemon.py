"""`cachetop daemon` as a real process: killed with a notification still in the outbox, then
restarted, it delivers that notification exactly once; SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cachetop.servers import LocalServer
from tests.alert_servers import WEBHOOK_PATH, SlackStandIn
from tests.conftest import wait_until
from tests.monitoring import one_instance_toml

pytestmark = pytest.mark.slow


def write_config(tmp_path: Path, redis: LocalServer) -> Path:
    path = tmp_path / "cachetop.toml"
    path.write_text(
        one_instance_toml(tmp_path, redis.url)
        + """
# Always true once the first window has data: fires at once and stays firing.
[[rule]]
name = "has-clients"
metric = "connections"
op = ">="
threshold = 0
channels = ["ops-slack"]

[channel.ops-slack]
type = "slack"
webhook_url = "${SLACK_WEBHOOK_URL}"
"""
    )
    return path


class Daemon:
    def __init__(self, config: Path, log: Path, webhook_url: str, *extra: str) -> None:
        env = {**os.environ, "SLACK_WEBHOOK_URL": webhook_url, "CACHETOP_LOG": "info"}
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cachetop", "daemon", "-c", str(config), *extra],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def outbox_rows(tmp_path: Path) -> list[tuple[int, str, str, int]]:
    db = sqlite3.connect(tmp_path / "state" / "alerts.sqlite3")
    try:
        return list(db.execute("SELECT id, kind, state, attempts FROM message ORDER BY id"))
    finally:
        db.close()


def test_killed_with_a_queued_notification_restart_delivers_it_exactly_once(
    tmp_path: Path, redis: LocalServer, slack: SlackStandIn
) -> None:
    config = write_config(tmp_path, redis)
    slack.script = [(500, {})] * 1000  # Slack is down
    first = Daemon(config, tmp_path / "first.log", slack.webhook_url)
    try:
        wait_until(lambda: len(slack.requests) >= 2, 20, "two failed attempts")
        first.proc.send_signal(signal.SIGKILL)  # a crash: no chance to tidy up
        first.proc.wait(5)
    finally:
        first.stop()
    [(message_id, kind, state, attempts)] = outbox_rows(tmp_path)
    assert (kind, state) == ("firing", "pending") or (kind, state) == ("firing", "sending")
    assert attempts >= 2
    assert slack.delivered == []

    with slack.lock:
        slack.script = []  # Slack is back
    second = Daemon(config, tmp_path / "second.log", slack.webhook_url)
    try:
        wait_until(lambda: len(slack.delivered) == 1, 20, "the queued notification")
        wait_until(
            lambda: f"delivered message #{message_id} (firing)" in second.text(), 5, "the delivery log line"
        )
        second.proc.send_signal(signal.SIGTERM)
        assert second.proc.wait(10) == 0
    finally:
        second.stop()
    # Still the one message: the restart restored the firing alert rather than paging anew.
    assert outbox_rows(tmp_path) == [(message_id, "firing", "delivered", attempts + 1)]
    assert len(slack.delivered) == 1
    assert slack.delivered[0].body["blocks"][0]["text"]["text"] == "[FIRING] has-clients on cache-1"
    log = second.text()
    assert "restored 1 firing alert(s) from the last run" in log
    assert log.rstrip().endswith("stopped")
    for text in (first.text(), log):
        assert WEBHOOK_PATH not in text and "XXXXSECRETXXXX" not in text
        assert "Traceback" not in text
