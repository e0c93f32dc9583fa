"""`cachetop hotkeys --advice`: from the sampled nodes to facts, balance and advice, as JSON or text."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from cachetop.analysis.hotkey_advice import Advice, KeyFacts, KeyTraffic, advise, key_facts, key_rate
from cachetop.analysis.node_balance import DEFAULT_TARGET_IMBALANCE, NodeBalance, NodeLoad, balance
from cachetop.analysis.view_traffic import COUNTED_UNITS, counted, key_slot, key_traffic, stampede_bursts
from cachetop.commands.hotkeys_advice import Group, NodeRun
from cachetop.hotkeys.view import JSON_KEY_MAX
from cachetop.util.safe_text import display_key


@dataclass(frozen=True)
class GroupAdvice:
    keys: list[KeyTraffic]
    facts: dict[tuple[str, bytes], KeyFacts]
    balance: list[NodeBalance]
    advice: list[Advice]
    notes: list[str]


def node_keys(node: NodeRun, cluster: bool) -> list[KeyTraffic]:
    """Every key the view lists (--advice asks for ADVICE_KEYS), so per-slot sums see the
    many lukewarm keys of a hot slot too."""
    view = node.view
    if view is None or not counted(view):
        return []
    bursts = stampede_bursts(view)
    by_count = sorted(view.keys, key=lambda k: k.count, reverse=True)
    out = key_traffic(by_count, node.name, bursts, cluster=cluster, value_sizes=node.value_sizes)
    # A key that stampeded but fell out of the top still gets its advice.
    listed = {k.key for k in out}
    for key, (n, writers) in bursts.items():
        if key not in listed:
            slot = key_slot(key) if cluster else None
            out.append(
                KeyTraffic(key, node.name, 0.0, 0, 0, slot=slot, stampede_bursts=n, stampede_writers=writers)
            )
    return out


def analyse(group: Group, target: float) -> GroupAdvice:
    keys: list[KeyTraffic] = []
    loads: list[NodeLoad] = []
    notes: list[str] = []
    monitor_note = ""
    memcached = group.inst.target.kind == "memcached"
    for node in group.nodes:
        keys += node_keys(node, group.cluster)
        ops = node.ops_per_sec
        if ops is None:
            notes.append(f"{node.name}: no counters ({node.error or 'no sample'}): left out of the balance")
            continue
        loads.append(NodeLoad(node.name, ops, node.net_bytes_per_sec, node.cpu_pct, node.replicas))
        view = node.view
        if view is not None and view.unit not in COUNTED_UNITS:
            notes.append(
                f"{node.name}: the {view.source} source counts {view.unit}, not operations: no advice"
            )
        elif view is not None and view.source == "monitor":
            monitor_note = "MONITOR sees no replies: hits and misses unknown"
    if monitor_note:
        notes.append(monitor_note)
    by_node = {n.name: n.ops_per_sec for n in loads}
    hot_slots: dict[str, list[tuple[int, float]]] | None = None
    if group.cluster:
        sums: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
        for k in keys:
            if k.slot is not None and k.node in by_node:
                sums[k.node][k.slot] += key_rate(k, by_node[k.node])
        hot_slots = {node: sorted(slots.items(), key=lambda s: -s[1]) for node, slots in sums.items()}
        for node in group.nodes:  # the server's own per-slot counters, where it keeps them
            found = node.slot_shares()
            if found is not None and node.name in by_node:
                counter, shares = found
                hot_slots[node.name] = [(slot, share * by_node[node.name]) for slot, share in shares[:10]]
                notes.append(f"{node.name}: slot load from CLUSTER SLOT-STATS ({counter} per slot)")
    facts = {(k.node, k.key): key_facts(k, by_node.get(k.node)) for k in keys}
    hot_keys = {
        name: [(display_key(k.key, 40), key_rate(k, ops)) for k in keys if k.node == name]
        for name, ops in by_node.items()
    }
    window = max((n.view.sampled_s for n in group.nodes if n.view), default=0.0)
    advice = advise(keys, loads, memcached=memcached, target=target, window_s=window, hot_slots=hot_slots)
    return GroupAdvice(keys, facts, balance(loads, hot_slots, hot_keys), advice, notes)


def _key_json(raw: dict[str, Any], facts: KeyFacts | None) -> dict[str, Any]:
    if facts is None:
        return raw
    extra = facts.to_json()
    extra.pop("key")
    return {**raw, **extra}


def group_json(group: Group, result: GroupAdvice, top: int) -> dict[str, Any]:
    """The instance's usual JSON, plus "nodes" and "advice" (and per key its facts); a cluster
    is one element whose keys come from all its masters, each with its node."""
    views = [(n.name, n.view) for n in group.nodes if n.view is not None]
    docs = [(name, view, view.to_json()) for name, view in views]
    keyed = []
    for name, view, doc in docs:
        raws = sorted(view.keys, key=lambda k: k.count, reverse=True)  # to_json's order
        for raw, entry in zip(raws, doc["keys"], strict=True):
            keyed.append(_key_json({**entry, "node": name}, result.facts.get((name, raw.key))))
    keyed.sort(key=lambda k: k["count"], reverse=True)
    if not group.cluster and docs:
        out = docs[0][2]
    else:
        failed = group.error is not None or any(view.status == "error" for _, view in views)
        out = {
            "name": group.name,
            "cluster": True,
            "source": views[0][1].source if views else "none",
            "status": "error" if failed else "ok",
            "error": group.error,
            "sampled_s": round(max((view.sampled_s for _, view in views), default=0.0), 3),
            "total_events": sum(view.total_events for _, view in views),
            "stampedes": [s for _, _, doc in docs for s in doc["stampedes"]],
        }
    out["keys"] = keyed[:top]
    if "prefixes" in out:
        out["prefixes"] = out["prefixes"][:top]
    out["nodes"] = [b.to_json() for b in result.balance]
    out["advice"] = [a.to_json() for a in result.advice]
    out["notes"] = [display_key(n, JSON_KEY_MAX) for n in result.notes]
    out["own_commands"] = sum(
        (n.side.total if n.side is not None else 0) + n.collector.own_commands for n in group.nodes
    )
    return out


def print_group(
    out: Any, group: Group, result: GroupAdvice, target: float = DEFAULT_TARGET_IMBALANCE
) -> None:
    """The nodes and the advice under the instance's (or each master's) table; a node above
    `target` (--target-imbalance) in red."""
    from rich.text import Text

    title = Text(f"{display_key(group.name, out.name_max)}: ", style="bold")
    title.append("balance and advice", style="dim")
    out.line(title)
    if group.error:
        out.line(Text(f"  {display_key(group.error, 200)}", style="red"))

    def short(name: str) -> str:  # a cluster's nodes without the cluster's name before each
        name = name.removeprefix(group.name + "/") if group.cluster else name
        return display_key(name, out.name_max)

    for b in result.balance:
        line = f"  {short(b.name)}  {b.ops_per_sec:,.0f} ops/s"
        if b.imbalance is not None:
            line += f"  {b.imbalance:.2f}x the mean"
            line += "".join(
                f"  {label} {value:.2f}x"
                for label, value in (("net", b.net_imbalance), ("cpu", b.cpu_imbalance))
                if value is not None
            )
        shown = [c for c in b.contributors if c.excess_pct >= 5][:2]
        if shown:
            line += "  excess: " + ", ".join(f"{c.what} {c.name} {c.excess_pct:.0f}%" for c in shown)
        out.line(Text(line, style="bold red" if (b.imbalance or 0) > target else ""))
    if not result.advice and result.balance:
        out.line(Text("  no advice: no key takes enough of its node's ops to be worth a change", style="dim"))
    for rank, a in enumerate(result.advice, 1):
        head = Text(f"  {rank}. {a.kind} ", style="bold")
        head.append(f"-{a.expected_ops_reduction_pct:.0f}% ", style="green")
        head.append(f"{a.key or 'slot ' + str(a.slot)} on {short(a.node)}: ")
        head.append(a.detail)
        out.line(head)
    for note in result.notes:
        out.line(Text(f"  {display_key(note, 200)}", style="dim"))
