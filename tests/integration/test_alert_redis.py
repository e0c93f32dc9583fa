"""Acceptance: real Redis traffic drives a hit-ratio rule through the real Monitor, and the alerts
arrive at a Slack stand-in (slack-sdk over HTTP) and at aiosmtpd (smtplib over STARTTLS)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
import redis as redis_py

from cachetop.alerts.engine import State
from cachetop.alerts.service import AlertService
from cachetop.engine.config import load_config
from cachetop.engine.monitor import Monitor
from cachetop.model import Snapshot
from cachetop.servers import LocalServer
from tests.alert_servers import SlackStandIn, SmtpServer
from tests.conftest import until
from tests.monitoring import one_instance_toml

pytestmark = pytest.mark.slow


class Traffic:
    """GETs on a background thread: on keys that do not exist (misses) or on one that does (hits)."""

    def __init__(self, port: int) -> None:
        self.client = redis_py.Redis(port=port)
        self.client.set("present", "1")
        self.mode = "miss"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            self.client.get("present" if self.mode == "hit" else f"absent:{n}")
            time.sleep(0.002)  # pacing, ~400 reads/s: enough for a clear ratio, kind to 2 shared cores

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.client.close()


def write_config(tmp_path: Path, redis: LocalServer, smtp: SmtpServer, cooldown: str) -> Path:
    path = tmp_path / "cachetop.toml"
    path.write_text(
        one_instance_toml(tmp_path, redis.url)
        + f"""
[[rule]]
name = "low-hit-ratio"
metric = "hit_ratio"
op = "<"
threshold = 50
for = "2s"
cooldown = "{cooldown}"
severity = "critical"
channels = ["ops-slack", "oncall-mail"]

[channel.ops-slack]
type = "slack"
webhook_url = "${{SLACK_WEBHOOK_URL}}"

[channel.oncall-mail]
type = "email"
host = "127.0.0.1"
port = {smtp.port}
tls = "starttls"
ca_file = "{smtp.ca_file}"
username = "alerts"
password = "${{SMTP_PASSWORD}}"
from = "cachetop@example.com"
to = ["oncall@example.com"]
"""
    )
    return path


def subjects(slack: SlackStandIn, smtp: SmtpServer) -> tuple[list[str], list[str]]:
    return (
        [r.body["blocks"][0]["text"]["text"] for r in slack.delivered],
        [str(m["Subject"]) for m in smtp.delivered],
    )


class RecordingClock:
    """time.monotonic for the alert engine, remembering every reading (the engine reads it once per
    evaluation, first thing)."""

    def __init__(self) -> None:
        self.readings: list[float] = []

    def __call__(self) -> float:
        self.readings.append(time.monotonic())
        return self.readings[-1]


class Decisions:
    """Evaluates each snapshot (as AlertService.attach does) and records, on the engine's clock, every
    evaluation's time and each notification's kind with the evaluation that decided it."""

    def __init__(self, alerts: AlertService, clock: RecordingClock) -> None:
        self.alerts, self.clock = alerts, clock
        self.evaluations: list[float] = []
        self.notices: list[tuple[float, str]] = []

    def __call__(self, snapshot: Snapshot) -> None:
        first = len(self.clock.readings)
        result = self.alerts.on_snapshot(snapshot)
        now = self.clock.readings[first]
        self.evaluations.append(now)
        self.notices += [(now, n.kind) for n in result.notifications]


class StateLog:
    """The rule's state after each snapshot, with the monotonic time it was first seen."""

    def __init__(self, alerts: AlertService) -> None:
        self.alerts = alerts
        self.changes: list[tuple[float, State]] = []

    def __call__(self, _snapshot: object) -> None:
        state = self.alerts.engine.state("low-hit-ratio", "cache-1")
        if not self.changes or self.changes[-1][1] != state:
            self.changes.append((time.monotonic(), state))

    def since(self, state: State) -> float:
        return next(t for t, s in reversed(self.changes) if s == state)

    @property
    def current(self) -> State | None:
        return self.changes[-1][1] if self.changes else None


