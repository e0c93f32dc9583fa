"""Redis Cluster: find every node from CLUSTER NODES, group them by shard, and follow changes.

A cluster target expands into one Poller per node, named `CLUSTER/host:port`, each an instance
of its own with a role (master | replica) and a shard. The shard is named by the slots its
master serves (e.g. "0-5460"), so it keeps its name when a replica is promoted.

Roles are refreshed by every poll (INFO role), so a failover shows at the next poll. The node
list itself is re-read every `rediscover_every` intervals, and at once when a node goes down or
changes role: nodes that join are added, nodes the cluster forgot are removed.

Re-discovery runs CLUSTER NODES (and CLUSTER SLOT-STATS) through a live node's own poll
connection (RedisBackend.run_own), which counts them as cachetop's own commands there, so
they never show up in that node's ops/s or error rate.

The watcher tells the Monitor what exists through the narrow Fleet interface (engine/fleet.py)
and contributes each master's hot slots as a figure (engine/figures.py): it never edits the
Monitor's pollers, and this module does not import the Monitor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace
from typing import Any

from redis.exceptions import RedisError

from cachetop.backends.capabilities import RunsOwnCommands
from cachetop.engine.config import InstanceConfig
from cachetop.engine.figures import Figures
from cachetop.engine.fleet import Fleet, FleetMember
from cachetop.engine.targets import format_address
from cachetop.model import Status

log = logging.getLogger("cachetop.cluster")  # the name users see in logs; stable across moves

REDISCOVER_EVERY = 10  # intervals
HOT_SLOTS = 10
BAD_FLAGS = ("handshake", "noaddr")  # nodes not (yet) usable: no address to poll


@dataclass(frozen=True, slots=True)
class ClusterNode:
    node_id: str
    host: str
    port: int
    role: str  # master | replica
    master_id: str | None
    slots: tuple[tuple[int, int], ...]
    failed: bool

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)


@dataclass(frozen=True, slots=True)
class Topology:
    nodes: tuple[ClusterNode, ...]
    shards: dict[str, str]  # node_id -> shard name ("" for a master without slots)

    def shard_of(self, node: ClusterNode) -> str | None:
        return self.shards.get(node.node_id) or None


def parse_cluster_nodes(text: str, seed_host: str) -> list[ClusterNode]:
    """Parses the CLUSTER NODES reply. `seed_host` fills in a node that does not know its own IP."""
    nodes = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        node_id, addr, flags_text, master = fields[:4]
        flags = flags_text.split(",")
        if any(f in flags for f in BAD_FLAGS):
            continue
        hostport = addr.split("@", 1)[0].split(",", 1)[0]
        host, _, port_text = hostport.rpartition(":")
        host = host.strip("[]") or seed_host
        if not port_text.isdigit() or int(port_text) == 0:
            continue
        slots = []
        for token in fields[8:]:
            if token.startswith("["):
                continue  # a slot being migrated or imported: it still belongs to its owner
            low, _, high = token.partition("-")
            slots.append((int(low), int(high or low)))
        nodes.append(
            ClusterNode(
                node_id=node_id,
                host=host,
                port=int(port_text),
                role="master" if "master" in flags else "replica",
                master_id=None if master == "-" else master,
                slots=tuple(sorted(slots)),
                failed="fail" in flags,
            )
        )
    return nodes


def slot_label(slots: tuple[tuple[int, int], ...]) -> str:
    if not slots:
        return ""
    first = f"{slots[0][0]}-{slots[0][1]}" if slots[0][0] != slots[0][1] else str(slots[0][0])
    return first if len(slots) == 1 else f"{first}+{len(slots) - 1}"


def build_topology(nodes: list[ClusterNode]) -> Topology:
    shards: dict[str, str] = {}
    for node in nodes:
        if node.role == "master":
            shards[node.node_id] = slot_label(node.slots)
    for node in nodes:
        if node.role == "replica":
            shards[node.node_id] = shards.get(node.master_id or "", "")
    ordered = sorted(nodes, key=lambda n: (_slot_sort_key(shards[n.node_id]), n.role, n.address))
    return Topology(nodes=tuple(ordered), shards=shards)


def _slot_sort_key(label: str) -> tuple[int, str]:
    head = label.split("-", 1)[0].split("+", 1)[0]
    return (int(head), label) if head.isdigit() else (1 << 20, label)


class ClusterWatcher:
    """Keeps the fleet's instances equal to the cluster's nodes, for one cluster target; a
    FigureContributor of each master's hot slots (extras["hot_slots"])."""

    def __init__(
        self, fleet: Fleet, inst: InstanceConfig, timeout: float, rediscover_every: int = REDISCOVER_EVERY
    ):
        self.fleet = fleet
        self.inst = inst
        self.timeout = timeout
        self.rediscover_every = rediscover_every
        target = inst.target
        self.seeds: tuple[tuple[str, int], ...] = target.seeds or ((target.host, target.port),)
        self.topology: Topology | None = None
        self.discoveries = 0
        self.error: str | None = None
        self._known: dict[str, tuple[Status, str | None]] = {}
        # CLUSTER SLOT-STATS (Redis 8.2, Valkey 8.0): None until tried, False when the server lacks it.
        self.slot_stats_supported: bool | None = None
        self.hot_slots: dict[str, list[dict[str, int]]] = {}  # node name -> its slots with the most keys

    # --- naming -----------------------------------------------------------------------------------

    def node_name(self, address: str) -> str:
        return f"{self.inst.name}/{address}"

    def node_config(self, host: str, port: int) -> InstanceConfig:
        target = replace(self.inst.target, host=host, port=port, mode="single", seeds=(), db=0)
        return replace(
            self.inst, name=self.node_name(format_address(host, port)), target=target, cluster=False
        )

    def pollers(self) -> list[FleetMember]:
        return self.fleet.members(f"{self.inst.name}/")

    def figures(self, instance: str) -> Figures | None:
        slots = self.hot_slots.get(instance)
        return None if slots is None else Figures(extras={"hot_slots": slots})

    # --- discovery ----------------------------------------------------------------------------------

    async def start(self) -> None:
        topology = await self.discover_from_seeds()
        if topology is None:
            # No seed answers: poll the first seed so the cluster shows as down, with the reason.
            host, port = self.seeds[0]
            node = self.node_config(host, port)
            self.fleet.add_instance(node)
            self.fleet.place(node.name, role="master", shard=None)
            return
        await self.apply(topology)

    async def discover_from_seeds(self) -> Topology | None:
        """CLUSTER NODES from the first seed that answers; None when none does."""
        from cachetop.backends.redis import CLIENT_NAME
        from cachetop.backends.redis_client import async_client

        for host, port in self.seeds:
            # No retry: the next seed is the retry.
            client = async_client(self.inst, self.timeout, CLIENT_NAME, host=host, port=port, db=0)
            try:
                raw = await client.execute_command("CLUSTER", "NODES")
            except (RedisError, OSError) as exc:
                log.info("%s: seed %s did not answer CLUSTER NODES: %s", self.inst.name, host, exc)
                continue
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()
            return self._topology_from(raw, host)
        self.error = "no seed answered CLUSTER NODES"
        return None

    async def discover_from_pollers(self) -> Topology | None:
        """CLUSTER NODES over a live node's poll connection, counted as cachetop's own command."""
        for poller in self.pollers():
            if poller.status != Status.UP:
                continue
            backend = poller.backend
            if not isinstance(backend, RunsOwnCommands):
                continue
            try:
                (raw,) = await backend.run_own(("CLUSTER", "NODES"))
            except (RedisError, OSError, TimeoutError):
                continue
            if isinstance(raw, Exception):
                continue
            return self._topology_from(raw, poller.inst.target.host)
        return await self.discover_from_seeds()

    def _topology_from(self, raw: bytes | str, seed_host: str) -> Topology:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        self.discoveries += 1
        self.error = None
        return build_topology(parse_cluster_nodes(text, seed_host))

    async def apply(self, topology: Topology) -> None:
        """Adds pollers for new nodes, removes pollers for forgotten ones, updates roles and shards."""
        self.topology = topology
        wanted = {self.node_name(n.address): n for n in topology.nodes}
        current = {p.inst.name: p for p in self.pollers()}
        for name in current.keys() - wanted.keys():
            log.info("%s: %s left the cluster", self.inst.name, name)
            self.hot_slots.pop(name, None)
            await self.fleet.remove_instance(name)
        for name, node in wanted.items():
            if name not in current:
                self.fleet.add_instance(self.node_config(node.host, node.port))
            self.fleet.place(name, role=node.role, shard=topology.shard_of(node))
        self._order()
        self._known = {p.inst.name: (p.status, p.role) for p in self.pollers()}

    def _order(self) -> None:
        """Keeps this cluster's rows together, by shard, masters first."""
        mine = self.pollers()
        mine.sort(key=lambda p: (_slot_sort_key(p.shard or ""), p.role != "master", p.inst.name))
        self.fleet.arrange([p.inst.name for p in mine])

    # --- following changes ----------------------------------------------------------------------------

    def changed(self) -> bool:
        """A node went up or down or changed role since the last discovery."""
        now = {p.inst.name: (p.status, p.role) for p in self.pollers()}
        return any(
            self._known.get(name) not in (None, state) and state[0] != Status.UNKNOWN
            for name, state in now.items()
        )

    async def run(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(self.fleet.interval / 2)
            ticks += 1
            due = ticks >= 2 * self.rediscover_every
            if not (due or self.changed() or self.topology is None):
                continue
            ticks = 0
            try:
                topology = await self.discover_from_pollers()
            except Exception:  # a bad reply must never stop the watcher
                log.exception("%s: cluster discovery failed", self.inst.name)
                continue
            if topology is not None:
                await self.read_hot_slots()
                if self.topology is None:
                    # Replace the stand-in poller added while no seed answered.
                    for poller in self.pollers():
                        await self.fleet.remove_instance(poller.inst.name)
                await self.apply(topology)
            else:
                self._known = {p.inst.name: (p.status, p.role) for p in self.pollers()}

    async def read_hot_slots(self, limit: int = HOT_SLOTS) -> None:
        """Reads each master's slots with the most keys (CLUSTER SLOT-STATS ORDERBY key-count), for its
        row's extras["hot_slots"], where the server can. The most keys, not the most traffic: ordering
        by cpu-usec or network-bytes-in needs cluster-slot-stats-enabled, off by default."""
        if self.slot_stats_supported is False:
            return
        for poller in self.pollers():
            backend = poller.backend
            if poller.status != Status.UP or poller.role != "master":
                continue
            if not isinstance(backend, RunsOwnCommands):
                continue
            command = ("CLUSTER", "SLOT-STATS", "ORDERBY", "key-count", "LIMIT", str(limit))
            try:
                (reply,) = await backend.run_own(command)
            except (RedisError, OSError, TimeoutError):
                continue
            if isinstance(reply, Exception):
                self.slot_stats_supported = False  # an older server: unknown subcommand
                return
            self.slot_stats_supported = True
            self.hot_slots[poller.inst.name] = parse_slot_stats(reply)

    async def close(self) -> None:
        return None


def parse_slot_stats(reply: Any) -> list[dict[str, int]]:
    """[[slot, [name, value, ...]], ...] -> [{"slot": n, "key-count": n, ...}, ...]."""
    out = []
    for entry in reply or ():
        slot, stats = entry[0], entry[1]
        row = {"slot": int(slot)}
        for name, value in zip(stats[::2], stats[1::2], strict=False):
            key = name.decode() if isinstance(name, bytes) else str(name)
            row[key] = int(value)
        out.append(row)
    return out
