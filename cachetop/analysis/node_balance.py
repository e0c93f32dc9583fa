"""Cluster balance: each master's load against the cluster mean, and what it takes to even it out.

The imbalance factor of a node is its value over the mean of the cluster's masters: 1.0 is an
average node, 2.0 a node doing twice the mean. It is computed for ops/s, network bytes/s and CPU
from the servers' own counters (deltas of INFO stats / cpu over the same interval), so it is exact
up to the interval's alignment between nodes.

What makes the difference: a node's excess (its load over the mean) is explained by its hottest
slots (CLUSTER SLOT-STATS where the server has it, else the hot keys the sample saw, summed per
slot) and keys. Pure: plain numbers in, plain numbers out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DEFAULT_TARGET_IMBALANCE = 1.2  # a split plan aims at most 20% above the cluster mean
CONTRIBUTORS = 3  # slots and keys listed per node


@dataclass(frozen=True, slots=True)
class NodeLoad:
    """One master's load over the sampling interval (rates from counter deltas)."""

    name: str
    ops_per_sec: float
    net_bytes_per_sec: float | None = None
    cpu_pct: float | None = None  # share of one core
    replicas: int = 0  # replicas serving its shard


@dataclass(frozen=True, slots=True)
class Contributor:
    what: str  # "slot" | "key"
    name: str  # the slot number, or the key (escaped, truncated)
    ops_per_sec: float
    excess_pct: float  # share of the node's excess over the mean it explains, 0..100+


