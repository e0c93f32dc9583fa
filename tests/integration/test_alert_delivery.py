"""Delivery through the outbox to real servers: a loopback HTTP server answering like Slack
(slack-sdk pointed at it) and aiosmtpd with STARTTLS on a certificate from a throw-away CA."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import trustme

from cachetop.alerts.channels import EmailChannel, SlackChannel
from cachetop.alerts.delivery import DeliveryEvent, DeliveryWorker
from cachetop.alerts.notify import Delivered, Permanent
from cachetop.alerts.notify.email import EmailNotifier
from cachetop.alerts.notify.slack import SlackNotifier
from cachetop.alerts.outbox import Message, Outbox
from tests.alert_servers import BOT_TOKEN, SlackStandIn, SmtpServer, iter_text_parts
from tests.conftest import until

WALL = 1_800_000_000.0


def alert(kind: str = "firing", episode: str = "low-hit/cache-1/1", **over: object) -> dict[str, object]:
    data: dict[str, object] = {
        "kind": kind,
        "rule": "low-hit",
        "instance": "cache-1",
        "metric": "hit_ratio",
        "op": "<",
        "threshold": 50.0,
        "value": 12.5,
        "severity": "critical",
        "episode": episode,
        "started_at": WALL,
        "active_for_s": 125.0,
        "time": WALL + 125,
        "reason": None,
    }
    data.update(over)
    return data


def webhook_channel(slack: SlackStandIn) -> SlackChannel:
    return SlackChannel(name="ops", webhook_url=slack.webhook_url, timeout=5)


def bot_channel(slack: SlackStandIn) -> SlackChannel:
    return SlackChannel(name="ops", token=BOT_TOKEN, channel="#ops", base_url=slack.api_url, timeout=5)


def email_channel(smtp: SmtpServer, **over: object) -> EmailChannel:
    fields: dict[str, object] = {
        "name": "mail",
        "host": "127.0.0.1",
        "port": smtp.port,
        "sender": "cachetop@example.com",
        "to": ("oncall@example.com",),
        "tls": "starttls",
        "ca_file": str(smtp.ca_file),
        "username": "alerts",
        "password": "smtp-secret-pw",
        "timeout": 5,
    }
    fields.update(over)
    return EmailChannel(**fields)  # type: ignore[arg-type]


async def test_webhook_500_500_500_then_429_then_200_delivers_exactly_once(
    tmp_path: Path, slack: SlackStandIn
) -> None:
    slack.script = [(500, {}), (500, {}), (500, {}), (429, {"Retry-After": "1"})]
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    events: list[DeliveryEvent] = []
    worker = DeliveryWorker(outbox, {"ops": SlackNotifier(webhook_channel(slack))}, backoff_base_s=0.05,
                            on_event=events.append)  # fmt: skip
    message_id = outbox.enqueue("ops", "firing", {"alerts": [alert()]}, deadline_s=60)
    worker.start()
    await until(lambda: outbox.get(message_id).state == "delivered", what="delivery")  # type: ignore[union-attr]
    await worker.stop()
    assert [r.status for r in slack.requests] == [500, 500, 500, 429, 200]
    assert len(slack.delivered) == 1
    # Retry-After: 1 was honoured: the fifth request came at least a second after the 429.
    assert slack.requests[4].time - slack.requests[3].time >= 1.0
    # Retries count against Slack's one message per second too: the backoff here is shorter.
    # (times are where the stand-in received them: a loaded machine adds a little jitter)
    gaps = [round(b.time - a.time, 2) >= 0.95 for a, b in itertools.pairwise(slack.requests)]
    assert gaps == [True] * 4
    assert [e.result for e in events] == ["retry", "retry", "retry", "retry", "delivered"]
    assert events[3].retry_in_s == pytest.approx(1.0, abs=0.05)
    sent = outbox.get(message_id)
    assert sent is not None and (sent.state, sent.attempts) == ("delivered", 5)
    body = slack.delivered[0].body
    assert body["blocks"][0]["text"]["text"] == "[FIRING] low-hit on cache-1"
    fields = [f["text"] for f in body["blocks"][1]["fields"]]
    assert fields == ["*Instance*\ncache-1", "*Metric*\nhit_ratio", "*Value*\n12.5%", "*Threshold*\n&lt; 50%",
                      "*Duration*\nfor 2m 5s", "*Severity*\ncritical"]  # fmt: skip


async def test_other_4xx_is_permanent_and_the_resolved_notice_is_skipped(
    tmp_path: Path, slack: SlackStandIn
) -> None:
    slack.script = [(404, {})]
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    events: list[DeliveryEvent] = []
    worker = DeliveryWorker(outbox, {"ops": SlackNotifier(webhook_channel(slack))}, backoff_base_s=0.05,
                            on_event=events.append)  # fmt: skip
    fired = outbox.enqueue("ops", "firing", {"alerts": [alert()]}, deadline_s=60)
    resolved = outbox.enqueue(
        "ops", "resolved", {"alerts": [alert("resolved")]}, deadline_s=60, thread_of=fired
    )
    worker.start()
    await until(lambda: outbox.get(resolved).state != "pending", what="resolved handled")  # type: ignore[union-attr]
    await worker.stop()
    assert [r.status for r in slack.requests] == [404]  # no retry, and no orphan resolved message
    assert [(e.result, e.error) for e in events] == [
        ("failed", "slack webhook: HTTP 404: no_service"),
        ("skipped", "the firing notice never reached this channel"),
    ]
    assert slack.webhook_url not in str(events)


async def test_one_message_per_second_per_slack_channel(tmp_path: Path, slack: SlackStandIn) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    worker = DeliveryWorker(outbox, {"ops": SlackNotifier(webhook_channel(slack))})
    for n in range(3):
        outbox.enqueue("ops", "firing", {"alerts": [alert(episode=f"e{n}")]}, deadline_s=60)
    worker.start()
    await until(lambda: len(slack.delivered) == 3, what="three deliveries")
    await worker.stop()
    times = [r.time for r in slack.requests]
    assert [round(b - a, 1) >= 1.0 for a, b in itertools.pairwise(times)] == [True, True]
    # In order: a channel delivers its messages first in, first out.
    assert [r.body["blocks"][1]["fields"][0]["text"] for r in slack.delivered] == ["*Instance*\ncache-1"] * 3


async def test_bot_token_posts_the_resolved_notice_in_the_firing_thread(
    tmp_path: Path, slack: SlackStandIn
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    worker = DeliveryWorker(outbox, {"ops": SlackNotifier(bot_channel(slack))}, backoff_base_s=0.05)
    fired = outbox.enqueue("ops", "firing", {"alerts": [alert()]}, deadline_s=60)
    resolved = outbox.enqueue(
        "ops", "resolved", {"alerts": [alert("resolved")]}, deadline_s=60, thread_of=fired
    )
    worker.start()
    await until(lambda: outbox.get(resolved).state == "delivered", what="resolved delivered")  # type: ignore[union-attr]
    await worker.stop()
    first, second = slack.delivered
    assert first.path == second.path == "/api/chat.postMessage"
    assert (first.body["channel"], "thread_ts" in first.body) == ("#ops", False)
    assert second.body["thread_ts"] == first.body["_ts"] == outbox.get(fired).remote_id  # type: ignore[union-attr]
    assert second.body["blocks"][0]["text"]["text"] == "[RESOLVED] low-hit on cache-1"


def test_bot_token_errors_are_classified(slack: SlackStandIn) -> None:
    notifier = SlackNotifier(bot_channel(slack))
    row = Message(
        1, "ops", "firing", {"alerts": [alert()]}, WALL, WALL + 60, "sending", 0, WALL, None, None, None, None
    )
    slack.script = [(429, {"Retry-After": "7"})]
    outcome = notifier.send(row, None)
    assert (type(outcome).__name__, outcome.error, getattr(outcome, "after", None)) == (  # type: ignore[union-attr]
        "Retry", "slack chat.postMessage: HTTP 429 rate limited", 7.0)  # fmt: skip
    wrong = SlackNotifier(
        SlackChannel(name="ops", token="xoxb-wrong-1234", channel="#ops", base_url=slack.api_url)
    )
    outcome = wrong.send(row, None)
    assert outcome == Permanent("slack chat.postMessage: invalid_auth")
    assert "xoxb-wrong-1234" not in str(outcome)
    slack.stop()
    outcome = notifier.send(row, None)
    assert type(outcome).__name__ == "Retry" and "cannot reach" in outcome.error  # type: ignore[union-attr]


async def test_email_over_starttls_trusted_through_ca_file(tmp_path: Path, smtp: SmtpServer) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    worker = DeliveryWorker(outbox, {"mail": EmailNotifier(email_channel(smtp))}, backoff_base_s=0.05)
    fired = outbox.enqueue("mail", "firing", {"alerts": [alert(reason="[bold]\x1b[31mred")]}, deadline_s=60)
    resolved = outbox.enqueue(
        "mail", "resolved", {"alerts": [alert("resolved")]}, deadline_s=60, thread_of=fired
    )
    worker.start()
    await until(lambda: outbox.get(resolved).state == "delivered", what="two emails")  # type: ignore[union-attr]
    await worker.stop()
    assert smtp.logins == [("alerts", "PLAIN")] * 2  # the password went over TLS, twice
    first, second = smtp.delivered
    assert (first["Subject"], second["Subject"]) == (
        "[FIRING] low-hit on cache-1",
        "[RESOLVED] low-hit on cache-1",
    )
    assert second["In-Reply-To"] == first["Message-ID"]
    assert [e.rcpt_tos for e in smtp.envelopes] == [["oncall@example.com"]] * 2
    parts = dict(iter_text_parts(first))
    assert sorted(parts) == ["text/html", "text/plain"]
    assert "  Value: 12.5%\n" in parts["text/plain"]
    # The reason is untrusted server text: no escape byte reaches the mail, and HTML is escaped.
    assert "\x1b" not in parts["text/plain"] and "Reason: [bold]\\x1b[31mred" in parts["text/plain"]
    assert "<td>[bold]\\x1b[31mred</td>" in parts["text/html"]


def test_email_refuses_an_untrusted_certificate(tmp_path: Path, smtp: SmtpServer) -> None:
    row_payload = {"alerts": [alert()]}
    from cachetop.alerts.outbox import Message

    row = Message(
        1, "mail", "firing", row_payload, WALL, WALL + 60, "sending", 0, WALL, None, None, None, None
    )
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    for ca_file in (None, str(other_ca)):  # the system store, then a CA that did not sign it
        outcome = EmailNotifier(email_channel(smtp, ca_file=ca_file)).send(row, None)
        assert isinstance(outcome, Permanent)
        assert outcome.error.startswith("email: 127.0.0.1's certificate is not trusted (")
        assert "smtp-secret-pw" not in outcome.error
    assert smtp.delivered == [] and smtp.logins == []
    assert isinstance(EmailNotifier(email_channel(smtp)).send(row, None), Delivered)


def test_email_over_implicit_tls(tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller

    from cachetop.servers import free_port
    from tests.alert_servers import _Collect, smtp_tls_context

    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = SmtpServer(free_port(), ca_file, [], [], [], None)  # type: ignore[arg-type]
    server.controller = Controller(_Collect(server), hostname="127.0.0.1", port=server.port,
                                   ssl_context=smtp_tls_context(ca))  # fmt: skip
    server.controller.start()
    try:
        channel = email_channel(server, tls="ssl", username=None, password=None)
        row = Message(
            1, "mail", "firing", {"alerts": [alert()]}, WALL, WALL, "sending", 0, WALL, None, None, None, None
        )
        assert isinstance(EmailNotifier(channel).send(row, None), Delivered)
        assert [m["Subject"] for m in server.delivered] == ["[FIRING] low-hit on cache-1"]
    finally:
        server.controller.stop()


def test_alerts_test_command_sends_one_message_and_reports_refusals(
    tmp_path: Path, slack: SlackStandIn, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from cachetop.cli import main

    path = tmp_path / "cachetop.toml"
    path.write_text(
        f"""
