"""A real 3-master Redis Cluster for tests, and fast bulk loading of keys (redis-cli --pipe).

    @pytest.fixture
    def redis_cluster(tmp_path):
        with running_cluster(tmp_path / "cluster") as cluster:
            yield cluster      # cluster.masters -> [LocalServer, ...]; cluster.url; cluster.load(keys)

(or `pytest_plugins = ["tests.cluster_fixture"]` for the `redis_cluster` fixture defined here).

Each node is a redis-server with cluster-enabled yes on a free port whose bus port (+10000) is
free too; `redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes` assigns the slots,
and the fixture waits until every node reports cluster_state:ok.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.crc import key_slot

from cachetop.servers import LocalServer, free_port, redis_server

CLUSTER_SIZE = 3
BUS_OFFSET = 10000


def _port_with_free_bus() -> int:
    for _ in range(50):
        port = free_port()
        if port + BUS_OFFSET > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + BUS_OFFSET))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def resp(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def pipe_load(port: int, commands: Iterable[bytes]) -> None:
    """Sends RESP commands through `redis-cli --pipe`: 100,000 SETs take about 0.1 s."""
    data = b"".join(commands)
    proc = subprocess.run(
        ["redis-cli", "-p", str(port), "--pipe"], input=data, capture_output=True, check=True, timeout=60
    )
    if b"errors: 0" not in proc.stdout:
        raise RuntimeError(f"redis-cli --pipe reported errors: {proc.stdout[-300:]!r}")


def load_keys(port: int, keys: Iterable[bytes], value: bytes = b"v") -> None:
    pipe_load(port, (resp(b"SET", k, value) for k in keys))


def cli(port: int, *args: str) -> str:
    return subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True, timeout=10
    ).stdout


@dataclass
class RedisCluster:
    masters: list[LocalServer]

    @property
    def url(self) -> str:
        return self.masters[0].url

    def slot_ranges(self) -> dict[int, tuple[int, int]]:
        """port -> (first, last) slot of each master (`--cluster create` gives each one range)."""
        ranges = {}
        for line in cli(self.masters[0].port, "cluster", "nodes").splitlines():
            fields = line.split()
            port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
            lo, _, hi = fields[8].partition("-")
            ranges[port] = (int(lo), int(hi))
        return ranges

    def load(self, keys: Iterable[bytes], value: bytes = b"v") -> None:
        """Sends each key to the master that owns its slot."""
        ranges = self.slot_ranges()
        by_port: dict[int, list[bytes]] = {p: [] for p in ranges}
        for key in keys:
            slot = key_slot(key)
            port = next(p for p, (lo, hi) in ranges.items() if lo <= slot <= hi)
            by_port[port].append(key)
        for port, port_keys in by_port.items():
            load_keys(port, port_keys, value)

    def dbsize(self) -> int:
        return sum(int(cli(m.port, "dbsize").strip()) for m in self.masters)

    def count(self, pattern: str) -> int:
        # Distinct keys: SCAN may return a key twice while its table is being resized (as it is
        # right after an evict removed most of a node's keys).
        return sum(
            len({k for k in cli(m.port, "--scan", "--pattern", pattern).splitlines() if k})
            for m in self.masters
        )


def start_cluster(workdir: Path, size: int = CLUSTER_SIZE, deadline_s: float = 20.0) -> RedisCluster:
    masters: list[LocalServer] = []
    try:
        for i in range(size):
            wd = workdir / f"node-{i}"
            masters.append(
                redis_server(
                    port=_port_with_free_bus(),
                    workdir=wd,
                    extra=["--cluster-enabled", "yes", "--cluster-config-file", str(wd / "nodes.conf")],
                )
            )
        create = ["redis-cli", "--cluster", "create", *[m.address for m in masters]]
        subprocess.run(
            [*create, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            check=True,
            timeout=30,
        )
        end = time.monotonic() + deadline_s
        while not all("cluster_state:ok" in cli(m.port, "cluster", "info") for m in masters):
            if time.monotonic() > end:
                raise RuntimeError(f"cluster_state is not ok after {deadline_s:g}s")
            time.sleep(0.05)
        return RedisCluster(masters)
    except BaseException:
        for m in masters:
            m.cleanup()
        raise


@contextlib.contextmanager
def running_cluster(workdir: Path, size: int = CLUSTER_SIZE) -> Iterator[RedisCluster]:
    cluster = start_cluster(workdir, size)
    try:
        yield cluster
    finally:
        for m in cluster.masters:
            m.cleanup()


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    with running_cluster(tmp_path / "cluster") as cluster:
        yield cluster
