"""`cachetop hotkeys --advice`: the sample, plus each node's own counters over the same interval.

For every Redis/Valkey node (each master of a cluster target, found with CLUSTER NODES) one
side connection reads INFO before and after the sample; the hot-key sampler sends its side
commands (COMMAND, CLIENT LIST) over that same connection, so the footprint is unchanged: the
MONITOR stream plus one connection. Every command on it is counted when sent and taken out of
the node's ops/s, as the poller does. After the second INFO, `MEMORY USAGE key` (it moves no hit
counter) sizes the few hottest keys of each node: at most VALUE_SIZES commands a node. With the
server's default sampling of nested values, not SAMPLES 0: a hot key is often a big collection
(a leaderboard), and SAMPLES 0 walks every element of it while the server serves nothing else.

Memcached: `watch` sees every fetch and mutation, so its node rate is the sample's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from cachetop.engine.config import InstanceConfig
from cachetop.hotkeys.collector import HotKeyCollector
from cachetop.hotkeys.config import HotKeySettings
from cachetop.hotkeys.conn import redis_client, redis_error_text
from cachetop.hotkeys.sampler import HasPhase
from cachetop.hotkeys.view import HotKeysView

VALUE_SIZES = 3  # MEMORY USAGE for this many of each node's hottest keys
STREAM_START_S = 10.0  # at most this long for every MONITOR/watch to be on before the duration runs


class CountedSide:
    """One counted connection: our INFO reads, and the MONITOR sampler's side commands (a
    SideCommands). It survives the sampler's close (that only disconnects: the next call
    reconnects, its handshake counted); `shut()` ends it."""

    def __init__(self, inst: InstanceConfig, timeout: float) -> None:
        self.sent: Counter[str] = Counter()
        self._client = redis_client(inst, timeout, count=self._count)
        self._client.response_callbacks.pop("COMMAND", None)  # raw, as the poll connection gives it

    def _count(self, command: str, n: int = 1) -> None:
        self.sent[command] += n

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    @property
    def connections(self) -> int:
        from cachetop.hotkeys.conn import client_connected

        return client_connected(self._client)

    async def call(self, *args: str | int) -> Any:
        return await self._client.execute_command(*args)

    async def ready(self) -> None:
        """Connected (a reconnect's handshake counted) before a count is read."""
        conn = self._client.connection
        if conn is None:
            await self._client.initialize()
        elif not conn.is_connected:
            await conn.connect()

    async def info(self) -> dict[str, Any]:
        return dict(await self._client.execute_command("INFO"))

    async def rest(self) -> None:
        with contextlib.suppress(Exception):
            if self._client.connection is not None:
                await self._client.connection.disconnect()

    async def close(self) -> None:
        await self.rest()

    async def shut(self) -> None:
        with contextlib.suppress(Exception):
            await self._client.aclose()


@dataclass
class NodeRun:
    """One sampled node and its counters at both ends of the sample."""

    name: str
    inst: InstanceConfig
    collector: HotKeyCollector
    side: CountedSide | None  # None for memcached
    slots: tuple[tuple[int, int], ...] = ()
    replicas: int = 0
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    t0: float = 0.0
    t1: float = 0.0
    own_at_start: int = 0
    own_between: int = 0
    view: HotKeysView | None = None
    value_sizes: dict[bytes, int] = field(default_factory=dict)
    error: str | None = None
    # CLUSTER SLOT-STATS at both ends (slot -> its counters), where the server keeps per-slot CPU
    # (Redis 8.2+, Valkey 8.0+ with cluster-slot-stats-enabled yes); None otherwise.
    slot_stats_before: dict[int, dict[str, int]] | None = None
    slot_stats_after: dict[int, dict[str, int]] | None = None

    def slot_shares(self) -> tuple[str, list[tuple[int, float]]] | None:
        """(counter, [(slot, its share of the node's per-slot traffic over the sample)]), busiest
        first; None where the server keeps no per-slot traffic. Request bytes stand in for ops
        (commands of one kind cost about the same bytes; CPU time per call is counted in whole
        microseconds, too coarse for cache commands), CPU time where bytes are missing."""
        before, after = self.slot_stats_before, self.slot_stats_after
        if before is None or after is None:
            return None
        for counter in ("network-bytes-in", "cpu-usec"):
            deltas = {
                slot: max(0, stats.get(counter, 0) - before.get(slot, {}).get(counter, 0))
                for slot, stats in after.items()
            }
            total = sum(deltas.values())
            if total > 0:
                return counter, sorted(
                    ((s, d / total) for s, d in deltas.items() if d), key=lambda sd: -sd[1]
                )
        return None

    def rate(self, *names: str) -> float | None:
        if self.before is None or self.after is None or self.t1 <= self.t0:
            return None
        try:
            delta = sum(float(self.after[n]) - float(self.before[n]) for n in names)
        except (KeyError, TypeError, ValueError):
            return None
        return max(0.0, delta) / (self.t1 - self.t0)

    @property
    def ops_per_sec(self) -> float | None:
        if self.side is None:  # memcached: the watch sample sees every fetch and mutation
            view = self.view
            return view.total_events / view.sampled_s if view and view.sampled_s else None
        raw = self.rate("total_commands_processed")
        if raw is None:
            return None
        return max(0.0, raw - self.own_between / (self.t1 - self.t0))

    @property
    def cpu_pct(self) -> float | None:
        rate = self.rate("used_cpu_sys", "used_cpu_user")
        return None if rate is None else 100.0 * rate

    @property
    def net_bytes_per_sec(self) -> float | None:
        # Input only: the output counter also holds the MONITOR stream we read.
        return self.rate("total_net_input_bytes")


@dataclass
class Group:
    """What the user named: one instance, or a cluster (its masters)."""

    name: str
    inst: InstanceConfig
    nodes: list[NodeRun]
    cluster: bool = False
    error: str | None = None


async def discover(inst: InstanceConfig, timeout: float) -> tuple[list[Any], str | None]:
    """The cluster's nodes from the first seed that answers CLUSTER NODES (before any counter
    is read, so it is in no delta)."""
    from cachetop.engine.cluster import build_topology, parse_cluster_nodes

    target = inst.target
    last = "no seed answered CLUSTER NODES"
    for host, port in target.seeds or ((target.host, target.port),):
        seed = replace(inst, target=replace(target, host=host, port=port, mode="single", seeds=(), db=0))
        client = redis_client(seed, timeout)
        try:
            raw = await client.execute_command("CLUSTER", "NODES")
        except Exception as exc:
            last = redis_error_text(inst, exc)
            continue
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return list(build_topology(parse_cluster_nodes(text, host)).nodes), None
    return [], last


def node_config(inst: InstanceConfig, host: str, port: int, name: str) -> InstanceConfig:
    target = replace(inst.target, host=host, port=port, mode="single", seeds=(), db=0)
    return replace(inst, name=name, target=target, cluster=False)


async def build_groups(
    instances: list[InstanceConfig], settings: HotKeySettings, duration: float, timeout_of: Any
) -> list[Group]:
    def run(node_inst: InstanceConfig, name: str, timeout: float) -> NodeRun:
        memcached = node_inst.target.kind == "memcached"
        side = None if memcached else CountedSide(node_inst, timeout)
        collector = HotKeyCollector(node_inst, settings, window_s=duration + 1, timeout=timeout, side=side)
        return NodeRun(name, node_inst, collector, side)

    groups = []
    for inst in instances:
        timeout = timeout_of(inst)
        if not inst.cluster:
            groups.append(Group(inst.name, inst, [run(inst, inst.name, timeout)]))
            continue
        nodes, error = await discover(inst, timeout)
        masters = [n for n in nodes if n.role == "master" and n.slots and not n.failed]
        runs = []
        for m in masters:
            name = f"{inst.name}/{m.address}"
            node_run = run(node_config(inst, m.host, m.port, name), name, timeout)
            node_run.slots = m.slots
            node_run.replicas = sum(1 for n in nodes if n.master_id == m.node_id and not n.failed)
            runs.append(node_run)
        groups.append(Group(inst.name, inst, runs, cluster=True, error=error if not runs else None))
    return groups


async def read_counters(node: NodeRun, first: bool) -> None:
    """INFO at one end of the sample; the command count is taken before it is sent, so the
    first INFO is inside the delta (the server counts it after its reply) and the second is not."""
    if node.side is None:
        return
    try:
        await node.side.ready()
        count = node.side.total
        now = time.monotonic()
        info = await node.side.info()
    except Exception as exc:
        node.error = redis_error_text(node.inst, exc)
        return
    if first:
        node.before, node.t0, node.own_at_start = info, now, count
        if not node.replicas and not node.slots:
            with contextlib.suppress(TypeError, ValueError):
                node.replicas = int(info.get("connected_slaves", 0))
        node.slot_stats_before = await slot_stats(node)
    else:
        node.after, node.t1 = info, now
        node.own_between = count - node.own_at_start + node.collector.own_commands
        if node.slot_stats_before is not None:
            node.slot_stats_after = await slot_stats(node)


async def slot_stats(node: NodeRun) -> dict[int, dict[str, int]] | None:
    """CLUSTER SLOT-STATS over the node's own slot ranges; None where the server lacks the
    command or keeps no per-slot CPU (then the hot-key sample stands in)."""
    from cachetop.engine.cluster import parse_slot_stats

    if node.side is None or not node.slots:
        return None
    out: dict[int, dict[str, int]] = {}
    try:
        for lo, hi in node.slots:
            reply = await node.side.call("CLUSTER", "SLOT-STATS", "SLOTSRANGE", lo, hi)
            for row in parse_slot_stats(reply):
                out[row.pop("slot")] = row
    except Exception:  # an older server: unknown subcommand
        return None
    traffic = ("cpu-usec", "network-bytes-in")
    return out if any(name in row for row in out.values() for name in traffic) else None


async def size_values(node: NodeRun) -> None:
    """MEMORY USAGE (no hit counted, no LRU touched) for the node's few hottest keys: a
    collection's size estimated from a few of its elements (the server's default), never by
    walking all of them (SAMPLES 0 is O(elements) and blocks the server meanwhile)."""
    if node.side is None or node.view is None:
        return
    for key in sorted(node.view.keys, key=lambda k: k.count, reverse=True)[:VALUE_SIZES]:
        with contextlib.suppress(Exception):
            size = await node.side.call("MEMORY", "USAGE", key.key)
            if isinstance(size, int):
                node.value_sizes[key.key] = size


async def _streams_on(nodes: list[NodeRun], done: asyncio.Event) -> None:
    def on(node: NodeRun) -> bool:
        c = node.collector
        if c.status in ("error", "off"):
            return True
        if c.sampler is None:
            return False
        return not isinstance(c.sampler, HasPhase) or c.sampler.phase != "starting"

    while not done.is_set() and not all(on(n) for n in nodes):
        await asyncio.sleep(0.02)


async def sample_groups(groups: list[Group], duration: float, done: asyncio.Event) -> None:
    """INFO, the sample, INFO, sizes: every node's connection closed at the end, also on Ctrl-C."""
    nodes = [n for g in groups for n in g.nodes]
    try:
        await asyncio.gather(*(read_counters(n, True) for n in nodes))
        for n in nodes:
            await n.collector.start()
        # The duration counts from when every stream is on: on a busy host connecting and
        # loading the command table can take a good part of a short sample.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_streams_on(nodes, done), STREAM_START_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), duration + 0.2)
        for n in nodes:
            n.view = n.collector.snapshot()
        await asyncio.gather(*(n.collector.stop() for n in nodes))
        await asyncio.gather(*(read_counters(n, False) for n in nodes))
        await asyncio.gather(*(size_values(n) for n in nodes))
    finally:
        await asyncio.gather(*(n.collector.stop() for n in nodes))
        for n in nodes:
            if n.side is not None:
                await n.side.shut()
