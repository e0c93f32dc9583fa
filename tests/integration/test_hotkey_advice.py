"""`cachetop hotkeys --advice` against real servers: a 3-master cluster with a read-mostly hot key
and a write-hot one, a single instance without replicas, and a stampede.

The workload runs in rounds, one pipeline per master per round, so each node's share of the
cluster's ops is fixed by the round whatever the speed; the exact imbalance is then computed here
from the servers' own counters (INFO deltas on each node) and the key's real share from the round.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis as redis_py
from redis.crc import key_slot

from cachetop.engine.cluster import parse_cluster_nodes
from cachetop.servers import LocalServer, redis_server
from tests.cluster_fixtures import Cluster, three_masters  # noqa: F401
from tests.conftest import wait_until
from tests.integration.test_hotkeys_redis import monitor_clients

CACHETOP = str(Path(sys.executable).with_name("cachetop"))
OTHERS_PER_NODE = 40  # ops per master per round on keys that are not hot (each key 1 op in 5 rounds)


def run_advice(*args: str, timeout: float = 60) -> dict:
    done = subprocess.run(
        [CACHETOP, "hotkeys", "--advice", "--json", "--top", "5", *args],
        capture_output=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return json.loads(done.stdout)


def masters_by_slot(cluster: Cluster) -> list[tuple[int, int, int]]:
    """(first slot, last slot, port) of each master."""
    out = []
    for node in parse_cluster_nodes(cluster.cli(cluster.nodes[0], "CLUSTER", "NODES"), "127.0.0.1"):
        if node.role == "master":
            out.extend((lo, hi, node.port) for lo, hi in node.slots)
    return out


def port_of_key(ranges: list[tuple[int, int, int]], key: bytes) -> int:
    slot = key_slot(key)
    return next(port for lo, hi, port in ranges if lo <= slot <= hi)


def commands_processed(port: int) -> int:
    return int(redis_py.Redis(port=port).info("stats")["total_commands_processed"])


@contextmanager
def rounds(cluster: Cluster, hot: list[tuple[str, bytes, int]]) -> Iterator[Callable[[], dict[int, int]]]:
    """Runs rounds in a thread until the block ends: per master OTHERS_PER_NODE GETs of cold keys,
    plus `hot` (command, key, times) on the hot key's master. Yields a function giving each
    master's exact command count since the rounds began (INFO deltas)."""
    ranges = masters_by_slot(cluster)
    ports = sorted({p for _, _, p in ranges})
    cold: dict[int, list[bytes]] = {p: [] for p in ports}
    i = 0
    while min(len(v) for v in cold.values()) < 5 * OTHERS_PER_NODE:
        key = f"cold:{i}".encode()
        cold[port_of_key(ranges, key)].append(key)
        i += 1
    clients = {p: redis_py.Redis(port=p) for p in ports}
    start = {p: commands_processed(p) for p in ports}
    stop = threading.Event()

    def loop() -> None:
        n = 0
        while not stop.is_set():
            for port in ports:
                pipe = clients[port].pipeline(transaction=False)
                for command, key, times in hot:
                    if port_of_key(ranges, key) == port:
                        for _ in range(times):
                            pipe.execute_command(command, key, *(("v",) if command == "SET" else ()))
                keys = cold[port]
                for j in range(OTHERS_PER_NODE):
                    pipe.get(keys[(n * OTHERS_PER_NODE + j) % len(keys)])
                pipe.execute()
            n += 1

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        yield lambda: {p: commands_processed(p) - start[p] for p in ports}
    finally:
        stop.set()
        worker.join(10)


def advice_under(
    cluster: Cluster, hot: list[tuple[str, bytes, int]], duration: str
) -> tuple[dict, dict[int, int]]:
    """`hotkeys --advice` on `cluster` for `duration` s while `rounds` of `hot` run (once every master
    has served 2000 of them): the one instance's document, and each master's exact command count
    since the rounds began, read as the advice ended."""
    with rounds(cluster, hot) as deltas:
        wait_until(lambda: min(deltas().values()) > 2000, 20, "the workload to run")
        [doc] = run_advice("--duration", duration, f"redis-cluster://{cluster.nodes[0].address}")["instances"]
        return doc, deltas()


def node_of(doc: dict, port: int) -> dict:
    [node] = [n for n in doc["nodes"] if n["name"].endswith(f":{port}")]
    return node


@pytest.mark.slow
def test_read_mostly_hot_key_in_a_cluster_is_cached_first(three_masters: Cluster) -> None:  # noqa: F811
    # A round: hot:1 takes 80 of 200 ops (79 GETs, 1 SET: 40% of the cluster), 40 cold GETs a master.
    ranges = masters_by_slot(three_masters)
    hot_port = port_of_key(ranges, b"hot:1")
    doc, exact = advice_under(three_masters, [("GET", b"hot:1", 79), ("SET", b"hot:1", 1)], "3")
    mean = sum(exact.values()) / len(exact)
    exact_imbalance = exact[hot_port] / mean  # about 120 / (200 / 3) = 1.8
    node = node_of(doc, hot_port)
    assert node["imbalance"] == pytest.approx(exact_imbalance, rel=0.10)
    first = doc["advice"][0]
    assert (first["kind"], first["key"]) == ("client_cache", "hot:1")
    assert first["node"].endswith(f":{hot_port}")
    real_share = 80 / (80 + OTHERS_PER_NODE) * 100  # of its master's ops
    assert first["expected_ops_reduction_pct"] == pytest.approx(real_share, abs=5)
    assert not [a for a in doc["advice"] if a["kind"] == "replica_reads"]  # no replicas here
    [key] = [k for k in doc["keys"] if k["key"] == "hot:1"]
    assert (key["slot"], key["read_pct"]) == (key_slot(b"hot:1"), pytest.approx(79 / 80 * 100, abs=1))
    assert key["value_bytes"] is not None  # MEMORY USAGE for the node's hottest keys


