"""Hot-key advice and cluster balance with plain numbers: exact shares, N, ranking and what is left out."""

from __future__ import annotations

import pytest

from cachetop.analysis.hotkey_advice import (
    KeyTraffic,
    advise,
    client_cache_pct,
    key_facts,
    replica_reads_pct,
)
from cachetop.analysis.node_balance import NodeLoad, balance, imbalance, plan_slot_move, plan_split

THREE = [NodeLoad("a", 600.0), NodeLoad("b", 200.0), NodeLoad("c", 200.0)]


def test_imbalance_is_value_over_the_mean() -> None:
    assert imbalance(600.0, [600.0, 200.0, 200.0]) == pytest.approx(1.8)
    assert imbalance(0.0, [0.0, 0.0]) is None
    assert imbalance(5.0, [5.0, None]) is None


def test_balance_names_what_makes_the_difference() -> None:
    nodes = [NodeLoad("a", 600.0, 6000.0, 30.0), NodeLoad("b", 200.0, 3000.0, 15.0), NodeLoad("c", 200.0)]
    a, b, c = balance(nodes, hot_slots={"a": [(866, 400.0), (5, 10.0)]}, hot_keys={"a": [("hot", 400.0)]})
    assert (a.imbalance, a.excess_ops) == (pytest.approx(1.8), pytest.approx(266.6667, abs=1e-3))
    assert a.net_imbalance is None  # c's network is unknown: no mean to compare with
    assert [(x.what, x.name, round(x.excess_pct, 1)) for x in a.contributors] == [
        ("slot", "866", 150.0),
        ("slot", "5", 3.7),  # 10 / 266.67 = 3.75, just under
        ("key", "hot", 150.0),
    ]
    assert b.imbalance == pytest.approx(0.6) and b.contributors == ()
    assert c.excess_ops == 0.0


def test_a_read_mostly_cluster_hot_key_is_cached_first_then_split() -> None:
    key = KeyTraffic(b"hot", "a", ops_per_sec=400.0, reads=392, writes=8, slot=866)
    advice = advise([key], THREE, hot_slots={"a": [(866, 400.0)]})
    assert [(a.kind, a.key, a.node) for a in advice] == [("client_cache", "hot", "a"), ("split", "hot", "a")]
    # share 400/600, reads less one re-read per write: 2/3 * (392 - 8) / 400
    assert advice[0].expected_ops_reduction_pct == pytest.approx(64.0)
    # 2 copies leave a at 404 of a mean 336 (1.202x > 1.2): 3 copies, 338.67 ops/s each
    assert advice[1].copies == 3
    assert advice[1].expected_ops_reduction_pct == pytest.approx(100 * (600 - 338.6667) / 600, abs=1e-3)
    # No replicas, and moving the key's slot would only make b as hot as a was: neither advised.
    assert {a.kind for a in advice} == {"client_cache", "split"}


def test_a_write_hot_key_is_split_not_cached() -> None:
    nodes = [NodeLoad("a", 700.0), NodeLoad("b", 150.0), NodeLoad("c", 150.0)]
    key = KeyTraffic(b"counter", "a", ops_per_sec=550.0, reads=165, writes=385)
    [advice] = advise([key], nodes)
    assert (advice.kind, advice.copies) == ("split", 3)
    # 2 parts: a at 507.5 of a mean 388.3 (1.31x); 3 parts: every master at 443.33
    assert advice.expected_ops_reduction_pct == pytest.approx(100 * (700 - 443.3333) / 700, abs=1e-3)
    assert "3 parts" in advice.detail


def test_plan_split_exact_n_and_an_unreachable_target() -> None:
    plan = plan_split([700.0, 150.0, 150.0], 0, reads=165.0, writes=385.0, target=1.2)
    assert plan is not None and (plan.copies, plan.sharded, plan.reaches_target) == (3, True, True)
    assert plan.imbalance_before == pytest.approx(2.1)
    loose = plan_split([700.0, 150.0, 150.0], 0, reads=165.0, writes=385.0, target=1.4)
    assert (
        loose is not None and loose.copies == 2 and loose.imbalance_after == pytest.approx(507.5 / 388.3333)
    )
    # The rest of a's load alone is above the target: the best N, said to fall short.
    short = plan_split([900.0, 100.0, 100.0], 0, reads=100.0, writes=0.0, target=1.2)
    assert short is not None and (short.copies, short.reaches_target) == (3, False)
    assert plan_split([500.0], 0, reads=100.0, writes=100.0) is None  # a single instance


def test_a_single_instance_without_replicas_gets_no_replica_or_split_advice() -> None:
    key = KeyTraffic(b"hot", "solo", ops_per_sec=300.0, reads=300, writes=0)
    advice = advise([key], [NodeLoad("solo", 1000.0)])
    assert [(a.kind, round(a.expected_ops_reduction_pct, 6)) for a in advice] == [("client_cache", 30.0)]


def test_replica_reads_only_where_the_shard_has_replicas() -> None:
    key = KeyTraffic(b"hot", "m", ops_per_sec=300.0, reads=270, writes=30)
    advice = advise([key], [NodeLoad("m", 1000.0, replicas=2)])
    assert [a.kind for a in advice] == ["client_cache", "replica_reads"]
    assert advice[0].expected_ops_reduction_pct == pytest.approx(30 * 240 / 300)
    assert advice[1].expected_ops_reduction_pct == pytest.approx(30 * 0.9 * 2 / 3)
    assert replica_reads_pct(0.3, 270, 30, 0) == 0.0
    assert client_cache_pct(0.5, 10, 20) == 0.0  # more writes than reads: nothing left to cache


