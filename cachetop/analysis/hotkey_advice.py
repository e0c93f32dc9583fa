"""What to do about each hot key, and by how much it helps: pure estimates over a hot-key sample.

Inputs are plain numbers: per key what the sampler saw (reads, writes, hits and misses where the
source can tell, value size where known, stampede bursts), per master its ops/s from the server's
own counters (node_balance.NodeLoad). Each piece of advice carries its expected effect as the
share of its node's ops that go away (or move to another node), and the list is ranked by it.

Models, each an estimate with its assumptions (docs/hotkeys.md says when not to follow them):
- client_cache (local_cache for memcached): a read-mostly key cached in the client, invalidated on
  each write (CLIENT TRACKING), so every read goes away but one re-read per write;
- replica_reads: a read-mostly key whose shard has R replicas, reads spread over the master and
  its replicas (what cluster clients with read-from-replicas do): the master keeps 1/(R+1);
- split: a write-hot or cluster-hot key on a master above the target imbalance, spread as N
  copies (node_balance.plan_split), N the fewest that bring the node under the target;
- move_slot: one slot carries most of the node's excess, and moving it to the coolest master
  lowers the busier of the two (node_balance.plan_slot_move);
- stampede: the stampede detector fired for the key: a lock or probabilistic early refresh
  (XFetch) saves the redundant recomputes, (writers - 1) reads and writes per burst.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cachetop.analysis.node_balance import (
    DEFAULT_TARGET_IMBALANCE,
    NodeLoad,
    SplitPlan,
    imbalance,
    plan_slot_move,
    plan_split,
)
from cachetop.hotkeys.view import JSON_KEY_MAX
from cachetop.util.safe_text import display_key

READ_MOSTLY = 0.8  # reads / (reads + writes) at or above this: a key worth caching
WRITE_HOT = 0.5  # writes / (reads + writes) at or above this: cache no good, split it
MIN_EFFECT_PCT = 5.0  # advice that removes less of its node's ops is not worth a change: left out
SLOT_CARRIES = 0.5  # a slot "carries" the imbalance when it explains half the node's excess
KEY_SHOWN = 60
# Which advice comes first when two promise the same: removing ops beats moving them.
KIND_ORDER = ("client_cache", "local_cache", "split", "replica_reads", "move_slot", "stampede")


@dataclass(frozen=True, slots=True)
class KeyTraffic:
    """One sampled key on its node, over the sample."""

    key: bytes
    node: str
    ops_per_sec: float
    reads: int
    writes: int
    hits: int | None = None  # None: the source cannot tell (MONITOR sees no replies)
    misses: int | None = None
    value_bytes: int | None = None
    slot: int | None = None
    stampede_bursts: int = 0
    stampede_writers: int = 0  # most clients that recomputed it in one burst
    # Its share of the key operations the sample saw on its node (MONITOR, watch): better than
    # ops_per_sec / the node's counters when the sample ran for only part of their interval.
    sample_share: float | None = None


@dataclass(frozen=True, slots=True)
class KeyFacts:
    key: str  # escaped, truncated
    node: str
    slot: int | None
    node_share_pct: float | None  # the key's share of its node's ops
    read_pct: float | None
    hit_pct: float | None  # None: the source cannot tell hits from misses
    value_bytes: int | None
    net_bytes_per_sec: float | None  # ops/s x value size: what it costs the network

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "node": self.node,
            "slot": self.slot,
            "node_share_pct": _r(self.node_share_pct, 2),
            "read_pct": _r(self.read_pct, 1),
            "hit_pct": _r(self.hit_pct, 1),
            "value_bytes": self.value_bytes,
            "net_bytes_per_sec": _r(self.net_bytes_per_sec, 1),
        }


@dataclass(frozen=True, slots=True)
class Advice:
    kind: str
    key: str  # escaped, truncated ("" when the advice is about a slot with no sampled key)
    node: str
    expected_ops_reduction_pct: float  # of the node's ops, 0..100
    detail: str
    copies: int | None = None  # split
    destination: str | None = None  # move_slot
    slot: int | None = None
    raw_key: bytes = b""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            # As the keys list spells it (escaped, cut at 1024), so the two can be matched.
            "key": display_key(self.raw_key, JSON_KEY_MAX) if self.raw_key else self.key,
            "node": self.node,
            "expected_ops_reduction_pct": round(self.expected_ops_reduction_pct, 1),
            "detail": self.detail,
        }
        for name in ("copies", "destination", "slot"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def node_share(key: KeyTraffic, node_ops: float | None) -> float | None:
    """The key's share of its node's ops (0..1): its share of what the sample saw where the
    sample says so, else its ops over the node's (the two cover the same interval)."""
    if not node_ops or node_ops <= 0:
        return None
    if key.sample_share is not None:
        return min(1.0, key.sample_share)
    return min(1.0, key.ops_per_sec / node_ops)


