"""Pure parts of the fleet features: CLUSTER NODES parsing, shard names, deltas, multi-host URLs."""

from __future__ import annotations

import pytest

from cachetop.engine.cluster import build_topology, parse_cluster_nodes, parse_slot_stats, slot_label
from cachetop.engine.config import parse_target
from cachetop.exporters.recorder import diff, patch

# The documented CLUSTER NODES line format; ids shortened. m2 failed over to r2 (now master).
NODES = """\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7001@17001 master,fail - 0 0 2 disconnected
c3 127.0.0.1:7002@17002 master - 0 0 3 connected 10923-16383 [100->-x]
d4 127.0.0.1:7003@17003 slave a1 0 0 1 connected
e5 127.0.0.1:7004@17004 master - 0 0 5 connected 5461-10922
f6 :0@0 master,noaddr - 0 0 0 disconnected
g7 :7006@17006 myself,slave c3 0 0 3 connected
"""


def test_cluster_nodes_parsed_into_roles_slots_and_shards() -> None:
    nodes = parse_cluster_nodes(NODES, "10.0.0.9")
    assert [(n.node_id, n.address, n.role, n.master_id, n.slots, n.failed) for n in nodes] == [
        ("a1", "127.0.0.1:7000", "master", None, ((0, 5460),), False),
        ("b2", "127.0.0.1:7001", "master", None, (), True),
        ("c3", "127.0.0.1:7002", "master", None, ((10923, 16383),), False),
        ("d4", "127.0.0.1:7003", "replica", "a1", (), False),
        ("e5", "127.0.0.1:7004", "master", None, ((5461, 10922),), False),
        ("g7", "10.0.0.9:7006", "replica", "c3", (), False),  # no own IP: the seed's host
    ]
    topo = build_topology(nodes)
    assert [(n.node_id, topo.shard_of(n)) for n in topo.nodes] == [
        ("a1", "0-5460"),
        ("d4", "0-5460"),
        ("e5", "5461-10922"),
        ("c3", "10923-16383"),
        ("g7", "10923-16383"),
        ("b2", None),  # a master without slots belongs to no shard
    ]


def test_slot_labels() -> None:
    assert slot_label(()) == ""
    assert slot_label(((7, 7),)) == "7"
    assert slot_label(((0, 100), (200, 300), (400, 400))) == "0-100+2"


def test_delta_patch_round_trip_is_exact() -> None:
    old = {"a": 1, "b": {"x": 1.5, "y": None, "z": [1]}, "c": "gone"}
    new = {"a": 1.0, "b": {"x": 1.5, "y": 2, "w": "new"}, "d": True}
    delta = diff(old, new)
    assert delta == {
        "s": {"a": 1.0, "d": True},
        "n": {"b": {"s": {"y": 2, "w": "new"}, "d": ["z"]}},
        "d": ["c"],
    }
    result = patch(old, delta)
    assert result == new and type(result["a"]) is float
    assert diff(new, new) == {}


def test_multi_host_urls() -> None:
    cluster = parse_target("redis-cluster://app:pw%2F1@10.0.0.1:7000,10.0.0.2")
    assert (cluster.mode, cluster.seeds, cluster.username, cluster.password) == (
        "cluster",
        (("10.0.0.1", 7000), ("10.0.0.2", 6379)),
        "app",
        "pw/1",
    )
    assert str(cluster) == "redis-cluster://app:***@10.0.0.1:7000,10.0.0.2:6379"
    sentinel = parse_target("rediss-sentinel://s1,s2:26380/mymaster")
    assert (sentinel.mode, sentinel.tls, sentinel.seeds, sentinel.service) == (
        "sentinel",
        True,
        (("s1", 26379), ("s2", 26380)),
        "mymaster",
    )
    assert str(sentinel) == "rediss-sentinel://s1:26379,s2:26380/mymaster"
    with pytest.raises(ValueError, match="name the master"):
        parse_target("redis-sentinel://s1:26379")
    with pytest.raises(ValueError, match="only database 0"):
        parse_target("redis-cluster://a:1/3")


def test_slot_stats_reply_parsed() -> None:
    # The reply shape documented for CLUSTER SLOT-STATS (Redis 8.2); no such server here to ask.
    reply = [[100, [b"key-count", 7, b"cpu-usec", 30]], [5, [b"key-count", 2]]]
    assert parse_slot_stats(reply) == [
        {"slot": 100, "key-count": 7, "cpu-usec": 30},
        {"slot": 5, "key-count": 2},
    ]
