"""Hardening of alert delivery against hostile peers, with real processes and real sockets:
a webhook or SMTP server that answers one byte every 2 s (in the HTTP answer, the SMTP greeting,
the TLS handshake, after STARTTLS) cannot hold `cachetop alerts test` past the channel's timeout
nor a daemon's shutdown past its bound; and only a real success counts as delivered."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cachetop.alerts.channels import SlackChannel
from cachetop.alerts.delivery import ABORT_GRACE_S, STOP_GRACE_S, DeliveryEvent, DeliveryWorker
from cachetop.alerts.notify import Delivered, Permanent, Retry
from cachetop.alerts.notify.email import EmailNotifier
from cachetop.alerts.notify.slack import SlackNotifier
from cachetop.alerts.outbox import Message, Outbox
from cachetop.engine.config import load_config
from cachetop.engine.configfile import ConfigError
from cachetop.servers import LocalServer
from tests.alert_servers import BOT_TOKEN, WEBHOOK_PATH, ConnectProxy, SlackStandIn, SlowPeer, SmtpServer
from tests.conftest import until, wait_until
from tests.integration.test_alert_daemon import Daemon, outbox_rows
from tests.integration.test_alert_delivery import alert, email_channel, webhook_channel
from tests.monitoring import one_instance_toml

SMTP_PASSWORD = "smtp-secret-pw-77"
STOP_BOUND_S = 5.0  # docs/alerts.md: the daemon stops within 5 s, even in the middle of a send
WALL = 1_800_000_000.0


@pytest.fixture
def peer(request: pytest.FixtureRequest) -> Iterator[SlowPeer]:
    server = SlowPeer(request.param).start()
    yield server
    server.stop()


def channel_toml(peer: SlowPeer, timeout: str) -> str:
    """[channel.ops] aimed at the slow peer; the secrets come from the environment."""
    if peer.mode in ("http", "tls"):
        return f"""
[channel.ops]
type = "slack"
webhook_url = "${{SLACK_WEBHOOK_URL}}"
timeout = "{timeout}"
"""
    return f"""
[channel.ops]
type = "email"
host = "127.0.0.1"
port = {peer.port}
tls = "{"ssl" if peer.mode == "tls" else "starttls"}"
username = "alerts"
password = "${{SMTP_PASSWORD}}"
from = "cachetop@example.com"
to = "oncall@example.com"
timeout = "{timeout}"
"""


def webhook_url(peer: SlowPeer) -> str:
    return f"{'https' if peer.mode == 'tls' else 'http'}://127.0.0.1:{peer.port}{WEBHOOK_PATH}"


def no_secret(text: str) -> None:
    assert WEBHOOK_PATH not in text and "XXXXSECRETXXXX" not in text and SMTP_PASSWORD not in text
    assert "Traceback" not in text


# ---- a total deadline per attempt -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        ("http", "slack webhook: no complete answer within 3s (the channel's timeout)"),
        ("tls", "slack webhook: no complete answer within 3s (the channel's timeout)"),
        ("smtp", "email: 127.0.0.1:{port}: no complete answer within 3s (the channel's timeout)"),
        ("starttls", "email: 127.0.0.1:{port}: no complete answer within 3s (the channel's timeout)"),
    ],
    indirect=["peer"],
)
def test_alerts_test_gives_up_on_a_slow_peer_at_the_channel_timeout(
    tmp_path: Path, peer: SlowPeer, expected: str
) -> None:
    config = tmp_path / "cachetop.toml"
    config.write_text(one_instance_toml(tmp_path, "redis://127.0.0.1:6379") + channel_toml(peer, "3s"))
    env = {**os.environ, "SLACK_WEBHOOK_URL": webhook_url(peer), "SMTP_PASSWORD": SMTP_PASSWORD}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "cachetop", "alerts", "test", "ops", "-c", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,  # before the fix: a byte every 2 s kept every per-read timeout happy, for ever
    )
    elapsed = time.monotonic() - started
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"cachetop: test message to ops failed (would be retried): {expected.format(port=peer.port)}\n"
    )
    no_secret(done.stderr)
    assert peer.sent >= 1  # the peer was answering, slowly: no per-read timeout could fire
    # The attempt ended at its 3 s limit (measured on the peer's side, from accept to hang-up).
    wait_until(lambda: peer.closed, 2.0, "the peer to see the connection closed")
    [accepted], [closed] = peer.accepted, peer.closed
    assert 2.5 <= closed - accepted < 4.0, (accepted, closed)  # the limit runs from before connect
    assert elapsed < 10  # interpreter start-up on a loaded machine, plus the 3 s


@pytest.mark.parametrize("peer", ["http", "starttls"], indirect=True)
def test_one_attempt_frees_its_thread_and_socket_at_the_deadline(peer: SlowPeer) -> None:
    """In process: send() returns at the limit and the peer sees the connection closed then, not
    when a garbage collector gets round to it."""
    if peer.mode == "http":
        notifier: SlackNotifier | EmailNotifier = SlackNotifier(
            SlackChannel(name="ops", webhook_url=webhook_url(peer), timeout=1.5)
        )
    else:
        smtp = SmtpServer(peer.port, Path("/nonexistent"), [], [], [], None)  # type: ignore[arg-type]
        notifier = EmailNotifier(email_channel(smtp, ca_file=None, timeout=1.5))
    row = Message(1, "ops", "firing", {"alerts": [alert()]}, WALL, WALL + 60, "sending", 0, WALL, None, None,
                  None, None)  # fmt: skip
    started = time.monotonic()
    outcome = notifier.send(row, None)
    returned = time.monotonic()
    assert isinstance(outcome, Retry) and "within 1.5s (the channel's timeout)" in outcome.error
    assert 1.4 <= returned - started < 2.5
    wait_until(lambda: peer.closed, 2.0, "the peer to see the connection closed")
    assert peer.closed[0] - returned < 1.0  # the peer polls every 0.1 s; a loaded machine adds some


@pytest.mark.slow
@pytest.mark.parametrize("peer", ["http", "starttls"], indirect=True)
def test_sigterm_mid_delivery_stops_the_daemon_within_the_bound_and_keeps_the_message(
    tmp_path: Path, redis: LocalServer, peer: SlowPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", SMTP_PASSWORD)  # the daemon's environment
    config = tmp_path / "cachetop.toml"
    config.write_text(
        one_instance_toml(tmp_path, redis.url)
        + """