def key_rate(key: KeyTraffic, node_ops: float) -> float:
    """The key's ops/s on the node's scale (share x node ops/s), so the two add up."""
    share = node_share(key, node_ops)
    return key.ops_per_sec if share is None else share * node_ops


def key_facts(key: KeyTraffic, node_ops: float | None) -> KeyFacts:
    total = key.reads + key.writes
    share = node_share(key, node_ops)
    looked_up = (key.hits or 0) + (key.misses or 0)
    return KeyFacts(
        key=display_key(key.key, KEY_SHOWN),
        node=key.node,
        slot=key.slot,
        node_share_pct=None if share is None else 100.0 * share,
        read_pct=100.0 * key.reads / total if total else None,
        hit_pct=100.0 * (key.hits or 0) / looked_up if key.hits is not None and looked_up else None,
        value_bytes=key.value_bytes,
        net_bytes_per_sec=None
        if key.value_bytes is None or node_ops is None
        else key_rate(key, node_ops) * key.value_bytes,
    )


def client_cache_pct(share: float, reads: int, writes: int) -> float:
    """% of the node's ops a client-side cache removes: the key's reads, less one re-read per
    write (each write invalidates the cached copy)."""
    total = reads + writes
    if total <= 0:
        return 0.0
    return 100.0 * share * max(0, reads - writes) / total


def replica_reads_pct(share: float, reads: int, writes: int, replicas: int) -> float:
    """% of the master's ops that move to its replicas when reads spread over master and replicas."""
    total = reads + writes
    if total <= 0 or replicas < 1:
        return 0.0
    return 100.0 * share * reads / total * replicas / (replicas + 1)


def advise(
    keys: Sequence[KeyTraffic],
    nodes: Sequence[NodeLoad],
    *,
    memcached: bool = False,
    target: float = DEFAULT_TARGET_IMBALANCE,
    window_s: float = 0.0,
    hot_slots: dict[str, Sequence[tuple[int, float]]] | None = None,
) -> list[Advice]:
    """Advice for `keys` on `nodes` (a cluster's masters, or the one instance), ranked by effect.
    window_s: how long the sample ran (stampede bursts per node op). hot_slots: per node, (slot,
    ops/s) from SLOT-STATS or summed from the sample; None to plan no slot moves."""
    by_name = {n.name: n for n in nodes}
    loads = [n.ops_per_sec for n in nodes]
    out: list[Advice] = []
    for key in keys:
        node = by_name.get(key.node)
        if node is None:
            continue
        share = node_share(key, node.ops_per_sec)
        total = key.reads + key.writes
        shown = display_key(key.key, KEY_SHOWN)
        common: dict[str, Any] = {"key": shown, "node": node.name, "slot": key.slot, "raw_key": key.key}
        # Before the traffic checks: a key that stampeded but fell out of the sample's top list
        # (no reads or writes counted) still gets this advice.
        if key.stampede_bursts:
            out.append(_stampede_advice(key, node.ops_per_sec * window_s, common))
        if share is None or total <= 0:
            continue
        read_frac = key.reads / total
        if read_frac >= READ_MOSTLY:
            pct = client_cache_pct(share, key.reads, key.writes)
            if pct >= MIN_EFFECT_PCT:
                out.append(
                    Advice(
                        kind="local_cache" if memcached else "client_cache",
                        expected_ops_reduction_pct=pct,
                        detail=_cache_detail(memcached, read_frac, key, pct),
                        **common,
                    )
                )
            pct = replica_reads_pct(share, key.reads, key.writes, node.replicas)
            if pct >= MIN_EFFECT_PCT:
                detail = (
                    f"read it from the shard's {node.replicas} replica{'s' if node.replicas > 1 else ''}"
                    f" too (READONLY / read-from-replicas): ~{pct:.0f}% of the master's ops move there;"
                    " replicas lag, so only for reads that can be a little stale"
                )
                out.append(
                    Advice(kind="replica_reads", expected_ops_reduction_pct=pct, detail=detail, **common)
                )
        node_imb = imbalance(node.ops_per_sec, loads) if len(nodes) > 1 else None
        excess = node.ops_per_sec - sum(loads) / len(loads)
        rate = share * node.ops_per_sec
        cluster_hot = node_imb is not None and node_imb > target and rate >= 0.5 * excess
        if node_imb is not None and node_imb > target and (1 - read_frac >= WRITE_HOT or cluster_hot):
            rate_r, rate_w = rate * read_frac, rate * (1 - read_frac)
            plan = plan_split(loads, list(nodes).index(node), rate_r, rate_w, target)
            if plan is not None:
                pct = 100.0 * (node.ops_per_sec - plan.node_ops_after) / node.ops_per_sec
                if pct >= MIN_EFFECT_PCT:
                    out.append(
                        Advice(
                            kind="split",
                            expected_ops_reduction_pct=pct,
                            detail=_split_detail(plan, node_imb, target),
                            copies=plan.copies,
                            **common,
                        )
                    )
    out.extend(_slot_moves(keys, nodes, target, hot_slots))
    return rank(out)


