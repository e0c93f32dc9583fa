"""The Hot keys tab's advice line (for the selected key) and node line, as plain text.

Pure (no Textual): built from analysis.snapshot_advice.InstanceAdvice; keys and node names are
escaped and cut here, and the widget shows the result with markup off.
"""

from __future__ import annotations

from cachetop.analysis.hotkey_advice import MIN_EFFECT_PCT, Advice
from cachetop.analysis.snapshot_advice import InstanceAdvice
from cachetop.util import format as fmt
from cachetop.util.safe_text import display_key


def short(advice: Advice) -> str:
    """What to do, in a few words (docs/hotkeys.md explains each)."""
    kind = advice.kind
    if kind == "client_cache":
        return "cache it in the client (CLIENT TRACKING)"
    if kind == "local_cache":
        return "cache it in the app with a short TTL"
    if kind == "replica_reads":
        return "read it from the replicas too"
    if kind == "split":
        return f"split it into {advice.copies} copies"
    if kind == "move_slot":
        return f"move slot {advice.slot} to {display_key(advice.destination or '?', 24)}"
    return "one recompute at a time (lock or XFetch)"


def advice_line(result: InstanceAdvice | None, key: bytes | None) -> str:
    """`advice: cache it in the client (CLIENT TRACKING): -65% of this node's ops` for the key
    under the cursor; the next piece of advice follows after `then`."""
    if result is None or key is None:
        return ""
    mine = result.for_key(key)
    if not mine:
        return f"advice: none for this key (no change would remove ≥ {MIN_EFFECT_PCT:g}% of the node's ops)"
    first = mine[0]
    line = f"advice: {short(first)}: -{first.expected_ops_reduction_pct:.0f}% of this node's ops"
    if len(mine) > 1:
        line += f"; then {short(mine[1])} (-{mine[1].expected_ops_reduction_pct:.0f}%)"
    return line


def node_line(result: InstanceAdvice | None) -> str:
    """The node under the table: its ops/s against the cluster mean and what makes the difference."""
    if result is None or result.node is None:
        return "node: no ops/s yet"
    node = result.node
    line = f"node: {fmt.rate(node.ops_per_sec)} ops/s"
    if node.imbalance is None:
        line += " (one instance: no cluster mean to compare)" if not result.cluster else ""
    else:
        line += f", {node.imbalance:.2f}x the cluster mean"
        if node.cpu_imbalance is not None:
            line += f" (cpu {node.cpu_imbalance:.2f}x)"
    line += f"; {node.replicas} replica{'' if node.replicas == 1 else 's'}"
    if node.contributors:
        parts = [f"{c.what} {_cut(c.name, 24)} {c.excess_pct:.0f}%" for c in node.contributors[:2]]
        line += "; of the excess: " + ", ".join(parts)
    return line


def _cut(shown: str, max_len: int) -> str:
    """A name display_key() already escaped (a contributor's), cut: escaping it again would
    show a key `a\\b` as `a\\\\b`."""
    return shown if len(shown) <= max_len else shown[: max_len - 1] + "…"
