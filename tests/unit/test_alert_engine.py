"""The alert state machine, promtool-style: a series of values at given times, with the state and
the notifications expected after each evaluation. No sleeps: the clock is a number we pass in."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import pytest

from cachetop.alerts.engine import AlertEngine, State
from cachetop.alerts.notify.render import fields, subject
from cachetop.alerts.rules import Rule
from cachetop.model import InstanceMetrics, Snapshot, Status

WALL0 = 1_800_000_000.0

LOW_HIT = Rule(
    name="low-hit",
    metric="hit_ratio",
    op="<",
    threshold=90.0,
    for_s=30.0,
    cooldown_s=3600.0,
    channels=("ops",),
)


def inst(value: float | None, *, name: str = "cache-1", status: Status = Status.UP, error: str | None = None,
         tags: tuple[str, ...] = ()) -> InstanceMetrics:  # fmt: skip
    return InstanceMetrics(name, "redis", "127.0.0.1:1", status, error, {"hit_ratio": value}, tags=tags)


def run_series(rule: Rule, series: list[tuple[float, float | None, str, list[str]]]) -> None:
    """series: (time, value, expected state, expected notification kinds) per evaluation."""
    engine = AlertEngine([rule])
    for t, value, want_state, want_kinds in series:
        result = engine.evaluate(Snapshot(WALL0 + t, 10.0, (inst(value),)), now=t)
        got = (str(engine.state(rule.name, "cache-1")), [n.kind for n in result.notifications])
        assert got == (want_state, want_kinds), f"at t={t}"


def test_pending_then_firing_then_resolved_then_ok() -> None:
    run_series(
        LOW_HIT,
        [
            (0, 95, "ok", []),
            (10, 80, "pending", []),
            (30, 80, "pending", []),
            (40, 85, "firing", ["firing"]),  # held 30 s since t=10
            (50, 85, "firing", []),
            (60, 95, "resolved", ["resolved"]),
            (70, 95, "ok", []),
        ],
    )


def test_pending_back_to_ok_sends_nothing() -> None:
    run_series(
        LOW_HIT,
        [
            (0, 80, "pending", []),
            (29, 80, "pending", []),
            (30, 91, "ok", []),
            (45, 80, "pending", []),  # a new pending period: the `for` clock starts again
            (74, 80, "pending", []),
            (75, 80, "firing", ["firing"]),
        ],
    )


def test_repeats_every_cooldown_anchored_to_the_firing_time() -> None:
    rule = replace(LOW_HIT, for_s=0.0, cooldown_s=3.0)
    run_series(
        rule,
        [
            (0.0, 10, "firing", ["firing"]),
            (2.9, 10, "firing", []),
            (3.2, 10, "firing", ["repeat"]),
            (5.9, 10, "firing", []),
            (6.0, 10, "firing", ["repeat"]),  # 6 = 0 + 2*3, not 3.2 + 3
            (9.1, 10, "firing", ["repeat"]),
            (16.0, 10, "firing", ["repeat"]),  # a long gap: one repeat, not a burst of two
            (17.9, 10, "firing", []),
            (18.0, 10, "firing", ["repeat"]),
            (19.0, 99, "resolved", ["resolved"]),
        ],
    )


def test_hysteresis_holds_firing_until_clear_threshold() -> None:
    rule = replace(LOW_HIT, for_s=0.0, clear_threshold=92.0)
    run_series(
        rule,
        [
            (0, 89, "firing", ["firing"]),
            (1, 90.5, "firing", []),  # above threshold, still below clear_threshold
            (2, 89.5, "firing", []),
            (3, 91.9, "firing", []),
            (4, 92, "resolved", ["resolved"]),
            (5, 91, "ok", []),  # not breaching the threshold: no new pending
            (6, 89, "firing", ["firing"]),
        ],
    )


def test_keep_firing_for_damps_a_flap() -> None:
    rule = replace(LOW_HIT, for_s=0.0, keep_firing_for_s=10.0)
    run_series(
        rule,
        [
            (0, 50, "firing", ["firing"]),
            (1, 95, "firing", []),  # cleared, but kept firing
            (5, 50, "firing", []),  # back within keep_firing_for: no resolve, no new firing
            (6, 95, "firing", []),
            (15, 95, "firing", []),
            (16, 95, "resolved", ["resolved"]),  # 10 s after it cleared at t=6
        ],
    )


@pytest.mark.parametrize(
    ("no_data", "expected"),
    [
        ("keep_state", [("firing", []), ("firing", []), ("firing", ["repeat"]), ("resolved", ["resolved"])]),
        ("ok", [("resolved", ["resolved"]), ("ok", []), ("ok", []), ("ok", [])]),
        ("alerting", [("firing", []), ("firing", []), ("firing", ["repeat"]), ("resolved", ["resolved"])]),
    ],
)
def test_no_data_while_firing(no_data: str, expected: list[tuple[str, list[str]]]) -> None:
    rule = replace(LOW_HIT, for_s=0.0, cooldown_s=10.0, no_data=no_data)
    series = [(0.0, 50.0, "firing", ["firing"])]
    for (t, value), (state, kinds) in zip(
        [(1, None), (5, None), (10, None), (11, 95)], expected, strict=True
    ):
        series.append((float(t), value, state, kinds))
    run_series(rule, series)


@pytest.mark.parametrize(
    ("no_data", "states"),
    [
        ("keep_state", ["ok", "pending", "pending", "ok"]),
        ("alerting", ["pending", "pending", "firing", "resolved"]),
    ],
)
def test_no_data_from_ok_and_pending(no_data: str, states: list[str]) -> None:
    rule = replace(LOW_HIT, for_s=30.0, no_data=no_data)
    engine = AlertEngine([rule])
    got = []
    for t, value in [(0, None), (10, 50.0), (45, None), (50, 95.0)]:
        engine.evaluate(Snapshot(WALL0 + t, 10.0, (inst(value),)), now=float(t))
        got.append(str(engine.state("low-hit", "cache-1")))
    assert got == states


def test_send_resolved_false_sends_only_firing() -> None:
    run_series(
        replace(LOW_HIT, for_s=0.0, send_resolved=False),
        [(0, 50, "firing", ["firing"]), (1, 95, "resolved", []), (2, 95, "ok", [])],
    )


def test_notification_carries_what_the_message_needs() -> None:
    engine = AlertEngine([replace(LOW_HIT, for_s=30.0)])
    engine.evaluate(Snapshot(WALL0 + 5, 10.0, (inst(70.0),)), now=5.0)
    result = engine.evaluate(Snapshot(WALL0 + 40, 10.0, (inst(60.0),)), now=40.0)
    (n,) = result.notifications
    assert (n.kind, n.rule, n.instance, n.metric, n.op, n.threshold, n.value, n.severity, n.channels) == (
        "firing", "low-hit", "cache-1", "hit_ratio", "<", 90.0, 60.0, "warning", ("ops",),
    )  # fmt: skip
    assert (n.started_at, n.active_for_s, n.time) == (WALL0 + 5, 35.0, WALL0 + 40)
    assert n.episode == f"low-hit/cache-1/{int((WALL0 + 40) * 1000)}"
    [t] = result.transitions
    assert (t.old, t.new) == (State.PENDING, State.FIRING)
    resolved = engine.evaluate(Snapshot(WALL0 + 50, 10.0, (inst(99.0),)), now=50.0).notifications
    assert [(r.kind, r.episode, r.value, r.active_for_s) for r in resolved] == [
        ("resolved", n.episode, 99.0, 45.0)
    ]


def test_instance_down_rule_carries_the_reason_and_selection_by_glob_and_tag() -> None:
    down = Rule(
        "instance_down", "status", "!=", "up", for_s=0.0, instances=("cache-*", "tag:prod"), channels=("x",)
    )
    engine = AlertEngine([down])
    snap = Snapshot(
        WALL0,
        10.0,
        (
            inst(None, name="cache-1", status=Status.DOWN, error="connection refused"),
            inst(None, name="db-1", status=Status.AUTH_FAILED, error="WRONGPASS", tags=("prod",)),
            inst(None, name="other", status=Status.DOWN, error="timeout"),
            inst(None, name="cache-2", status=Status.UP),
            inst(None, name="cache-3", status=Status.UNKNOWN),  # not polled yet: no data, not down
        ),
    )
    result = engine.evaluate(snap, now=0.0)
    assert sorted((n.instance, n.value, n.reason) for n in result.notifications) == [
        ("cache-1", "down", "connection refused"),
        ("db-1", "auth_failed", "WRONGPASS"),
    ]
    up = Snapshot(WALL0 + 1, 10.0, (inst(None, name="cache-1"),))
    result = engine.evaluate(up, now=1.0)
    # cache-1 is back up; db-1 vanished from the snapshot and keeps its state (no_data = keep_state).
    assert [(n.kind, n.instance) for n in result.notifications] == [("resolved", "cache-1")]
    assert engine.state("instance_down", "db-1") == State.FIRING


def test_restart_restores_firing_alerts_so_the_resolved_notice_is_not_lost() -> None:
    rule = replace(LOW_HIT, for_s=0.0, cooldown_s=60.0)
    first = AlertEngine([rule], clock=lambda: 1000.0)
    fired = first.evaluate(Snapshot(WALL0, 10.0, (inst(50.0),))).notifications
    saved = first.export_state(wall=WALL0)  # the clock still reads 1000: no time has passed
    second = AlertEngine([rule], clock=lambda: 5.0)  # a new process: a different monotonic origin
    assert second.restore_state(saved, wall=WALL0 + 30) == 1
    assert second.state("low-hit", "cache-1") == State.FIRING
    repeat = second.evaluate(Snapshot(WALL0 + 60, 10.0, (inst(50.0),)), now=5.0 + 30).notifications
    assert [n.kind for n in repeat] == ["repeat"]  # 60 s after firing, as before the restart
    resolved = second.evaluate(Snapshot(WALL0 + 61, 10.0, (inst(95.0),)), now=5.0 + 31).notifications
    assert [(n.kind, n.episode) for n in resolved] == [("resolved", fired[0].episode)]


# --- flapping: what `cooldown` governs ------------------------------------------------------------

FLAPPY = replace(LOW_HIT, for_s=0.0, cooldown_s=3600.0)


def flap_for_40s(engine: AlertEngine) -> list[tuple[float, str, str | None]]:
    """The reported case: a rule that breaches for 2.5 s every 5 s, for 40 s (16 changes)."""
    sent = []
    for step in range(16):
        t = step * 2.5
        value = 80.0 if step % 2 == 0 else 95.0
        for n in engine.evaluate(Snapshot(WALL0 + t, 10.0, (inst(value),)), now=t).notifications:
            sent.append((t, n.kind, n.reason))
    return sent


def test_a_flapping_rule_sends_one_flapping_notice_then_one_when_it_settles_clear() -> None:
    engine = AlertEngine([FLAPPY])
    sent = flap_for_40s(engine)
    # Two fire/resolve pairs page as usual; the third firing within the cooldown is flapping.
    assert [(t, kind) for t, kind, _ in sent] == [
        (0.0, "firing"),
        (2.5, "resolved"),
        (5.0, "firing"),
        (7.5, "resolved"),
        (10.0, "flapping"),
    ]
    assert sent[-1][2] == "flapping: fired 3 times in 10s; no more notices until it holds one state for 1h00m"
    assert engine.flapping("low-hit", "cache-1")
    # Last change at 37.5 s (resolved). Quiet until it has been clear for the whole cooldown.
    quiet = [engine.evaluate(Snapshot(WALL0 + t, 10.0, (inst(95.0),)), now=t).notifications
             for t in (40.0, 600.0, 3637.4)]  # fmt: skip
    assert quiet == [(), (), ()]
    [settled] = engine.evaluate(Snapshot(WALL0 + 3637.5, 10.0, (inst(95.0),)), now=3637.5).notifications
    assert (settled.kind, settled.reason) == ("resolved", "stopped flapping: clear for 1h00m")
    # It answers the flapping notice (same episode), so Slack threads it and email replies to it.
    assert settled.episode == f"low-hit/cache-1/{int((WALL0 + 10.0) * 1000)}"
    assert not engine.flapping("low-hit", "cache-1")
    # Settled: a new firing pages again at once.
    [again] = engine.evaluate(Snapshot(WALL0 + 3700, 10.0, (inst(80.0),)), now=3700.0).notifications
    assert again.kind == "firing"


def test_a_flapping_rule_that_settles_firing_sends_one_repeat_after_a_quiet_cooldown() -> None:
    engine = AlertEngine([FLAPPY])
    assert len(flap_for_40s(engine)) == 5
    # Fires again at 40 s and stays firing: the repeat due an hour later says it settled.
    counts = []
    for t in (40.0, 41.0, 1800.0, 3639.9):
        counts.append(len(engine.evaluate(Snapshot(WALL0 + t, 10.0, (inst(80.0),)), now=t).notifications))
    assert counts == [0, 0, 0, 0]
    [settled] = engine.evaluate(Snapshot(WALL0 + 3640, 10.0, (inst(80.0),)), now=3640.0).notifications
    assert (settled.kind, settled.reason) == ("repeat", "stopped flapping: firing for 1h00m")
    assert not engine.flapping("low-hit", "cache-1")
    [repeat] = engine.evaluate(Snapshot(WALL0 + 7240, 10.0, (inst(80.0),)), now=7240.0).notifications
    assert repeat.kind == "repeat"  # and then the usual repeats, every cooldown


def test_firings_further_apart_than_the_cooldown_are_not_flapping() -> None:
    rule = replace(FLAPPY, cooldown_s=10.0)
    engine = AlertEngine([rule])
    kinds = []
    for step in range(16):  # the same 5 s flap, but the user asked for a 10 s cooldown
        t = step * 2.5
        value = 80.0 if step % 2 == 0 else 95.0
        kinds += [
            n.kind for n in engine.evaluate(Snapshot(WALL0 + t, 10.0, (inst(value),)), now=t).notifications
        ]
    # A firing every 5 s is two per 10 s cooldown (the window is (t - 10 s, t]), never three.
    assert kinds == ["firing", "resolved"] * 8


def test_the_flapping_notice_is_titled_flapping_and_says_why() -> None:
    engine = AlertEngine([FLAPPY])
    notices = []
    for step in range(5):
        t = step * 2.5
        value = 80.0 if step % 2 == 0 else 95.0
        notices += engine.evaluate(Snapshot(WALL0 + t, 10.0, (inst(value),)), now=t).notifications
    payload = {"alerts": [dataclasses.asdict(notices[-1])]}  # what the outbox stores, and channels
    assert subject(payload) == "[FLAPPING] low-hit on cache-1"
    assert ("Reason", notices[-1].reason) in fields(payload["alerts"][0])