[[rule]]
name = "has-clients"
metric = "connections"
op = ">="
threshold = 0
channels = ["ops"]
"""
        + channel_toml(peer, "60s")  # far longer than the stop bound: the stop must cut the send
    )
    daemon = Daemon(config, tmp_path / "daemon.log", webhook_url(peer))
    try:
        wait_until(lambda: peer.sent >= 1, 30, "a delivery in progress to the slow peer")
        stopping = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        # Before the fix the daemon waited for a send that never ended (measured: still alive at 60 s).
        assert daemon.proc.wait(STOP_BOUND_S + 5) == 0
        took = time.monotonic() - stopping
    finally:
        daemon.stop()
    assert took < STOP_BOUND_S
    what = "slack webhook:" if peer.mode == "http" else f"email: 127.0.0.1:{peer.port}:"
    # Not lost: pending, with one attempt counted, and sent again on the next start.
    assert outbox_rows(tmp_path) == [(1, "firing", "pending", 1)]
    log = daemon.text()
    retried = (
        rf"retrying message #1 \(firing\) to ops in [0-9.]+s \(attempt 1\): {re.escape(what)} interrupted"
        r" because cachetop is stopping \(sent again on the next start\)"
    )
    assert re.search(retried, log), log
    assert log.rstrip().endswith("stopped")
    no_secret(log)
    wait_until(lambda: peer.closed, 2.0, "the peer to see the connection closed")
    assert len(peer.closed) == len(peer.accepted) == 1


# ---- success means success ----------------------------------------------------------------------------


def deliver_once(
    tmp_path: Path, notifier: SlackNotifier | EmailNotifier
) -> tuple[Message, list[DeliveryEvent]]:
    """Runs a delivery worker until the one message leaves `pending` for good or is retried."""
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    events: list[DeliveryEvent] = []

    async def run() -> int:
        worker = DeliveryWorker(outbox, {"ops": notifier}, backoff_base_s=30, on_event=events.append)
        message_id = outbox.enqueue("ops", "firing", {"alerts": [alert()]}, deadline_s=60)
        worker.start()
        await until(lambda: events, what="one attempt")
        await worker.stop()
        return message_id

    message_id = asyncio.run(run())
    message = outbox.get(message_id)
    outbox.close()
    assert message is not None
    return message, events


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_is_final(tmp_path: Path, slack: SlackStandIn, status: int) -> None:
    moved = f"http://127.0.0.1:{slack.port}/services/T111/B111/NEWSECRET?token=abc"
    slack.script = [(status, {"Location": moved})]
    message, events = deliver_once(tmp_path, SlackNotifier(webhook_channel(slack)))
    error = (
        f"slack webhook: HTTP {status} redirect to http://127.0.0.1:{slack.port}/…"
        " (not followed: update the URL)"
    )
    assert (message.state, message.last_error) == ("failed", error)
    assert [(e.result, e.error) for e in events] == [("failed", error)]
    # Before the fix urllib followed 301/302/303 with a GET to the new address, whose 200 was
    # taken for a delivery.
    assert [(r.path, r.status) for r in slack.requests] == [(WEBHOOK_PATH, status)]
    assert "NEWSECRET" not in error and "token" not in error


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (b"invalid_payload", "invalid_payload"),
        (b"no_service", "no_service"),
        (b"channel_not_found", "channel_not_found"),
        (b"", "(empty answer)"),
        (b"<html>oops", "<html>oops"),
        # Kept as the server wrote it: the terminal, the log and the dashboard escape it, once.
        (b"\x1b[2Jgone", "\x1b[2Jgone"),
    ],
)
def test_a_webhook_200_without_ok_is_a_final_failure(
    tmp_path: Path, slack: SlackStandIn, body: bytes, shown: str
) -> None:
    slack.script = [(200, {}, body)]
    message, _ = deliver_once(tmp_path, SlackNotifier(webhook_channel(slack)))
    assert (message.state, message.last_error) == ("failed", f"slack webhook: HTTP 200 without 'ok': {shown}")
    assert len(slack.requests) == 1  # final: not retried


def test_slack_error_bodies_on_4xx_are_named_and_5xx_is_retried(tmp_path: Path, slack: SlackStandIn) -> None:
    slack.script = [(400, {}, b"invalid_payload")]
    message, _ = deliver_once(tmp_path, SlackNotifier(webhook_channel(slack)))
    assert (message.state, message.last_error) == ("failed", "slack webhook: HTTP 400: invalid_payload")
    (tmp_path / "outbox.sqlite3").unlink()
    slack.script = [(503, {}, b"rollup_error")]
    message, _ = deliver_once(tmp_path, SlackNotifier(webhook_channel(slack)))
    assert (message.state, message.last_error) == ("pending", "slack webhook: HTTP 503")


def test_chat_post_message_needs_ok_true(slack: SlackStandIn) -> None:
    notifier = SlackNotifier(
        SlackChannel(name="ops", token=BOT_TOKEN, channel="#ops", base_url=slack.api_url, timeout=5)
    )
    row = Message(1, "ops", "firing", {"alerts": [alert()]}, WALL, WALL + 60, "sending", 0, WALL, None, None,
                  None, None)  # fmt: skip
    api = "slack chat.postMessage"
    cases = [
        (
            (302, {"Location": "https://login.example.com/sso?next=x"}, b""),
            Permanent(
                f"{api}: HTTP 302 redirect to https://login.example.com/… (not followed: update the URL)"
            ),
        ),
        ((200, {}, b'{"ok": false, "error": "channel_not_found"}'), Permanent(f"{api}: channel_not_found")),
        ((200, {}, b"<html>login</html>"), Permanent(f"{api}: HTTP 200 without ok=true: <html>login</html>")),
        ((200, {}, b'{"ts": "1.2"}'), Permanent(f'{api}: HTTP 200 without ok=true: {{"ts": "1.2"}}')),
        ((200, {}, b'{"ok": false, "error": "ratelimited"}'), Retry(f"{api}: ratelimited")),
    ]
    for step, expected in cases:
        slack.script = [step]
        assert notifier.send(row, None) == expected
    assert slack.delivered == []


def test_smtp_data_must_be_answered_250(tmp_path: Path, smtp: SmtpServer) -> None:
    smtp.data_reply = "554 5.7.1 message rejected as spam"
    message, _ = deliver_once(tmp_path, EmailNotifier(email_channel(smtp)))
    assert (message.state, message.last_error) == (
        "failed",
        "email: 127.0.0.1 refused the message (SMTP 554)",
    )
    (tmp_path / "outbox.sqlite3").unlink()
    smtp.data_reply = "451 4.3.0 try again later"
    message, _ = deliver_once(tmp_path, EmailNotifier(email_channel(smtp)))
    assert (message.state, message.last_error) == (
        "pending",
        "email: 127.0.0.1 deferred the message (SMTP 451)",
    )
    assert smtp.delivered == []


def test_smtp_partial_recipient_refusal_is_reported(
    tmp_path: Path, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    smtp.refuse_rcpt = {"gone@example.com": "550 5.1.1 no such user"}
    channel = email_channel(smtp, to=("oncall@example.com", "gone@example.com"))
    message, events = deliver_once(tmp_path, EmailNotifier(channel))
    note = "email: the server refused gone@example.com (SMTP 550); the others got it"
    assert message.state == "delivered"  # retrying would page oncall@ twice
    assert [(e.result, e.error) for e in events] == [("delivered", note)]
    assert f"message #1 (firing) to ops: {note}" in caplog.text
    assert [e.rcpt_tos for e in smtp.envelopes] == [["oncall@example.com"]]


# ---- a notifier plugin that never returns -----------------------------------------------------------


class HungPlugin:
    """A notifier plugin whose send never returns (a library blocked in a read with no timeout)."""

    min_interval_s = 0.0

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def send(self, message: Message, thread_id: str | None) -> Delivered:
        self.calls += 1
        self.release.wait()
        return Delivered()


def run_hung(tmp_path: Path, limit_s: float, attempts: int) -> tuple[Outbox, list[DeliveryEvent], float]:
    """A worker on a hung plugin until `attempts` sends started; then stopped. Returns the stop's time."""
    plugin = HungPlugin()
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    events: list[DeliveryEvent] = []

    async def run() -> float:
        worker = DeliveryWorker(
            outbox, {"ops": plugin}, backoff_base_s=0.05, send_wait_limit_s=limit_s, on_event=events.append
        )
        outbox.enqueue("ops", "firing", {"alerts": [alert()]}, deadline_s=60)
        worker.start()
        await until(lambda: plugin.calls >= attempts, what=f"{attempts} attempt(s)")
        stopping = time.monotonic()
        await worker.stop()
        return time.monotonic() - stopping

    try:
        took = asyncio.run(run())
    finally:
        plugin.release.set()
    return outbox, events, took