[[instance]]
name = "cache-1"
url = "redis://127.0.0.1:6379"

[channel.ops-slack]
type = "slack"
webhook_url = "{slack.webhook_url}"

[channel.mail]
type = "email"
host = "127.0.0.1"
port = {smtp.port}
ca_file = "{smtp.ca_file}"
username = "alerts"
password = "smtp-secret-pw"
from = "cachetop@example.com"
to = "oncall@example.com"
"""
    )
    assert main(["alerts", "test", "ops-slack", "-c", str(path)]) == 0
    assert main(["alerts", "test", "mail", "-c", str(path)]) == 0
    assert capsys.readouterr().out == "sent a test message to ops-slack\nsent a test message to mail\n"
    assert [r.body["blocks"][0]["text"]["text"] for r in slack.delivered] == ["cachetop test message"]
    assert [m["Subject"] for m in smtp.delivered] == ["cachetop test message"]
    slack.script = [(403, {})]
    assert main(["alerts", "test", "ops-slack", "-c", str(path)]) == 1
    err = capsys.readouterr().err
    assert err == "cachetop: test message to ops-slack refused (permanent): slack webhook: HTTP 403: error\n"
    assert main(["alerts", "test", "pager", "-c", str(path)]) == 2
    assert capsys.readouterr().err.endswith(
        "alerts test: no channel 'pager' in " + str(path) + " (mail, ops-slack)\n"
    )