async def test_misses_page_once_on_each_channel_and_hits_resolve_once(
    tmp_path: Path,
    redis: LocalServer,
    slack: SlackStandIn,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.webhook_url)
    monkeypatch.setenv("SMTP_PASSWORD", "smtp-secret-pw")
    config = load_config(write_config(tmp_path, redis, smtp, cooldown="1h"))
    with Traffic(redis.port) as traffic:
        async with AlertService(config) as alerts, Monitor(config) as monitor:
            alerts.attach(monitor)
            states = StateLog(alerts)
            monitor.subscribe(states)
            await until(lambda: states.current == State.PENDING, 10, "pending")
            await until(lambda: states.current == State.FIRING, 10, "firing")
            # Pending held the full `for` (2 s, give or take a 0.2 s tick) and sent nothing.
            assert states.since(State.FIRING) - states.since(State.PENDING) >= 1.8
            await until(
                lambda: len(slack.delivered) == 1 and len(smtp.delivered) == 1, 10, "the firing notices"
            )
            traffic.mode = "hit"
            await until(
                lambda: len(slack.delivered) == 2 and len(smtp.delivered) == 2, 10, "the resolved notices"
            )
            assert states.current in (State.RESOLVED, State.OK)
            # Let a few more ticks pass in the healthy state: nothing else may arrive.
            await monitor.wait_snapshot(lambda s: True, timeout=5)
            await monitor.wait_polls(monitor.pollers[0].polls + 3, timeout=5)
    slack_subjects, mail_subjects = subjects(slack, smtp)
    expected = ["[FIRING] low-hit-ratio on cache-1", "[RESOLVED] low-hit-ratio on cache-1"]
    assert slack_subjects == expected and mail_subjects == expected
    assert [r.status for r in slack.requests] == [200, 200]
    first_state = next(t for t, s in states.changes if s == State.PENDING)
    assert all(r.time > first_state + 1.8 for r in slack.requests)  # none while pending
    assert smtp.delivered[1]["In-Reply-To"] == smtp.delivered[0]["Message-ID"]
    log_text = caplog.text
    assert "alert low-hit-ratio on cache-1: ok -> pending" in log_text
    assert "alert low-hit-ratio on cache-1: pending -> firing" in log_text
    for secret in (slack.webhook_url, "XXXXSECRETXXXX", "smtp-secret-pw"):
        assert secret not in log_text


async def test_cooldown_3s_held_10s_repeats_exactly_three_times(
    tmp_path: Path, redis: LocalServer, slack: SlackStandIn, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.webhook_url)
    monkeypatch.setenv("SMTP_PASSWORD", "smtp-secret-pw")
    config = load_config(write_config(tmp_path, redis, smtp, cooldown="3s"))
    clock = RecordingClock()
    with Traffic(redis.port) as traffic:
        async with AlertService(config, clock=clock) as alerts, Monitor(config) as monitor:
            decisions = Decisions(alerts, clock)
            monitor.subscribe(decisions)
            states = StateLog(alerts)
            monitor.subscribe(states)
            await until(lambda: states.current == State.FIRING, 15, "firing")
            fired_at = states.since(State.FIRING)
            # Held for 10 s after firing: repeats are due at +3, +6 and +9 s.
            await until(lambda: time.monotonic() >= fired_at + 10.0, 12, "10 s of firing")
            traffic.mode = "hit"
            await until(lambda: states.current in (State.RESOLVED, State.OK), 10, "resolved")
            assert states.since(State.RESOLVED) < fired_at + 12.0  # before a fourth repeat was due
            await until(
                lambda: len(slack.delivered) == 5 and len(smtp.delivered) == 5, 10, "five messages each"
            )
    slack_subjects, mail_subjects = subjects(slack, smtp)
    expected = [
        "[FIRING] low-hit-ratio on cache-1",
        *["[STILL FIRING] low-hit-ratio on cache-1"] * 3,
        "[RESOLVED] low-hit-ratio on cache-1",
    ]
    assert slack_subjects == expected and mail_subjects == expected
    # Each repeat was decided at the first evaluation at or after firing + 3k s, on the engine's own
    # clock (delivery times add the outbox's and the HTTP stand-in's latency, which a loaded machine
    # stretches; they only have to come in order, after their decisions).
    kinds = [kind for _, kind in decisions.notices]
    assert kinds == ["firing", "repeat", "repeat", "repeat", "resolved"]
    fired = decisions.notices[0][0]
    for k, (decided, _) in enumerate(decisions.notices[1:4], start=1):
        assert decided >= fired + 3.0 * k
        assert max(t for t in decisions.evaluations if t < decided) < fired + 3.0 * k  # no tick skipped
    received = [r.time for r in slack.delivered]
    assert received == sorted(received)
    assert all(r >= d for r, (d, _) in zip(received, decisions.notices, strict=True))