def test_a_hung_plugin_does_not_wedge_its_channel(tmp_path: Path) -> None:
    outbox, events, _ = run_hung(tmp_path, 0.5, 2)
    error = "ops: the sender gave no outcome within 0.5s (retried; it may still end)"
    assert [(e.result, e.error) for e in events][:1] == [("retry", error)]
    outbox.close()


def test_a_hung_plugin_does_not_hold_the_stop(tmp_path: Path) -> None:
    outbox, events, took = run_hung(tmp_path, 120, 1)
    assert took < STOP_GRACE_S + ABORT_GRACE_S + 1.0  # before: 15 s, then a hang at exit
    assert events == []
    # Left `sending` by the stop (its outcome is unknown): the next start sends it again.
    assert outbox.recover() == 1
    assert [(m.state, m.attempts) for m in outbox.recent()] == [("pending", 1)]
    outbox.close()


@pytest.mark.parametrize("value", ['"61s"', '"5m"'])
def test_a_channel_timeout_beyond_a_minute_is_refused(tmp_path: Path, value: str) -> None:
    path = tmp_path / "cachetop.toml"
    body = f'[channel.ops]\ntype = "slack"\nwebhook_url = "https://hooks.example.com/x"\ntimeout = {value}\n'
    path.write_text(one_instance_toml(tmp_path, "redis://127.0.0.1:6379") + body)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    line = path.read_text().splitlines().index(f"timeout = {value}") + 1
    assert str(info.value) == (
        f"{path}:{line}: timeout = {value} is too long for one delivery attempt (connect, TLS, request"
        " and answer together): allowed 0.1s … 1m"
    )