@pytest.mark.slow
def test_write_hot_key_is_split_not_cached(three_masters: Cluster) -> None:  # noqa: F811
    # A round: counter:1 takes 180 of 300 ops, 70% of them writes (126 INCR, 54 GET).
    ranges = masters_by_slot(three_masters)
    hot_port = port_of_key(ranges, b"counter:1")
    doc, _ = advice_under(three_masters, [("GET", b"counter:1", 54), ("INCR", b"counter:1", 126)], "3")
    mine = [a for a in doc["advice"] if a["key"] == "counter:1"]
    assert [a["kind"] for a in mine] == ["split"]
    # 2 parts leave its master at 157 of a mean 118 per round (1.33x > 1.2); 3 even the masters.
    assert mine[0]["copies"] == 3
    assert mine[0]["node"].endswith(f":{hot_port}")
    assert "3 parts" in mine[0]["detail"]


def single_instance_advice(redis: LocalServer) -> dict:
    """hot:1 takes 30% of the instance's ops, all of them reads."""
    r = redis_py.Redis(port=redis.port)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            pipe = r.pipeline(transaction=False)
            for _ in range(30):
                pipe.get("hot:1")
            for i in range(70):
                pipe.get(f"cold:{i}")
            pipe.execute()

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        wait_until(lambda: commands_processed(redis.port) > 5000, 20, "the workload to run")
        [doc] = run_advice("--duration", "2", redis.url)["instances"]
    finally:
        stop.set()
        worker.join(10)
    return doc


def test_single_instance_without_replicas_is_not_told_to_read_from_replicas(redis: LocalServer) -> None:
    doc = single_instance_advice(redis)
    assert [(n["replicas"], n["imbalance"]) for n in doc["nodes"]] == [(0, None)]
    assert [(a["kind"], a["key"]) for a in doc["advice"]] == [("client_cache", "hot:1")], doc
    assert doc["advice"][0]["expected_ops_reduction_pct"] == pytest.approx(30, abs=3)


def test_stampede_advice_only_for_the_key_that_stampeded(redis: LocalServer) -> None:
    proc = subprocess.Popen(
        [CACHETOP, "hotkeys", "--advice", "--json", "--duration", "4", redis.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: monitor_clients(redis.port), 30, "the MONITOR client")
        calm = redis_py.Redis(port=redis.port)
        for _ in range(50):  # one client reads and rewrites its key: no stampede
            calm.get("calm")
            calm.set("calm", "v")
        clients = [redis_py.Redis(port=redis.port) for _ in range(4)]
        for c in clients:  # four clients miss page:home...
            c.get("page:home")
        for c in clients:  # ...and each recomputes it
            c.set("page:home", "v")
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    [doc] = json.loads(out)["instances"]
    assert [s["key"] for s in doc["stampedes"]] == ["page:home"]
    stampede = [a for a in doc["advice"] if a["kind"] == "stampede"]
    assert [a["key"] for a in stampede] == ["page:home"]
    assert stampede[0]["detail"].startswith("1 miss burst seen, up to 3 clients")


def test_with_a_replica_the_same_key_is_also_read_from_it(redis: LocalServer, tmp_path: Path) -> None:
    replica = redis_server(workdir=tmp_path / "replica", extra=["--replicaof", "127.0.0.1", str(redis.port)])
    try:
        link = lambda: redis_py.Redis(port=replica.port).info("replication").get("master_link_status")  # noqa: E731
        wait_until(lambda: link() == "up", 20, "the replica's link")
        doc = single_instance_advice(redis)
    finally:
        replica.cleanup()
    assert [n["replicas"] for n in doc["nodes"]] == [1]
    assert [(a["kind"], a["key"]) for a in doc["advice"]] == [
        ("client_cache", "hot:1"),
        ("replica_reads", "hot:1"),
    ]
    # Reads spread over the master and its replica: half of the key's 30% moves there.
    assert doc["advice"][1]["expected_ops_reduction_pct"] == pytest.approx(15, abs=2)


def test_memcached_hot_key_gets_a_local_ttl_cache(memcached: LocalServer) -> None:
    """page takes 40% of the gets, all hits; watch knows hits from misses."""
    import socket

    stop = threading.Event()

    def loop() -> None:
        with socket.create_connection(("127.0.0.1", memcached.port)) as s:
            s.sendall(b"set page 0 0 5\r\nhello\r\n")
            s.recv(100)
            batch = b"get page\r\n" * 40 + b"".join(b"get c%d\r\n" % i for i in range(60))
            while not stop.is_set():
                s.sendall(batch)
                got = b""
                while got.count(b"END\r\n") < 100:
                    got += s.recv(65536)
                stop.wait(0.002)  # paced, not saturating: the watch stream need not drain a backlog

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        [doc] = run_advice("--duration", "2", memcached.url)["instances"]
    finally:
        stop.set()
        worker.join(10)
    assert [(a["kind"], a["key"]) for a in doc["advice"]] == [("local_cache", "page")], doc
    assert doc["advice"][0]["expected_ops_reduction_pct"] == pytest.approx(40, abs=3)
    [page] = [k for k in doc["keys"] if k["key"] == "page"]
    assert (page["hit_pct"], page["read_pct"]) == (100.0, 100.0)
