"""Redis Cluster against real clusters: discovery from a live seed, shards, roles, joins, own traffic."""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import replace

import redis as redis_py

from cachetop.engine.config import config_from_targets
from cachetop.engine.live import LiveSources
from cachetop.engine.monitor import Monitor
from cachetop.hotkeys.config import HotKeySettings
from cachetop.model import Snapshot, Status
from cachetop.servers import free_port
from tests.cluster_fixtures import Cluster, cluster_port, three_by_three, three_masters  # noqa: F401
from tests.conftest import until, wait_until

SHARDS = ("0-5460", "5461-10922", "10923-16383")  # what `redis-cli --cluster create` assigns to 3 masters


def cluster_config(cluster: Cluster, *, dead_seed: bool = True, interval: float = 0.2):  # type: ignore[no-untyped-def]
    seeds = [f"127.0.0.1:{free_port()}"] if dead_seed else []
    seeds.append(cluster.nodes[1].address)
    config = config_from_targets([f"redis-cluster://{','.join(seeds)}"])
    settings = replace(config.settings, interval=interval, window=2.0, timeout=0.5)
    inst = replace(config.instances[0], name="shop")
    return replace(config, settings=settings, instances=(inst,))


def rows(snap: Snapshot) -> list[tuple[str, str | None, str | None, Status]]:
    return [(i.address, i.role, i.shard, i.status) for i in snap.instances]


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


async def test_three_masters_found_from_a_live_seed_while_another_is_down(three_masters: Cluster) -> None:  # noqa: F811
    cluster = three_masters
    async with Monitor(cluster_config(cluster)) as mon:
        snap = await mon.wait_snapshot(lambda s: all(i.status == Status.UP for i in s.instances), 10)
    assert sorted(i.address for i in snap.instances) == sorted(cluster.addresses)
    assert [(i.role, i.shard) for i in snap.instances] == [("master", s) for s in SHARDS]
    assert all(i.name == f"shop/{i.address}" for i in snap.instances)
    shard_of = {port_of(i.address): i.shard for i in snap.instances}
    for node in cluster.nodes:
        slots = cluster.cli(node, "CLUSTER", "MYID")
        assert slots.strip()  # the node answers as a cluster node
    # The JSON snapshot carries address, role and shard for every node.
    doc = snap.to_json()
    assert [(d["address"], d["role"], d["shard"]) for d in doc["instances"]] == [
        (i.address, "master", shard_of[port_of(i.address)]) for i in snap.instances
    ]


async def test_hot_keys_on_every_node_hold_three_connections_each(three_masters: Cluster) -> None:  # noqa: F811
    """One MONITOR per node, each with its node's poll connection for the sampler's CLIENT LIST
    checks: poll, probe and MONITOR on each node (there was a fourth, side connection)."""
    cluster = three_masters
    config = cluster_config(cluster, dead_seed=False)
    hotkeys = HotKeySettings(monitor_on=600, monitor_off=1, big_keys=False)
    config = replace(config, sections={**config.sections, "hotkeys": hotkeys})
    wanted = ["cachetop", "cachetop-hotkeys-monitor", "cachetop-probe"]
    async with Monitor(config) as mon, LiveSources(config, mon, alerts=False) as live:

        def sampling(_: Snapshot) -> bool:
            samplers = [c.sampler for c in live.collectors.values()]
            return len(samplers) == 3 and all(s is not None and s.phase == "sampling" for s in samplers)

        await mon.wait_snapshot(sampling, 15)
        for node in cluster.nodes:
            await until(
                lambda port=node.port: cachetop_names(port) == wanted,
                5,
                what=f"3 connections on {node.address}",
            )


def cachetop_names(port: int) -> list[str]:
    client = redis_py.Redis(port=port, client_name="test-observer", driver_info=None)
    try:
        return sorted(
            c["name"].split(":")[0] for c in client.client_list() if c["name"].startswith("cachetop")
        )
    finally:
        client.close()