def test_the_webhook_goes_through_an_environment_proxy(
    slack: SlackStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP(S)_PROXY was honoured when slack-sdk (urllib) sent; it still is, through CONNECT."""
    proxy = ConnectProxy().start()
    try:
        for name in ("NO_PROXY", "no_proxy", "http_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://alice:pr%40xy@127.0.0.1:{proxy.port}")
        row = Message(1, "ops", "firing", {"alerts": [alert()]}, WALL, WALL + 60, "sending", 0, WALL, None,
                      None, None, None)  # fmt: skip
        assert SlackNotifier(webhook_channel(slack)).send(row, None) == Delivered()
        # The request line's HTTP version is http.client's (1.0 on Python 3.11, 1.1 later).
        [(line, auth)] = proxy.requests
        assert (line.rsplit(" ", 1)[0], auth) == (f"CONNECT 127.0.0.1:{slack.port}", "Basic YWxpY2U6cHJAeHk=")
        assert len(slack.delivered) == 1
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert SlackNotifier(webhook_channel(slack)).send(row, None) == Delivered()
        assert len(proxy.requests) == 1 and len(slack.delivered) == 2
    finally:
        proxy.stop()


def test_a_server_echoing_the_webhook_token_does_not_leak_it(
    tmp_path: Path, slack: SlackStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    from cachetop.cli import main

    path = tmp_path / "cachetop.toml"
    path.write_text(
        one_instance_toml(tmp_path, "redis://127.0.0.1:6379")
        + f'[channel.ops]\ntype = "slack"\nwebhook_url = "{slack.webhook_url}"\n'
    )
    slack.script = [(400, {}, f"invalid_token: {WEBHOOK_PATH} \x1b[2J".encode())]
    assert main(["alerts", "test", "ops", "-c", str(path)]) == 1
    # The secret scrubbed, the server's escape sequence escaped once.
    assert capsys.readouterr().err == (
        "cachetop: test message to ops refused (permanent): slack webhook: HTTP 400:"
        " invalid_token: *** \\x1b[2J\n"
    )
