"""What an evict did, per node and in total, and how it reads to a person.

EvictResult collects the counts of one run (matched, evicted, uncertain) and a NodeReport per
server whose `state` says whether that node is done, failed, cancelled, stopped or not started,
so a partial evict never looks complete. summary() and node_lines() turn a result into text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cachetop.util.safe_text import display_key

NODE_STATES = ("not_started", "running", "done", "failed", "cancelled", "stopped")


@dataclass(slots=True)
class NodeReport:
    """What happened on one server: `state` is one of NODE_STATES ("stopped": it was started but
    the run ended because another node failed; "cancelled": an operator's cancel or a signal)."""

    state: str = "not_started"
    evicted: int = 0
    uncertain: int = 0  # keys of a batch whose reply was lost: they may or may not be gone
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state, "evicted": self.evicted}
        if self.uncertain:
            out["uncertain"] = self.uncertain
        if self.error:
            out["error"] = self.error
        return out


@dataclass(slots=True)
class EvictResult:
    dry_run: bool
    matched: int = 0
    evicted: int = 0
    cancelled: bool = False
    error: str | None = None  # set when a node failed part-way; the counts are what was done
    uncertain: int = 0  # keys in a batch whose reply was lost: they may or may not be gone
    examples: list[bytes] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    evicted_by_node: dict[str, int] = field(default_factory=dict)
    node_reports: dict[str, NodeReport] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def set_nodes(self, addresses: Iterable[str]) -> None:
        self.nodes = list(addresses)
        self.node_reports = {a: NodeReport() for a in self.nodes}

    def node(self, address: str) -> NodeReport:
        return self.node_reports.setdefault(address, NodeReport())

    def start_node(self, address: str) -> None:
        report = self.node(address)
        if report.state == "not_started":
            report.state = "running"

    def finish_node(self, address: str) -> None:
        report = self.node(address)
        if report.state in ("not_started", "running"):
            report.state = "done"

    def fail_node(self, address: str, error: str, uncertain: int = 0) -> None:
        """A node failed: the run stops here, with the first error as the run's error."""
        report = self.node(address)
        report.state, report.error = "failed", error
        report.uncertain += uncertain
        self.uncertain += uncertain
        if self.error is None:
            self.error = error

    def settle(self) -> None:
        """At the end of a run: what was still running was cancelled, or stopped by another
        node's failure; on a complete run every node is done (one that held no key too)."""
        for report in self.node_reports.values():
            if report.state == "running":
                report.state = "cancelled" if self.cancelled else "stopped" if self.error else "done"
            elif report.state == "not_started" and self.complete:
                report.state = "done"

    @property
    def complete(self) -> bool:
        """Everything asked was done (a dry run: counted) on every node."""
        return not self.cancelled and self.error is None

    def add_evicted(self, node: str, removed: int) -> None:
        self.evicted += removed
        self.evicted_by_node[node] = self.evicted_by_node.get(node, 0) + removed
        self.node(node).evicted += removed

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "matched": self.matched,
            "evicted": self.evicted,
            "dry_run": self.dry_run,
            "complete": self.complete,
            "cancelled": self.cancelled,
        }
        if self.error:
            out["error"] = self.error
        if self.uncertain:
            out["uncertain"] = self.uncertain
        out["nodes"] = {addr: report.as_json() for addr, report in self.node_reports.items()}
        return out

    @property
    def rate(self) -> float:
        return self.evicted / self.elapsed_s if self.elapsed_s > 0 else 0.0


ProgressFn = Callable[[EvictResult], None]


def describe_examples(examples: Iterable[bytes], total: int) -> str:
    shown = [display_key(k, 40) for k in examples]
    more = ", …" if total > len(shown) else ""
    return ", ".join(shown) + more


def summary(result: EvictResult, instance: str) -> str:
    """One line for a person: the dry run's "would evict ..." or what was done."""
    name = display_key(instance, 60)
    examples = describe_examples(result.examples, result.matched)
    eg = f", e.g. {examples}" if examples else ""
    if result.dry_run:
        noun = "key" if result.matched == 1 else "keys"
        if result.error:  # a count that stopped part-way is no count: say why first
            return f"dry run on {name} stopped after {result.matched:,} {noun}: {result.error}"
        return f"would evict {result.matched:,} {noun} from {name}{eg}"
    if result.cancelled:
        return (
            f"cancelled: removed exactly {result.evicted:,} keys from {name} (of {result.matched:,} matched)"
        )
    text = f"evicted {result.evicted:,} of {result.matched:,} matched keys from {name}"
    if result.elapsed_s > 0 and result.evicted >= 1000:
        text += f" in {result.elapsed_s:.2f}s ({result.rate:,.0f} keys/s)"
    if result.error:
        text += f"; stopped: {result.error}"
        if result.uncertain:
            text += f" ({result.uncertain:,} more keys were in flight and may be gone too)"
    return text


STATE_WORDS = {
    "not_started": "not started",
    "running": "running",
    "done": "done",
    "failed": "FAILED",
    "cancelled": "cancelled",
    "stopped": "stopped",
}


def node_lines(result: EvictResult) -> list[str]:
    """Per node, what was and was not done: shown when a run on several nodes did not complete."""
    if result.complete or len(result.node_reports) < 2:
        return []
    width = max(len(a) for a in result.node_reports)
    lines = []
    for address, report in result.node_reports.items():
        line = f"  {address:<{width}}  {STATE_WORDS.get(report.state, report.state):<11}  "
        line += f"{report.evicted:,} evicted"
        if report.uncertain:
            line += f" (+{report.uncertain:,} in flight, may be gone)"
        if report.error:
            line += f": {report.error}"
        lines.append(line)
    return lines