@dataclass(frozen=True, slots=True)
class NodeBalance:
    name: str
    ops_per_sec: float
    imbalance: float | None  # ops / cluster mean; None when the cluster did nothing
    net_bytes_per_sec: float | None = None
    net_imbalance: float | None = None
    cpu_pct: float | None = None
    cpu_imbalance: float | None = None
    excess_ops: float = 0.0  # ops/s above the mean (0 at or below it)
    replicas: int = 0
    contributors: tuple[Contributor, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "ops_per_sec": round(self.ops_per_sec, 2),
            "imbalance": _round(self.imbalance, 3),
            "net_bytes_per_sec": _round(self.net_bytes_per_sec, 1),
            "net_imbalance": _round(self.net_imbalance, 3),
            "cpu_pct": _round(self.cpu_pct, 2),
            "cpu_imbalance": _round(self.cpu_imbalance, 3),
            "replicas": self.replicas,
            "contributors": [
                {
                    "what": c.what,
                    "name": c.name,
                    "ops_per_sec": round(c.ops_per_sec, 2),
                    "excess_pct": round(c.excess_pct, 1),
                }
                for c in self.contributors
            ],
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def imbalance(value: float | None, values: Sequence[float | None]) -> float | None:
    """value / mean(values); None when any value is unknown or the mean is 0."""
    if value is None or not values or any(v is None for v in values):
        return None
    mean = sum(v for v in values if v is not None) / len(values)
    return value / mean if mean > 0 else None


def balance(
    nodes: Sequence[NodeLoad],
    hot_slots: Mapping[str, Sequence[tuple[int, float]]] | None = None,
    hot_keys: Mapping[str, Sequence[tuple[str, float]]] | None = None,
) -> list[NodeBalance]:
    """Each node against the mean of `nodes` (the masters). hot_slots / hot_keys: per node name,
    (slot, ops/s) and (shown key, ops/s) of what the sample or SLOT-STATS saw there."""
    ops = [n.ops_per_sec for n in nodes]
    nets = [n.net_bytes_per_sec for n in nodes]
    cpus = [n.cpu_pct for n in nodes]
    mean = sum(ops) / len(ops) if ops else 0.0
    out = []
    for node in nodes:
        excess = max(0.0, node.ops_per_sec - mean)
        contributors: list[Contributor] = []
        if excess > 0:
            for slot, rate in sorted((hot_slots or {}).get(node.name, ()), key=lambda s: -s[1])[
                :CONTRIBUTORS
            ]:
                contributors.append(Contributor("slot", str(slot), rate, 100.0 * rate / excess))
            for key, rate in sorted((hot_keys or {}).get(node.name, ()), key=lambda k: -k[1])[:CONTRIBUTORS]:
                contributors.append(Contributor("key", key, rate, 100.0 * rate / excess))
        out.append(
            NodeBalance(
                name=node.name,
                ops_per_sec=node.ops_per_sec,
                imbalance=imbalance(node.ops_per_sec, ops) if len(nodes) > 1 else None,
                net_bytes_per_sec=node.net_bytes_per_sec,
                net_imbalance=imbalance(node.net_bytes_per_sec, nets) if len(nodes) > 1 else None,
                cpu_pct=node.cpu_pct,
                cpu_imbalance=imbalance(node.cpu_pct, cpus) if len(nodes) > 1 else None,
                excess_ops=excess,
                replicas=node.replicas,
                contributors=tuple(contributors),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class SplitPlan:
    copies: int
    node_ops_after: float
    imbalance_before: float
    imbalance_after: float
    reaches_target: bool
    sharded: bool  # True: writes spread over parts, reads read all parts (a write-hot key)


def plan_split(
    loads: Sequence[float],
    node: int,
    reads: float,
    writes: float,
    target: float = DEFAULT_TARGET_IMBALANCE,
) -> SplitPlan | None:
    """The fewest copies N (2..masters) of one key, on N different masters, that bring `node`
    (index into `loads`, the masters' ops/s) to at most `target` times the cluster mean.

    A read-mostly key becomes N replicated copies: a read goes to one copy (reads/N each), a
    write to all of them (writes each). A write-hot key becomes N sharded parts: a write goes to
    one part (writes/N each), a read reads all parts (reads each). The other copies go to the
    coolest masters. More copies than masters do not help (each master would hold several).
    When no N reaches the target, the N that brings the node lowest, with reaches_target False.
    None in a single instance or with no traffic: there is no other node to spread to."""
    masters = len(loads)
    total = sum(loads)
    if masters < 2 or total <= 0 or reads + writes <= 0:
        return None
    before = loads[node] / (total / masters)
    sharded = writes > reads
    coolest = sorted((i for i in range(masters) if i != node), key=lambda i: loads[i])
    best: SplitPlan | None = None
    for copies in range(2, masters + 1):
        per_copy = writes / copies + reads if sharded else reads / copies + writes
        after = list(loads)
        after[node] = loads[node] - reads - writes + per_copy
        for i in coolest[: copies - 1]:
            after[i] += per_copy
        mean = sum(after) / masters
        ratio = after[node] / mean
        plan = SplitPlan(copies, after[node], before, ratio, ratio <= target, sharded)
        if plan.reaches_target:
            return plan
        if best is None or ratio < best.imbalance_after - 1e-9:
            best = plan
    return best


@dataclass(frozen=True, slots=True)
class SlotMove:
    slot: int
    source: str
    destination: str
    slot_ops: float
    source_ops_after: float
    destination_ops_after: float


def plan_slot_move(nodes: Sequence[NodeLoad], source: str, slot: int, slot_ops: float) -> SlotMove | None:
    """Moving one slot from `source` to the coolest other master, when that lowers the busiest
    of the two: a slot whose load would make the destination as hot as the source was is not
    moved (that only moves the hot spot). None otherwise."""
    src = next((n for n in nodes if n.name == source), None)
    others = [n for n in nodes if n.name != source]
    if src is None or not others or slot_ops <= 0:
        return None
    dst = min(others, key=lambda n: n.ops_per_sec)
    src_after = src.ops_per_sec - slot_ops
    dst_after = dst.ops_per_sec + slot_ops
    if max(src_after, dst_after) >= src.ops_per_sec * 0.95:  # less than 5% better: not worth a move
        return None
    return SlotMove(slot, source, dst.name, slot_ops, src_after, dst_after)
