"""Hot-key advice for one instance of a live Snapshot, and a cluster's imbalance for the fleet view.

The dashboard has no second INFO of its own to take: node loads are the snapshot's ops/s and
CPU (windowed counter deltas, own traffic out), the key's share is its share of what the hot-key
sampler saw. A cluster node's peers are the snapshot's other masters of the same cluster
(named `CLUSTER/host:port`); its replicas are the cluster's replicas of the same shard. A single
instance has the replicas INFO reports (connected_slaves). Pure: no I/O, no Textual.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cachetop.analysis.hotkey_advice import Advice, KeyTraffic, advise
from cachetop.analysis.node_balance import DEFAULT_TARGET_IMBALANCE, NodeBalance, NodeLoad, balance
from cachetop.analysis.view_traffic import counted, key_traffic, stampede_bursts
from cachetop.hotkeys.view import HotKeysView
from cachetop.model import InstanceMetrics, Snapshot, Status
from cachetop.util.safe_text import display_key


@dataclass(frozen=True, slots=True)
class InstanceAdvice:
    node: NodeBalance | None  # None when the instance has no ops/s yet
    advice: tuple[Advice, ...]
    cluster: bool

    def for_key(self, key: bytes) -> list[Advice]:
        return [a for a in self.advice if a.raw_key == key]


def cluster_of(inst: InstanceMetrics) -> str | None:
    """The cluster a node row belongs to (its name up to the last '/'), None for an instance."""
    if inst.role is None or "/" not in inst.name:
        return None
    return inst.name.rsplit("/", 1)[0]


def cluster_masters(snap: Snapshot, cluster: str) -> list[InstanceMetrics]:
    prefix = cluster + "/"
    return [
        i
        for i in snap.instances
        if i.name.startswith(prefix) and i.role == "master" and i.status == Status.UP and i.shard
    ]


def _load(snap: Snapshot, inst: InstanceMetrics, cluster: str | None) -> NodeLoad | None:
    ops = inst.metric("ops_per_sec")
    if ops is None:
        return None
    if cluster is None:
        try:
            replicas = int(inst.facts.get("connected_slaves", "0"))
        except ValueError:
            replicas = 0
    else:
        replicas = sum(
            1
            for i in snap.instances
            if cluster_of(i) == cluster and i.role == "replica" and i.shard == inst.shard
        )
    cpu = inst.metric("cpu_pct")
    return NodeLoad(inst.name, float(ops), None, None if cpu is None else float(cpu), replicas)


def _keys(inst: InstanceMetrics, view: HotKeysView | None, cluster: bool) -> list[KeyTraffic]:
    if view is None or not counted(view):
        return []
    return key_traffic(view.keys, inst.name, stampede_bursts(view), cluster=cluster)


def instance_advice(
    snap: Snapshot, name: str, target: float = DEFAULT_TARGET_IMBALANCE
) -> InstanceAdvice | None:
    inst = snap.by_name(name)
    if inst is None:
        return None
    cluster = cluster_of(inst)
    peers = cluster_masters(snap, cluster) if cluster is not None and inst.role == "master" else [inst]
    if inst not in peers:
        peers = [inst]  # a replica, or a master not up: judged on its own
    loads = [load for load in (_load(snap, p, cluster) for p in peers) if load is not None]
    own = next((load for load in loads if load.name == name), None)
    if own is None:
        return InstanceAdvice(None, (), cluster is not None)
    view = inst.extras.get("hotkeys") if inst.extras else None
    keys = _keys(inst, view, cluster is not None)
    slots: dict[int, float] = {}
    for k in keys:
        if k.slot is not None:
            slots[k.slot] = slots.get(k.slot, 0.0) + (k.sample_share or 0.0) * own.ops_per_sec
    hot_slots = {name: sorted(slots.items(), key=lambda s: -s[1])} if cluster is not None else None
    window = view.sampled_s if view is not None else 0.0
    memcached = inst.kind == "memcached"
    advice = advise(keys, loads, memcached=memcached, target=target, window_s=window, hot_slots=hot_slots)
    hot_keys = {name: [(display_key(k.key, 30), (k.sample_share or 0.0) * own.ops_per_sec) for k in keys]}
    [node] = [b for b in balance(loads, hot_slots, hot_keys) if b.name == name]
    return InstanceAdvice(node, tuple(advice), cluster is not None)


def cluster_imbalance(snap: Snapshot, cluster: str) -> tuple[str, float] | None:
    """The cluster's most loaded master and its ops/s imbalance factor, for the fleet view."""
    loads = [(i.name, i.metric("ops_per_sec")) for i in cluster_masters(snap, cluster)]
    known: Sequence[tuple[str, float]] = [(n, float(v)) for n, v in loads if v is not None]
    if len(known) < 2:
        return None
    mean = sum(v for _, v in known) / len(known)
    if mean <= 0:
        return None
    name, top = max(known, key=lambda nv: nv[1])
    return name, top / mean


def shard_imbalance(snap: Snapshot) -> dict[tuple[str, str], float]:
    """(cluster, shard) -> its master's ops/s over the mean of the cluster's masters."""
    out: dict[tuple[str, str], float] = {}
    clusters = {c for c in (cluster_of(i) for i in snap.instances) if c is not None}
    for cluster in clusters:
        masters = [(i.shard or "", i.metric("ops_per_sec")) for i in cluster_masters(snap, cluster)]
        known = [(shard, float(v)) for shard, v in masters if v is not None]
        mean = sum(v for _, v in known) / len(known) if len(known) > 1 else 0.0
        if mean > 0:
            out.update({(cluster, shard): v / mean for shard, v in known})
    return out
