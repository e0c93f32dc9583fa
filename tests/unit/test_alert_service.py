"""AlertService without a network: grouping per tick, resolved notices tied to their firing
message, the one-process-per-state_dir lock, the read API for screens, and the backoff curve."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from cachetop.alerts.channels import SlackChannel
from cachetop.alerts.delivery import backoff_delay
from cachetop.alerts.engine import State
from cachetop.alerts.outbox import Outbox
from cachetop.alerts.rules import Rule
from cachetop.alerts.service import AlertService, AlertsLocked
from cachetop.engine.config import Config, Settings
from cachetop.model import InstanceMetrics, Snapshot, Status
from cachetop.tui.widgets.alerts_panel import problems_line
from cachetop.tui.widgets.header import alerts_badge
from tests.conftest import TinyFs

WALL0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def config(tmp_path: Path) -> Config:
    rules = (
        Rule("low-hit", "hit_ratio", "<", 50.0, channels=("a", "b")),
        Rule("many-conns", "connections", ">", 100.0, channels=("a",)),
    )
    channels = {
        "a": SlackChannel(name="a", webhook_url="https://hooks.example/A-SECRET"),
        "b": SlackChannel(name="b", token="xoxb-B-SECRET", channel="#b"),
    }
    return Config(
        path=None,
        settings=Settings(state_dir=tmp_path / "state"),
        instances=(),
        sections={"rule": rules, "channel": channels},
    )


def snap(t: float, **per_instance: tuple[float, float]) -> Snapshot:
    return Snapshot(
        WALL0 + t,
        10.0,
        tuple(
            InstanceMetrics(name, "redis", "h:1", Status.UP, None, {"hit_ratio": hit, "connections": conns})
            for name, (hit, conns) in per_instance.items()
        ),
    )


async def test_alerts_of_one_tick_become_one_message_per_channel(tmp_path: Path) -> None:
    clock = Clock()
    service = AlertService(config(tmp_path), clock=clock, notifiers={})  # no senders: rows stay queued
    async with service:
        assert service.outbox is not None
        service.on_snapshot(snap(0, c1=(10.0, 500.0), c2=(20.0, 5.0)))
        rows = service.outbox.recent(10)[::-1]
        assert [
            (m.channel, m.kind, [(a["rule"], a["instance"]) for a in m.payload["alerts"]]) for m in rows
        ] == [
            ("a", "firing", [("low-hit", "c1"), ("low-hit", "c2"), ("many-conns", "c1")]),
            ("b", "firing", [("low-hit", "c1"), ("low-hit", "c2")]),
        ]
        clock.now = 5.0
        service.on_snapshot(snap(5, c1=(90.0, 500.0), c2=(90.0, 5.0)))  # low-hit resolves on both
        resolved = [m for m in service.outbox.recent(10)[::-1] if m.kind == "resolved"]
        assert [(m.channel, m.thread_of, len(m.payload["alerts"])) for m in resolved] == [
            ("a", rows[0].id, 2),
            ("b", rows[1].id, 2),
        ]
        view = service.state()
        assert [(a.rule, a.instance, a.state) for a in view.active] == [("many-conns", "c1", State.FIRING)]
        assert (view.firing, view.pending, view.queued) == (1, 0, 4)
        assert [(t.rule, t.instance, t.old, t.new) for t in view.history][:2] == [
            ("low-hit", "c2", State.FIRING, State.RESOLVED),
            ("low-hit", "c1", State.FIRING, State.RESOLVED),
        ]


async def test_a_second_alerting_process_on_the_same_state_dir_is_refused(tmp_path: Path) -> None:
    async with AlertService(config(tmp_path), notifiers={}):
        with pytest.raises(
            AlertsLocked, match=r"alerts are already handled by another cachetop process \(pid \d+\)"
        ):
            await AlertService(config(tmp_path), notifiers={}).start()
    async with AlertService(config(tmp_path), notifiers={}):  # released on stop
        pass


async def test_delivery_failures_show_in_the_read_api(tmp_path: Path) -> None:
    service = AlertService(config(tmp_path), notifiers={})
    async with service:
        assert service.outbox is not None
        first = service.outbox.enqueue("a", "firing", {"alerts": []}, deadline_s=60)
        second = service.outbox.enqueue("b", "firing", {"alerts": []}, deadline_s=60)
        service.outbox.mark_final(first, "failed", "slack webhook: HTTP 404")
        service.outbox.mark_retry(second, "slack chat.postMessage: HTTP 500", WALL0)
        problems = service.state().problems
        assert [(p.message_id, p.channel, p.state, p.error) for p in problems] == [
            (second, "b", "pending", "slack chat.postMessage: HTTP 500"),
            (first, "a", "failed", "slack webhook: HTTP 404"),
        ]


def test_outbox_survives_a_reopen_and_hands_out_each_channel_in_order(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    first = Outbox(path, clock=lambda: WALL0)
    a1 = first.enqueue("a", "firing", {"alerts": [{"episode": "e1"}]}, deadline_s=60)
    a2 = first.enqueue("a", "resolved", {"alerts": [{"episode": "e1"}]}, deadline_s=60, thread_of=a1)
    b1 = first.enqueue("b", "firing", {"alerts": [{"episode": "e1"}]}, deadline_s=60)
    first.mark_sending(a1)  # then the process dies
    first.close()
    second = Outbox(path, clock=lambda: WALL0 + 1)
    assert second.recover() == 1
    assert [second.head("a").id, second.head("b").id] == [a1, b1]  # type: ignore[union-attr]
    second.mark_delivered(a1, "ts-1")
    assert second.head("a").id == a2  # type: ignore[union-attr]
    assert second.delivered_episodes("a", ["e1", "e2"]) == {"e1"}
    assert second.delivered_episodes("b", ["e1"]) == set()
    assert second.first_message_for("a", "e1").id == a1  # type: ignore[union-attr]
    assert second.get(a1).attempts == 1  # type: ignore[union-attr]


def test_backoff_doubles_with_equal_jitter_and_a_cap() -> None:
    low = [backoff_delay(n, 1.0, 300.0, lambda: 0.0) for n in range(1, 12)]
    high = [backoff_delay(n, 1.0, 300.0, lambda: 1.0) for n in range(1, 12)]
    assert low == [0.5, 1, 2, 4, 8, 16, 32, 64, 128, 150, 150]
    assert high == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]


async def test_a_full_state_dir_keeps_notices_in_memory_and_says_so(
    tmp_path: Path, tiny_fs: TinyFs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real full tmpfs under state_dir: nothing is lost, the screens are told, and the outbox is
    written back (with the same message ids) when space returns."""
    subprocess.run(["mount", "-o", "remount,size=1m", str(tiny_fs.path)], check=True, timeout=10)
    base = config(tmp_path)
    cfg = replace(base, settings=replace(base.settings, state_dir=tiny_fs.path / "state"))
    service = AlertService(cfg, clock=Clock(), notifiers={})  # no senders: rows stay queued
    async with service:
        monkeypatch.setattr("cachetop.alerts.service.PERSIST_RETRY_S", 0.0)  # every tick
        tiny_fs.fill()
        service.on_snapshot(snap(0, c1=(10.0, 5.0)))  # low-hit fires: a message to a and to b
        view = service.state()
        assert (view.firing, view.queued, view.unpersisted) == (1, 2, 3)  # + the engine's state
        assert view.write_errors == 1
        assert view.storage_problem is not None
        assert "(database or disk is full): 3 change(s) in memory only, retrying" in view.storage_problem
        assert problems_line(view).startswith("⚠ alert state not saved since ")
        assert alerts_badge(replace(view, firing=0)) == (" ⚠ alert state not saved ", "error")
        # Resolved notices still find their firing message, in memory.
        service.on_snapshot(snap(1, c1=(90.0, 5.0)))
        view = service.state()
        assert (view.unpersisted, view.write_errors) == (6, 2)  # and the write-back failed again
        on_file = Outbox(tiny_fs.path / "state" / "alerts.sqlite3")
        assert on_file.counts() == {}
        tiny_fs.free()
        service.on_snapshot(snap(2, c1=(90.0, 5.0)))
        view = service.state()
        assert (view.storage_problem, view.unpersisted, view.write_errors) == (None, 0, 2)
        rows = [(m.id, m.channel, m.kind, m.thread_of) for m in reversed(on_file.recent())]
        assert rows == [(1, "a", "firing", None), (2, "b", "firing", None), (3, "a", "resolved", 1),
                        (4, "b", "resolved", 2)]  # fmt: skip
        on_file.close()