def rank(advice: Sequence[Advice]) -> list[Advice]:
    return sorted(advice, key=lambda a: (-round(a.expected_ops_reduction_pct, 6), KIND_ORDER.index(a.kind)))


def _slot_moves(
    keys: Sequence[KeyTraffic],
    nodes: Sequence[NodeLoad],
    target: float,
    hot_slots: dict[str, Sequence[tuple[int, float]]] | None,
) -> list[Advice]:
    if hot_slots is None or len(nodes) < 2:
        return []
    loads = [n.ops_per_sec for n in nodes]
    mean = sum(loads) / len(loads)
    out = []
    for node in nodes:
        imb = imbalance(node.ops_per_sec, loads)
        slots = sorted(hot_slots.get(node.name, ()), key=lambda s: -s[1])
        if imb is None or imb <= target or not slots:
            continue
        slot, rate = slots[0]
        if rate < SLOT_CARRIES * (node.ops_per_sec - mean):
            continue
        move = plan_slot_move(nodes, node.name, slot, rate)
        if move is None:
            continue
        in_slot = [k for k in keys if k.slot == slot and k.node == node.name]
        top = max(in_slot, key=lambda k: k.ops_per_sec, default=None)
        pct = 100.0 * rate / node.ops_per_sec
        detail = (
            f"move slot {slot} ({rate:,.0f} ops/s) from {node.name} to {move.destination}, the coolest"
            f" master: {node.name} goes to {move.source_ops_after:,.0f} ops/s, {move.destination} to"
            f" {move.destination_ops_after:,.0f} (redis-cli --cluster reshard, or CLUSTER SETSLOT)"
        )
        out.append(
            Advice(
                kind="move_slot",
                key=display_key(top.key, KEY_SHOWN) if top else "",
                node=node.name,
                expected_ops_reduction_pct=pct,
                detail=detail,
                destination=move.destination,
                slot=slot,
                raw_key=top.key if top else b"",
            )
        )
    return out


def _cache_detail(memcached: bool, read_frac: float, key: KeyTraffic, pct: float) -> str:
    how = (
        "cache it in the application with a short TTL (memcached cannot invalidate it: reads may"
        " be stale for up to the TTL)"
        if memcached
        else "cache it in the client with CLIENT TRACKING (the server invalidates it on each write)"
    )
    cost = (
        "a write reaches the readers only when their copy expires"
        if memcached
        else "one re-read per write per client"
    )
    return (
        f"{how}: ~{pct:.0f}% of the node's ops go away ({read_frac:.0%} reads; {cost},"
        f" {key.writes:,} writes in the sample)"
    )


def _split_detail(plan: SplitPlan, node_imb: float, target: float) -> str:
    n = plan.copies
    if plan.sharded:
        shape = f"split it into {n} parts on different masters (a write goes to one part, a read sums all)"
    else:
        shape = f"keep {n} copies on different masters (a read goes to one copy, a write to all)"
    reach = f"the node goes from {node_imb:.2f}x to {plan.imbalance_after:.2f}x the cluster mean" + (
        "" if plan.reaches_target else f" (target {target:g}x not reachable by a split alone)"
    )
    return f"{shape}: {reach}"


def _stampede_advice(key: KeyTraffic, node_ops: float, common: dict[str, Any]) -> Advice:
    """(writers - 1) redundant recomputes per burst, each a read and a write, of `node_ops` (the
    node's ops over the sample)."""
    saved = key.stampede_bursts * max(0, key.stampede_writers - 1) * 2
    pct = 100.0 * saved / node_ops if node_ops > 0 else 0.0
    return Advice(
        kind="stampede", expected_ops_reduction_pct=min(pct, 100.0), detail=_stampede_detail(key), **common
    )


def _stampede_detail(key: KeyTraffic) -> str:
    bursts = f"{key.stampede_bursts} miss burst{'s' if key.stampede_bursts > 1 else ''}"
    return (
        f"{bursts} seen, up to {key.stampede_writers} clients recomputing it at once: let one client"
        " recompute (a lock: SET <key>:lock 1 NX PX <recompute ms>) or refresh it early with"
        " probability rising towards expiry (XFetch)"
    )