async def test_three_masters_three_replicas_grouped_by_shard(three_by_three: Cluster) -> None:  # noqa: F811
    cluster = three_by_three
    async with Monitor(cluster_config(cluster)) as mon:
        snap = await mon.wait_snapshot(lambda s: all(i.status == Status.UP for i in s.instances), 10)
    assert sorted(i.address for i in snap.instances) == sorted(cluster.addresses)
    # Rows by shard, master first, and each replica is in its own master's shard.
    assert [(i.role, i.shard) for i in snap.instances] == [
        (role, shard) for shard in SHARDS for role in ("master", "replica")
    ]
    by_port = {port_of(i.address): i for i in snap.instances}
    for master in cluster.masters():
        replica = cluster.replica_of(master)
        assert by_port[replica.port].shard == by_port[master.port].shard


async def test_failover_shows_the_promoted_replica_within_two_intervals(three_by_three: Cluster) -> None:  # noqa: F811
    cluster = three_by_three  # last user of this cluster: it kills a master
    interval = 0.25
    config = cluster_config(cluster, dead_seed=False, interval=interval)
    async with Monitor(config) as mon:
        await mon.wait_snapshot(lambda s: all(i.status == Status.UP for i in s.instances), 10)
        victim = next(m for m in cluster.masters() if m is not cluster.nodes[1])
        heir = cluster.replica_of(victim)
        shard = next(i.shard for i in mon.snapshot().instances if port_of(i.address) == victim.port)
        victim.kill()
        # Not a blocking wait: it would stall the Monitor running in this very loop.
        await asyncio.to_thread(wait_until, lambda: cluster.role(heir) == "master", 15, "the promotion")
        promoted_at = mon.clock()
        snap = await mon.wait_snapshot(
            lambda s: any(port_of(i.address) == heir.port and i.role == "master" for i in s.instances), 5
        )
        took = mon.clock() - promoted_at
        by_port = {port_of(i.address): i for i in snap.instances}
        assert by_port[heir.port].shard == shard
        # The dead master is reported by its own poller, on its own schedule.
        await mon.wait_snapshot(
            lambda s: any(port_of(i.address) == victim.port and i.status == Status.DOWN for i in s.instances),
            config.settings.timeout + 2 * interval + 1,
        )
        # Re-discovery follows: the dead master lost its slots, the heir holds them.
        final = await mon.wait_snapshot(
            lambda s: any(port_of(i.address) == victim.port and i.shard is None for i in s.instances), 10
        )
    assert took <= 2 * interval + 0.1, took
    heir_row = next(i for i in final.instances if port_of(i.address) == heir.port)
    assert (heir_row.role, heir_row.shard, heir_row.status) == ("master", shard, Status.UP)


async def test_a_node_that_joins_is_polled_and_discovery_is_not_counted_as_traffic(
    three_masters: Cluster,  # noqa: F811
    make_redis,  # type: ignore[no-untyped-def]
) -> None:
    cluster = three_masters  # last user of this cluster: a node joins
    config = cluster_config(cluster, dead_seed=False)
    async with Monitor(config) as mon:
        for watcher in mon.watchers:
            watcher.rediscover_every = 1  # re-read CLUSTER NODES every interval
        await mon.wait_snapshot(
            lambda s: len(s.instances) == 3 and all(i.status == Status.UP for i in s.instances)
        )
        newcomer = make_redis("--cluster-enabled", "yes", port=cluster_port())
        subprocess.run(
            [
                "redis-cli",
                "-p",
                str(cluster.nodes[0].port),
                "CLUSTER",
                "MEET",
                "127.0.0.1",
                str(newcomer.port),
            ],
            check=True,
            capture_output=True,
        )
        snap = await mon.wait_snapshot(
            lambda s: any(port_of(i.address) == newcomer.port and i.status == Status.UP for i in s.instances),
            10,
        )
        row = next(i for i in snap.instances if port_of(i.address) == newcomer.port)
        assert (row.name, row.role, row.shard) == (f"shop/{newcomer.address}", "master", None)
        before = mon.watchers[0].discoveries
        await mon.wait_polls(max(p.polls for p in mon.pollers) + 12)
        assert mon.watchers[0].discoveries >= before + 3
        # Redis 7.0 has no CLUSTER SLOT-STATS: tried once, then never again, and no hot slots shown.
        assert mon.watchers[0].slot_stats_supported is False
        assert mon.watchers[0].hot_slots == {}
        idle = mon.snapshot()
        assert all("hot_slots" not in i.extras for i in idle.instances)
    # Nothing but cachetop talks to these nodes: CLUSTER NODES and INFO are ours, so 0 ops/s.
    assert [i.metrics["ops_per_sec"] for i in idle.instances] == [0.0] * 4
