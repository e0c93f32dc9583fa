"""Advice and imbalance from a live Snapshot, with plain numbers: peers, replicas, the fleet badge."""

from __future__ import annotations

from dataclasses import replace

import pytest
from redis.crc import key_slot

from cachetop.analysis.snapshot_advice import cluster_imbalance, instance_advice, shard_imbalance
from cachetop.hotkeys.view import HotKey, HotKeysView
from cachetop.model import InstanceMetrics, Snapshot, Status
from cachetop.tui.columns import layout
from cachetop.tui.health import Health
from cachetop.tui.history import History
from cachetop.tui.hotkey_advice_text import advice_line, node_line
from cachetop.tui.overview_rows import ViewState, build_rows


def node(port: int, shard: str, ops: float, role: str = "master", **extras: object) -> InstanceMetrics:
    address = f"127.0.0.1:{port}"
    metrics = {"ops_per_sec": ops, "cpu_pct": ops / 100}
    return InstanceMetrics(
        f"shop/{address}", "redis", address, Status.UP, None, metrics, role=role, shard=shard, extras=extras
    )


def view(*keys: HotKey) -> HotKeysView:
    return HotKeysView("n", "monitor", "ops", "sampling", keys=keys, sampled_s=10.0)


HOT = HotKey(b"hot:1", "hot:1", 4000, 400.0, 2 / 3, reads=3950, writes=50, hot=True)
COLD = HotKey(b"cold:1", "cold:1", 100, 10.0, 1 / 60, reads=100, writes=0)


def cluster(hot_extras: dict[str, object], replicas: int = 0) -> Snapshot:
    nodes = [
        node(7001, "0-5460", 600.0, **hot_extras),
        node(7002, "5461-10922", 200.0),
        node(7003, "10923-16383", 200.0),
    ]
    nodes += [node(7100 + i, "0-5460", 0.0, role="replica") for i in range(replicas)]
    return Snapshot(0.0, 10.0, tuple(nodes))


def test_a_cluster_node_is_judged_against_its_peer_masters() -> None:
    result = instance_advice(cluster({"hotkeys": view(HOT, COLD)}), "shop/127.0.0.1:7001")
    assert result is not None and result.node is not None
    assert (result.node.imbalance, result.node.cpu_imbalance) == (pytest.approx(1.8), pytest.approx(1.8))
    assert [(a.kind, a.key) for a in result.advice] == [("client_cache", "hot:1"), ("split", "hot:1")]
    # share 2/3 of the node, (3950 - 50) / 4000 of it removable
    assert result.advice[0].expected_ops_reduction_pct == pytest.approx(65.0)
    assert result.for_key(b"cold:1") == []
    assert advice_line(result, b"hot:1") == (
        "advice: cache it in the client (CLIENT TRACKING): -65% of this node's ops;"
        " then split it into 3 copies (-44%)"
    )
    assert (key_slot(b"hot:1"), key_slot(b"cold:1")) == (7721, 12474)
    assert node_line(result) == (
        "node: 600 ops/s, 1.80x the cluster mean (cpu 1.80x); 0 replicas;"
        " of the excess: slot 7721 150%, slot 12474 4%"
    )
    assert cluster_imbalance(cluster({}), "shop") == ("shop/127.0.0.1:7001", pytest.approx(1.8))


def test_the_node_line_shows_a_hostile_key_escaped_once() -> None:
    # One hot key in one slot: the node's contributors are that slot, then that key.
    raw = b"a\\b\x1b[31m" + b"k" * 40  # a backslash, and a real ESC
    hostile = HotKey(raw, "a\\b*", 4000, 400.0, 2 / 3, reads=3950, writes=50, hot=True)
    result = instance_advice(cluster({"hotkeys": view(hostile)}), "shop/127.0.0.1:7001")
    assert result is not None
    line = node_line(result)
    # each escape once (a\\b, \\x1b), the whole cut to 24 cells
    assert line.endswith(" 150%, key " + "a" + "\\" * 2 + "b" + "\\" + "x1b[31m" + "k" * 11 + "… 150%"), line
    assert "\x1b" not in line


def test_replica_reads_where_the_shard_has_a_replica() -> None:
    result = instance_advice(cluster({"hotkeys": view(HOT)}, replicas=1), "shop/127.0.0.1:7001")
    assert result is not None
    [replica] = [a for a in result.advice if a.kind == "replica_reads"]
    assert replica.expected_ops_reduction_pct == pytest.approx(100 * 2 / 3 * 3950 / 4000 / 2)


def test_the_fleet_view_marks_the_hot_shard() -> None:
    snap = cluster({})
    assert shard_imbalance(snap) == {
        ("shop", "0-5460"): pytest.approx(1.8),
        ("shop", "5461-10922"): pytest.approx(0.6),
        ("shop", "10923-16383"): pytest.approx(0.6),
    }
    rows = build_rows(snap, History(), ViewState(), layout(80), Health())
    groups = [r.cells["name"][0] for r in rows if r.key.startswith("__group__")]
    assert groups == ["▾ ⚖1.8x s1 0-5460 (1)", "▾ s2 5461-10922 (1)", "▾ s3 10923-16383 (1)"]


def test_an_instance_without_ops_yet_gets_no_advice() -> None:
    idle = replace(node(7001, "0-5460", 0.0), metrics={"ops_per_sec": None})
    result = instance_advice(Snapshot(0.0, 10.0, (idle,)), idle.name)
    assert result is not None and (result.node, result.advice) == (None, ())
    assert node_line(result) == "node: no ops/s yet"