def test_memcached_gets_a_local_ttl_cache() -> None:
    key = KeyTraffic(b"page", "mc", ops_per_sec=500.0, reads=500, writes=0, hits=450, misses=50)
    [advice] = advise([key], [NodeLoad("mc", 1000.0)], memcached=True)
    assert (advice.kind, advice.expected_ops_reduction_pct) == ("local_cache", 50.0)
    assert "TTL" in advice.detail


def test_stampede_advice_only_for_the_key_that_stampeded() -> None:
    calm = KeyTraffic(b"calm", "solo", ops_per_sec=100.0, reads=50, writes=50)
    wild = KeyTraffic(
        b"wild", "solo", ops_per_sec=100.0, reads=50, writes=50, stampede_bursts=2, stampede_writers=4
    )
    advice = advise([calm, wild], [NodeLoad("solo", 1000.0)], window_s=10.0)
    assert [(a.kind, a.key) for a in advice] == [("stampede", "wild")]
    # 2 bursts x 3 redundant recomputes x (read + write) of 10,000 ops in the window
    assert advice[0].expected_ops_reduction_pct == pytest.approx(0.12)
    assert advice[0].detail.startswith("2 miss bursts seen, up to 4 clients")


def test_a_key_that_stampeded_outside_the_top_list_still_gets_its_advice() -> None:
    # node_keys lists such a key with no reads or writes counted (it fell out of the sample's top).
    unlisted = KeyTraffic(b"gone", "solo", 0.0, 0, 0, stampede_bursts=3, stampede_writers=6)
    [advice] = advise([unlisted], [NodeLoad("solo", 100.0)], window_s=10.0)
    assert (advice.kind, advice.key, advice.node) == ("stampede", "gone", "solo")
    # 3 bursts x 5 redundant recomputes x (read + write) of 1,000 ops in the window
    assert advice.expected_ops_reduction_pct == pytest.approx(3.0)


def test_a_slot_that_carries_the_imbalance_is_moved_to_the_coolest_node() -> None:
    nodes = [NodeLoad("a", 500.0), NodeLoad("b", 100.0), NodeLoad("c", 300.0)]
    keys = [
        KeyTraffic(b"k1", "a", ops_per_sec=90.0, reads=54, writes=36, slot=7),
        KeyTraffic(b"k2", "a", ops_per_sec=80.0, reads=48, writes=32, slot=7),
    ]
    advice = advise(keys, nodes, hot_slots={"a": [(7, 250.0), (9, 20.0)]})
    [move] = [a for a in advice if a.kind == "move_slot"]
    assert (move.slot, move.node, move.destination, move.key) == (7, "a", "b", "k1")
    assert move.expected_ops_reduction_pct == pytest.approx(50.0)
    assert "from a to b" in move.detail
    assert plan_slot_move(nodes, "a", 7, 400.0) is None  # b would end at 500: the hot spot only moves


def test_key_facts_say_what_the_source_cannot_tell() -> None:
    monitor = key_facts(KeyTraffic(b"\x1b[2Jk", "n", 50.0, 40, 10, value_bytes=100, slot=3), 200.0)
    assert monitor.to_json() == {
        "key": "\\x1b[2Jk",
        "node": "n",
        "slot": 3,
        "node_share_pct": 25.0,
        "read_pct": 80.0,
        "hit_pct": None,
        "value_bytes": 100,
        "net_bytes_per_sec": 5000.0,
    }
    watch = key_facts(KeyTraffic(b"k", "n", 50.0, 40, 10, hits=30, misses=10), None)
    assert (watch.hit_pct, watch.node_share_pct, watch.net_bytes_per_sec) == (75.0, None, None)


def test_hostile_key_names_are_escaped_and_cut() -> None:
    raw = b"\x1b[2J[bold]" + b"k" * 2000
    [advice] = advise([KeyTraffic(raw, "n", 500.0, 500, 0)], [NodeLoad("n", 1000.0)])
    assert advice.key == "\\x1b[2J[bold]" + "k" * 46 + "…"  # 60 cells on screen
    assert advice.to_json()["key"] == "\\x1b[2J[bold]" + "k" * 1010 + "…"  # as the JSON keys list
    assert "\x1b" not in advice.detail


def test_the_text_marks_nodes_above_the_target_imbalance_the_user_gave() -> None:
    from rich.text import Text

    from cachetop.commands.hotkeys_advice import Group
    from cachetop.commands.hotkeys_advice_report import GroupAdvice, print_group
    from cachetop.engine.config import InstanceConfig
    from cachetop.engine.targets import parse_target

    class Lines:
        name_max = 40

        def __init__(self) -> None:
            self.lines: list[Text] = []

        def line(self, text: Text) -> None:
            self.lines.append(text)

    nodes = [NodeLoad("c/a", 390.0), NodeLoad("c/b", 300.0), NodeLoad("c/c", 210.0)]  # a: 1.3x
    group = Group(
        "c", InstanceConfig(name="c", target=parse_target("redis://127.0.0.1:7000")), [], cluster=True
    )
    result = GroupAdvice([], {}, balance(nodes), [], [])
    styles = {}
    for target in (1.2, 1.5):
        out = Lines()
        print_group(out, group, result, target)
        styles[target] = [str(t.style) for t in out.lines if "x the mean" in t.plain]
    assert styles == {1.2: ["bold red", "", ""], 1.5: ["", "", ""]}
