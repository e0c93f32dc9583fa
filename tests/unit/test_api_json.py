"""The /api/v1 document and its way back (exporters/api_json.py), and the lost-daemon banner's text:
plain values, no server."""

from __future__ import annotations

import json
import time

import pytest

from cachetop.alerts.engine import ActiveAlert, State, Transition
from cachetop.alerts.service import AlertsView, DeliveryProblem
from cachetop.exporters.api_json import decode, encode, snapshot_from_json, snapshot_json
from cachetop.hotkeys.view import BigKey, HotKey, HotKeysView, PrefixStat, StampedeEvent
from cachetop.model import CommandStat, InstanceMetrics, Snapshot, Status
from cachetop.sources.attach import gap_snapshot
from cachetop.tui.widgets.header import link_banner
from cachetop.util.redact import register_secret


def _view() -> HotKeysView:
    raw = b"user:\x00\xff[bold]:1"  # not UTF-8, with markup: it must come back byte for byte
    return HotKeysView(
        name="c1", source="monitor", unit="ops", status="sampling", detail="MONITOR 1s on",
        keys=(HotKey(raw, "user:\\x00\\xff[bold]:1", 152, 76.0, 0.9, reads=150, writes=2, error=3, hot=True,
                     history=(1.0, 2.5)),),
        prefixes=(PrefixStat(b"user:*", "user:*", 152, 76.0, 0.9, hot=True),),
        big_keys=(BigKey(b"big", "big", 1 << 20),),
        stampedes=(StampedeEvent(b"k", "k", 1000.5, 3, 40),),
        stampede_events=1, drop_rate=None, total_events=170, sampled_s=1.0, window_s=10.0,
        keysizes={"strings": "0-64"}, min_share=0.05, min_ops=10.0,
    )  # fmt: skip


def test_a_snapshot_comes_back_equal_with_hot_keys_and_commands() -> None:
    inst = InstanceMetrics(
        "c1", "redis", "127.0.0.1:6379", Status.UP, None, {"hit_ratio": 75.0, "ops_per_sec": 200.0},
        tags=("eu",), facts={"redis_version": "7.0.15"},
        commands={"get": CommandStat(150.0, 1.5, 0.0, 0.01, 0.02, 0.03)}, last_poll=999.5,
        role="master", shard="0-16383", extras={"hotkeys": _view()}, counters={"hits": 10}, stale=True,
    )  # fmt: skip
    snap = Snapshot(time=1000.0, window_s=10.0, instances=(inst,))
    doc = snapshot_json(snap, seq=7, interval=1.0, daemon={"pid": 1})
    doc = json.loads(json.dumps(doc, allow_nan=False))  # as it travels
    assert (doc["seq"], doc["interval"], doc["alerts"]) == (7, 1.0, None)
    assert doc["instances"][0]["metrics"]["hit_ratio"] == 75.0  # the snapshot --json fields stay
    back = snapshot_from_json(doc, HotKeysView)
    assert back == snap


def test_alert_states_come_back_with_their_enums() -> None:
    view = AlertsView(
        active=(ActiveAlert("hit", "c1", State.FIRING, "critical", 41.5, "low", 990.0, metric="hit_ratio"),),
        history=(Transition("hit", "c1", State.PENDING, State.FIRING, 41.5, 990.0, "critical"),),
        problems=(DeliveryProblem(1, "slack", "firing", "pending", 2, "503", 991.0),),
        firing=1, pending=0, queued=1,
    )  # fmt: skip
    assert decode(AlertsView, json.loads(json.dumps(encode(view)))) == view


def test_the_document_holds_no_secret() -> None:
    secret = "hunter2-api-secret-42"
    register_secret(secret)
    inst = InstanceMetrics("c1", "redis", "127.0.0.1:1", Status.DOWN, f"AUTH failed for :{secret}@host", {})
    doc = snapshot_json(Snapshot(1.0, 1.0, (inst,)), seq=1, interval=1.0, daemon={})
    assert secret not in json.dumps(doc)


def test_a_gap_is_every_instance_unknown_without_values() -> None:
    inst = InstanceMetrics("c1", "redis", "a", Status.UP, None, {"hit_ratio": 75.0})
    gap = gap_snapshot(Snapshot(1000.0, 2.0, (inst,)), 1001.0, 1030.0)
    (only,) = gap.instances
    assert (gap.time, only.status, only.metrics, only.stale) == (1001.0, Status.UNKNOWN, {}, True)
    assert only.error is not None and only.error.startswith("no data from the daemon from ")


class _Link:
    def __init__(self, problem: str | None, last: float | None) -> None:
        self.link_problem, self.last_data, self.where = problem, last, "http://d:9150"


def test_the_banner_says_why_and_since_when() -> None:
    last = time.mktime((2026, 1, 2, 12, 3, 4, 0, 0, -1))
    assert link_banner(_Link(None, last)) == ""
    assert (
        link_banner(_Link("connection refused", last))
        == "DAEMON LOST · last data 12:03:04 · connection refused"
    )
    assert link_banner(_Link("the daemon refused the token (401)", None)) == (
        "NOT CONNECTED · the daemon refused the token (401)"
    )
    assert link_banner(object()) == ""


def test_the_catch_up_ring_is_bounded_in_frames_and_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    from cachetop.exporters import api

    monkeypatch.setattr(api, "RING_BYTES", 10_000)
    server = api.ApiServer("t" * 16)
    server.wanted_until = float("inf")  # as if a viewer had asked
    inst = InstanceMetrics("c1", "redis", "a", Status.UP, "x" * 1000, {})
    for n in range(50):
        server.on_snapshot(Snapshot(float(n), 1.0, (inst,)))
    assert server.ring_bytes == sum(len(f) for _, f in server.ring) <= 10_000
    assert [t for t, _ in server.ring] == [float(n) for n in range(50 - len(server.ring), 50)]
    assert len(server.ring) >= 5


def test_an_attach_url_names_the_daemon_and_never_a_credential() -> None:
    from cachetop.sources.http_client import Endpoint

    assert Endpoint.parse("https://mon.internal:9150/cachetop/") == Endpoint(
        "https", "mon.internal", 9150, "/cachetop"
    )
    assert Endpoint.parse("http://127.0.0.1").port == 80
    for bad in ("redis://127.0.0.1:6379", "http://user:tok3n@127.0.0.1:9150", "127.0.0.1:9150"):
        with pytest.raises(ValueError) as err:
            Endpoint.parse(bad)
        assert "tok3n" not in str(err.value)


def test_a_rule_comes_back_and_judges_as_the_daemon_does() -> None:
    from dataclasses import replace

    from cachetop.alerts.rules import Rule
    from cachetop.tui.health import Health

    rule = Rule("low-hit", "hit_ratio", "<", 90.0, severity="critical", instances=("tag:eu",),
                channels=("ops",), where="/etc/c.toml:12")  # fmt: skip
    wire = {k: v for k, v in encode(rule).items() if k not in ("channels", "where")}
    back = decode(Rule, json.loads(json.dumps(wire)))
    assert back == replace(rule, channels=None, where="")
    inst = InstanceMetrics("c1", "redis", "a", Status.UP, None, {"hit_ratio": 95.0}, tags=("eu",))
    assert Health([back]).level(inst, "hit_ratio", 85.0) == "bad"  # the default levels would say warn
    assert Health().level(inst, "hit_ratio", 85.0) == "warn"
