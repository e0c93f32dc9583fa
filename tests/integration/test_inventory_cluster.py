"""Issue 19: a redis-cluster:// target from an inventory file stays whole: its nodes are polled by
the shard that owns the target, appear when the file names it and vanish when it no longer does
(a real 3-master cluster; the watcher talks to the Monitor only through the Fleet)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cachetop.commands.daemon_scale import monitor_config, watch_inventory
from cachetop.engine.config import load_config
from cachetop.engine.monitor import Monitor
from cachetop.engine.shards import ShardSpec, owner
from cachetop.servers import LocalServer
from tests.cluster_fixture import cli, running_cluster
from tests.conftest import until


def write_atomically(path: Path, groups: list[dict[str, object]]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(groups))
    os.replace(temporary, path)


async def test_cluster_target_from_inventory_stays_with_its_shard_and_leaves_whole(
    tmp_path: Path, redis: LocalServer
) -> None:
    with running_cluster(tmp_path / "cluster") as cluster:
        nodes = {f"orders/{m.address}" for m in cluster.masters}
        targets = tmp_path / "targets.json"
        both = [
            {"targets": [f"redis-cluster://{cluster.masters[0].address}"], "labels": {"name": "orders"}},
            {"targets": [redis.address], "labels": {"name": "sessions"}},
        ]
        write_atomically(targets, both)
        (tmp_path / "c.toml").write_text(
            '[settings]\ninterval = "0.5s"\nwindow = "2s"\n[inventory]\nfiles = ["targets.json"]\n'
        )
        config = load_config(tmp_path / "c.toml")
        shards = [ShardSpec(i, 2) for i in range(2)]
        mine = owner("orders", 2)
        async with (
            Monitor(monitor_config(config, shards[0])) as first,
            Monitor(monitor_config(config, shards[1])) as second,
            watch_inventory(first, config, shards[0]),
            watch_inventory(second, config, shards[1]),
        ):
            monitors = [first, second]

            def names(monitor: Monitor) -> set[str]:
                return {p.inst.name for p in monitor.pollers}

            await until(lambda: nodes <= names(monitors[mine]), 15, "the cluster's nodes")
            other = monitors[1 - mine]
            assert not any(n.startswith("orders") for n in names(other))
            assert {"sessions"} <= names(monitors[owner("sessions", 2)])
            # The file no longer names the cluster: its watcher stops and every node goes.
            write_atomically(targets, both[1:])
            await until(
                lambda: not any(n.startswith("orders") for n in names(monitors[mine])), 5, "nodes gone"
            )

            def ours(port: int) -> int:  # cachetop's connections to a node (redis-cli is not one)
                return sum("name=cachetop" in line for line in cli(port, "client", "list").splitlines())

            # ...with their connections closed.
            await until(lambda: all(ours(m.port) == 0 for m in cluster.masters), 5, "connections closed")
            # ...and back again.
            write_atomically(targets, both)
            await until(lambda: nodes <= names(monitors[mine]), 15, "the nodes back")
            assert len([n for n in names(monitors[mine]) if n.startswith("orders/")]) == len(nodes)
            await until(lambda: all(1 <= ours(m.port) <= 2 for m in cluster.masters), 5, "polled again")
