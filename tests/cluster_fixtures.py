"""Real Redis Clusters for tests: N masters, optionally one replica each, on free loopback ports.

Each node is a redis-server with cluster mode on and its nodes.conf in its own temp dir; the
cluster is formed with `redis-cli --cluster create` and is ready when every node reports
cluster_state:ok and knows every other node.
"""

from __future__ import annotations

import random
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cachetop.servers import LocalServer, redis_server

NODE_TIMEOUT_MS = 1000
BUS_OFFSET = 10000  # a node also listens on port + 10000 for the cluster bus


def cluster_port() -> int:
    """A free port whose bus port is free too (so at most 65535 - 10000)."""
    for _ in range(200):
        port = random.randrange(20000, 65535 - BUS_OFFSET)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + BUS_OFFSET))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


@dataclass
class Cluster:
    nodes: list[LocalServer]

    @property
    def addresses(self) -> list[str]:
        return [n.address for n in self.nodes]

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()

    def cli(self, node: LocalServer, *args: str) -> str:
        done = subprocess.run(
            ["redis-cli", "-p", str(node.port), *args], capture_output=True, text=True, timeout=10
        )
        return done.stdout

    def info(self, node: LocalServer, section: str) -> dict[str, str]:
        out = {}
        for line in self.cli(node, "INFO", section).splitlines():
            key, sep, value = line.partition(":")
            if sep:
                out[key.strip()] = value.strip()
        return out

    def role(self, node: LocalServer) -> str:
        return self.info(node, "replication").get("role", "?")

    def masters(self) -> list[LocalServer]:
        return [n for n in self.nodes if n.proc is not None and self.role(n) == "master"]

    def replicas(self) -> list[LocalServer]:
        return [n for n in self.nodes if n.proc is not None and self.role(n) == "slave"]

    def replica_of(self, master: LocalServer) -> LocalServer:
        for node in self.replicas():
            info = self.info(node, "replication")
            if info.get("master_port") == str(master.port):
                return node
        raise LookupError(f"no replica of {master.address}")


def _ready(nodes: list[LocalServer]) -> bool:
    for node in nodes:
        out = subprocess.run(
            ["redis-cli", "-p", str(node.port), "CLUSTER", "INFO"], capture_output=True, text=True, timeout=5
        ).stdout
        if "cluster_state:ok" not in out or f"cluster_known_nodes:{len(nodes)}" not in out:
            return False
    return True


def start_cluster(workdir: Path, masters: int = 3, replicas: int = 0, deadline_s: float = 20.0) -> Cluster:
    nodes: list[LocalServer] = []
    try:
        for i in range(masters * (1 + replicas)):
            nodes.append(
                redis_server(
                    port=cluster_port(),
                    workdir=workdir / f"node-{i}",
                    extra=[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        str(workdir / f"node-{i}" / "nodes.conf"),
                        "--cluster-node-timeout",
                        str(NODE_TIMEOUT_MS),
                    ],
                )
            )
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(n.address for n in nodes),
                "--cluster-replicas",
                str(replicas),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        end = time.monotonic() + deadline_s
        while not _ready(nodes):
            if time.monotonic() > end:
                raise TimeoutError("cluster did not reach cluster_state:ok")
            time.sleep(0.05)
        if replicas:
            # Replicas are listed in CLUSTER NODES before their first sync ends; wait for links up.
            cluster = Cluster(nodes)
            while len(cluster.replicas()) < masters * replicas or any(
                cluster.info(r, "replication").get("master_link_status") != "up" for r in cluster.replicas()
            ):
                if time.monotonic() > end:
                    raise TimeoutError("replicas did not sync")
                time.sleep(0.05)
    except BaseException:
        for node in nodes:
            node.cleanup()
        raise
    return Cluster(nodes)


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    started: list[Cluster] = []

    def make(masters: int = 3, replicas: int = 0) -> Cluster:
        cluster = start_cluster(tmp_path / f"cluster-{len(started)}", masters, replicas)
        started.append(cluster)
        return cluster

    yield make
    for cluster in started:
        cluster.cleanup()


@pytest.fixture(scope="module")
def three_masters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Shared by a module's tests: tests that change it (a node joins) come last."""
    cluster = start_cluster(tmp_path_factory.mktemp("cluster3"), 3, 0)
    yield cluster
    cluster.cleanup()


@pytest.fixture(scope="module")
def three_by_three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """3 masters + 3 replicas, shared by a module's tests: tests that kill nodes come last."""
    cluster = start_cluster(tmp_path_factory.mktemp("cluster6"), 3, 1)
    yield cluster
    cluster.cleanup()
